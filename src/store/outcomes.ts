import type { Migration } from './migrate.js';
import type { SqlClient } from './sql-client.js';

/**
 * Outcomes: whether a patient (or encounter) died in hospital, and when that was known, one row
 * per subject key (src/store/subject-key.ts: never the raw id). An outcome joins the subject's
 * latest prediction at or before its time `at`; the join is made when figures are read
 * (src/store/monitoring.ts), so a prediction written late by the recorder still finds it.
 */

export const outcomesTable: Omit<Migration, 'version'> = {
  name: 'outcomes',
  up: [
    `CREATE TABLE outcomes (
      subject_key TEXT PRIMARY KEY,
      died INTEGER NOT NULL,
      at BIGINT NOT NULL,
      recorded_at BIGINT NOT NULL
    )`,
  ],
};

export interface OutcomeRow {
  subjectKey: string;
  died: boolean;
  /** Epoch milliseconds: when the outcome was known (discharge or death). */
  at: number;
}

/** An outcome to store; without `at`, the stored outcome's time, or `now` for a new one (a file without times). */
export type OutcomeInput = Omit<OutcomeRow, 'at'> & { at?: number };

/** What became of one outcome: new, a changed value or time, or the same as stored. */
export type OutcomeStatus = 'stored' | 'updated' | 'unchanged';

export interface OutcomeWrite {
  status: OutcomeStatus;
  /** Whether the subject has a prediction at or before the outcome's time. */
  matched: boolean;
}

/**
 * Stores `rows` in one transaction, in order (a subject repeated in `rows` ends at its last
 * value). Idempotent: a repeat of the stored outcome writes nothing.
 */
export async function upsertOutcomes(
  client: SqlClient,
  rows: readonly OutcomeInput[],
  now: number,
): Promise<OutcomeWrite[]> {
  return client.transaction(async (tx) => {
    const out: OutcomeWrite[] = [];
    for (const input of rows) {
      const died = input.died ? 1 : 0;
      const stored = await tx.get<{ died: number; at: number }>(
        'SELECT died, at FROM outcomes WHERE subject_key = $1',
        [input.subjectKey],
      );
      const row = { ...input, at: input.at ?? (stored === undefined ? now : Number(stored.at)) };
      let status: OutcomeStatus;
      if (stored === undefined) {
        // ON CONFLICT: another replica may have stored the same subject since the SELECT.
        await tx.run(
          `INSERT INTO outcomes (subject_key, died, at, recorded_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (subject_key) DO UPDATE SET died = excluded.died, at = excluded.at, recorded_at = excluded.recorded_at`,
          [row.subjectKey, died, row.at, now],
        );
        status = 'stored';
      } else if (Number(stored.died) === died && Number(stored.at) === row.at) {
        status = 'unchanged';
      } else {
        await tx.run('UPDATE outcomes SET died = $2, at = $3, recorded_at = $4 WHERE subject_key = $1', [
          row.subjectKey,
          died,
          row.at,
          now,
        ]);
        status = 'updated';
      }
      const prediction = await tx.get('SELECT 1 AS one FROM predictions WHERE subject_key = $1 AND at <= $2 LIMIT 1', [
        row.subjectKey,
        row.at,
      ]);
      out.push({ status, matched: prediction !== undefined });
    }
    return out;
  });
}

/** The stored outcome of a subject key, if any. */
export async function outcomeOf(client: SqlClient, subjectKey: string): Promise<OutcomeRow | undefined> {
  const row = await client.get<{ died: number; at: number }>('SELECT died, at FROM outcomes WHERE subject_key = $1', [
    subjectKey,
  ]);
  return row === undefined ? undefined : { subjectKey, died: Number(row.died) === 1, at: Number(row.at) };
}
