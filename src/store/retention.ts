import { deleteAlertStatesBefore } from './alert-state.js';
import { deleteOutcomesBefore } from './outcomes.js';
import { deletePredictionsBefore } from './predictions.js';
import type { SqlClient } from './sql-client.js';
import type { StoreLog } from './store.js';

const DAY_MS = 86_400_000;

/**
 * Deletes predictions, outcomes (by the time they were known: src/store/outcomes.ts) and last
 * alerts older than `days`, now and then every `intervalMs` (an hour by default). A sweep that
 * fails (store down) is logged and tried again at the next tick. Returns stop().
 */
export function startRetention(
  client: SqlClient,
  options: { days: number; ready: () => Promise<void>; log?: StoreLog; intervalMs?: number; now?: () => number },
): () => Promise<void> {
  const now = options.now ?? Date.now;
  let running: Promise<void> | undefined;
  const sweep = (): void => {
    running ??= (async () => {
      try {
        await options.ready();
        const before = now() - options.days * DAY_MS;
        // Counts only: the rows are patients' (no subject key in the log).
        const deleted = {
          predictions: await deletePredictionsBefore(client, before),
          outcomes: await deleteOutcomesBefore(client, before),
          alertStates: await deleteAlertStatesBefore(client, before),
        };
        if (deleted.predictions + deleted.outcomes + deleted.alertStates > 0)
          options.log?.info({ deleted, retentionDays: options.days }, 'old store rows deleted');
      } catch (error) {
        options.log?.warn({ error: (error as Error).message }, 'store retention sweep failed');
      }
    })().finally(() => (running = undefined));
  };
  const timer = setInterval(sweep, options.intervalMs ?? 3_600_000);
  timer.unref();
  sweep();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
