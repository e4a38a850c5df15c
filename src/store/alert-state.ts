import { isSuppressed, type AlertPolicy, type LastAlert, type TierName } from '../clinical/alert-policy.js';
import type { Migration } from './migrate.js';
import type { SqlClient } from './sql-client.js';

/**
 * Re-alert suppression state: the last card shown per subject key (never the raw id), so that
 * the policy's rule (src/clinical/alert-policy.ts, isSuppressed) holds across restarts and
 * replicas. The rule is applied here in TypeScript; the write is a compare-and-set so that two
 * replicas deciding for one patient at once cannot both show a card.
 */

export const alertStateTable: Omit<Migration, 'version'> = {
  name: 'alert_state',
  up: [
    `CREATE TABLE alert_state (
      subject_key TEXT PRIMARY KEY,
      tier TEXT NOT NULL,
      probability DOUBLE PRECISION NOT NULL,
      at BIGINT NOT NULL
    )`,
  ],
};

/** The retention sweep's index (src/store/retention.ts). */
export const alertStateAtIndex = 'CREATE INDEX alert_state_at ON alert_state (at)';

/** Attempts at the compare-and-set before the card is shown anyway (a lost update shows one card too many). */
const ATTEMPTS = 5;

export async function lastAlert(client: SqlClient, subjectKey: string): Promise<LastAlert | undefined> {
  const row = await client.get<{ tier: string; probability: number; at: number }>(
    'SELECT tier, probability, at FROM alert_state WHERE subject_key = $1',
    [subjectKey],
  );
  return row === undefined
    ? undefined
    : { tier: row.tier as TierName, probability: Number(row.probability), at: Number(row.at) };
}

/**
 * Decides whether the card `next` for `subjectKey` is shown; when it is, it becomes the
 * subject's last alert. Returns true when suppressed.
 */
export async function decideAlert(
  client: SqlClient,
  policy: AlertPolicy,
  subjectKey: string,
  next: LastAlert,
): Promise<boolean> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const last = await lastAlert(client, subjectKey);
    if (isSuppressed(policy, last, next)) return true;
    const { changes } =
      last === undefined
        ? await client.run(
            'INSERT INTO alert_state (subject_key, tier, probability, at) VALUES ($1, $2, $3, $4) ON CONFLICT (subject_key) DO NOTHING',
            [subjectKey, next.tier, next.probability, next.at],
          )
        : await client.run(
            `UPDATE alert_state SET tier = $2, probability = $3, at = $4
             WHERE subject_key = $1 AND tier = $5 AND probability = $6 AND at = $7`,
            [subjectKey, next.tier, next.probability, next.at, last.tier, last.probability, last.at],
          );
    if (changes === 1) return false;
  }
  return false;
}

/**
 * Deletes the last alerts shown before `before` (epoch ms); returns how many. A subject without
 * one gets its next card (isSuppressed), so a suppression window longer than the retention is cut to it.
 */
export async function deleteAlertStatesBefore(client: SqlClient, before: number): Promise<number> {
  return (await client.run('DELETE FROM alert_state WHERE at < $1', [before])).changes;
}
