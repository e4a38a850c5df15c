import { deletePredictionsBefore } from './predictions.js';
import type { SqlClient } from './sql-client.js';
import type { StoreLog } from './store.js';

const DAY_MS = 86_400_000;

/**
 * Deletes predictions older than `days`, now and then every `intervalMs` (an hour by default).
 * A sweep that fails (store down) is logged and tried again at the next tick. Returns stop().
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
        const deleted = await deletePredictionsBefore(client, now() - options.days * DAY_MS);
        if (deleted > 0) options.log?.info({ deleted, retentionDays: options.days }, 'old predictions deleted');
      } catch (error) {
        options.log?.warn({ error: (error as Error).message }, 'prediction retention sweep failed');
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
