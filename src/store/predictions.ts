import type { Migration } from './migrate.js';
import type { SqlClient } from './sql-client.js';

/**
 * The predictions table: one row per scored result. No raw id and no measured value: the
 * subject is an HMAC (src/store/subject-key.ts), the rest is what the model said and how.
 */

export const predictionsTable: Omit<Migration, 'version'> = {
  name: 'predictions',
  up: [
    `CREATE TABLE predictions (
        id TEXT PRIMARY KEY,
        at BIGINT NOT NULL,
        subject_key TEXT,
        route TEXT NOT NULL,
        model_name TEXT NOT NULL,
        model_version TEXT NOT NULL,
        probability DOUBLE PRECISION NOT NULL,
        input_profile TEXT,
        hours_used INTEGER NOT NULL,
        tier TEXT NOT NULL,
        silent INTEGER NOT NULL
      )`,
    // Outcomes join to a subject's latest prediction before a time; retention sweeps by time.
    'CREATE INDEX predictions_subject_at ON predictions (subject_key, at)',
    'CREATE INDEX predictions_at ON predictions (at)',
  ],
};

export interface PredictionRow {
  id: string;
  /** Epoch milliseconds. */
  at: number;
  subjectKey: string | null;
  route: string;
  modelName: string;
  modelVersion: string;
  probability: number;
  inputProfile: string | null;
  hoursUsed: number;
  tier: string;
  silent: boolean;
}

const COLUMNS = 11;
// PostgreSQL binds at most 65535 parameters per statement; SQLite's default limit is 32766.
const MAX_ROWS_PER_INSERT = Math.floor(32766 / COLUMNS);

/** Inserts `rows` with multi-row INSERTs; a row whose id is already there is skipped (a retried batch). */
export async function insertPredictions(client: SqlClient, rows: readonly PredictionRow[]): Promise<void> {
  for (let start = 0; start < rows.length; start += MAX_ROWS_PER_INSERT) {
    const chunk = rows.slice(start, start + MAX_ROWS_PER_INSERT);
    const values = chunk.map((_, i) => {
      const b = i * COLUMNS;
      return `(${Array.from({ length: COLUMNS }, (_, j) => `$${b + j + 1}`).join(', ')})`;
    });
    const params = chunk.flatMap((r) => [
      r.id,
      r.at,
      r.subjectKey,
      r.route,
      r.modelName,
      r.modelVersion,
      r.probability,
      r.inputProfile,
      r.hoursUsed,
      r.tier,
      r.silent,
    ]);
    await client.run(
      `INSERT INTO predictions (id, at, subject_key, route, model_name, model_version, probability, input_profile, hours_used, tier, silent)
       VALUES ${values.join(', ')} ON CONFLICT (id) DO NOTHING`,
      params,
    );
  }
}

/** Deletes predictions recorded before `before` (epoch ms); returns how many. */
export async function deletePredictionsBefore(client: SqlClient, before: number): Promise<number> {
  return (await client.run('DELETE FROM predictions WHERE at < $1', [before])).changes;
}

interface StoredRow {
  id: string;
  at: number;
  subject_key: string | null;
  route: string;
  model_name: string;
  model_version: string;
  probability: number;
  input_profile: string | null;
  hours_used: number;
  tier: string;
  silent: number;
}

/** Every prediction of a subject key, oldest first. */
export async function predictionsOf(client: SqlClient, subjectKey: string): Promise<PredictionRow[]> {
  const rows = await client.all<StoredRow & Record<string, unknown>>(
    'SELECT * FROM predictions WHERE subject_key = $1 ORDER BY at, id',
    [subjectKey],
  );
  return rows.map((r) => ({
    id: r.id,
    at: Number(r.at),
    subjectKey: r.subject_key,
    route: r.route,
    modelName: r.model_name,
    modelVersion: r.model_version,
    probability: Number(r.probability),
    inputProfile: r.input_profile,
    hoursUsed: Number(r.hours_used),
    tier: r.tier,
    silent: Number(r.silent) === 1,
  }));
}
