import type { Migration } from './migrate.js';
import type { SqlClient, SqlValue } from './sql-client.js';

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

/**
 * The retention sweep's index (src/store/retention.ts). On `at`, not `recorded_at`: the join takes
 * predictions at or before `at`, so once `at` is past the retention every prediction the outcome
 * can label is gone too, while `recorded_at` can lag `at` by a late import for as long as it likes.
 */
export const outcomesAtIndex = 'CREATE INDEX outcomes_at ON outcomes (at)';

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

/** Subjects per statement (3 statements per chunk): well under both backends' parameter limits. */
const CHUNK = 500;

/**
 * Stores `rows` in one transaction, in order (a subject repeated in `rows` ends at its last
 * value). Idempotent: a repeat of the stored outcome writes nothing. Set-based, chunk by chunk.
 */
export async function upsertOutcomes(
  client: SqlClient,
  rows: readonly OutcomeInput[],
  now: number,
): Promise<OutcomeWrite[]> {
  return client.transaction(async (tx) => {
    const out: OutcomeWrite[] = [];
    // What is stored for each subject seen so far, this call's earlier rows included.
    const current = new Map<string, { died: number; at: number } | undefined>();
    const inList = (keys: readonly string[]) => keys.map((_, i) => `$${i + 1}`).join(', ');
    for (let from = 0; from < rows.length; from += CHUNK) {
      const chunk = rows.slice(from, from + CHUNK);
      const keys = [...new Set(chunk.map((r) => r.subjectKey))];
      const fresh = keys.filter((k) => !current.has(k));
      if (fresh.length > 0) {
        for (const k of fresh) current.set(k, undefined);
        const stored = await tx.all<{ subject_key: string; died: number; at: number }>(
          `SELECT subject_key, died, at FROM outcomes WHERE subject_key IN (${inList(fresh)})`,
          fresh,
        );
        for (const r of stored) current.set(r.subject_key, { died: Number(r.died), at: Number(r.at) });
      }
      // A prediction at or before `at` exists exactly when the subject's earliest one is.
      const first = new Map(
        (
          await tx.all<{ subject_key: string; first: number }>(
            `SELECT subject_key, MIN(at) AS first FROM predictions WHERE subject_key IN (${inList(keys)}) GROUP BY subject_key`,
            keys,
          )
        ).map((r) => [r.subject_key, Number(r.first)]),
      );
      const changed = new Map<string, { died: number; at: number }>();
      for (const input of chunk) {
        const stored = current.get(input.subjectKey);
        const value = { died: input.died ? 1 : 0, at: input.at ?? stored?.at ?? now };
        let status: OutcomeStatus;
        if (stored === undefined) status = 'stored';
        else if (stored.died === value.died && stored.at === value.at) status = 'unchanged';
        else status = 'updated';
        if (status !== 'unchanged') {
          current.set(input.subjectKey, value);
          changed.set(input.subjectKey, value);
        }
        const earliest = first.get(input.subjectKey);
        out.push({ status, matched: earliest !== undefined && earliest <= value.at });
      }
      if (changed.size > 0) {
        const params: SqlValue[] = [];
        const values = [...changed].map(([key, v]) => {
          params.push(key, v.died, v.at, now);
          const n = params.length;
          return `($${n - 3}, $${n - 2}, $${n - 1}, $${n})`;
        });
        // ON CONFLICT: another replica may have stored the same subject since the SELECT.
        await tx.run(
          `INSERT INTO outcomes (subject_key, died, at, recorded_at) VALUES ${values.join(', ')}
           ON CONFLICT (subject_key) DO UPDATE SET died = excluded.died, at = excluded.at, recorded_at = excluded.recorded_at`,
          params,
        );
      }
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

/**
 * Deletes outcomes known before `before` (epoch ms); returns how many. Every prediction such an
 * outcome can label (at or before its `at`) is older still, so no monitoring pair is lost.
 */
export async function deleteOutcomesBefore(client: SqlClient, before: number): Promise<number> {
  return (await client.run('DELETE FROM outcomes WHERE at < $1', [before])).changes;
}
