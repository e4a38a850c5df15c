import type { EncounterHeader, EncounterHours } from '../clinical/encounter-hours.js';
import type { Migration } from './migrate.js';
import type { SqlClient } from './sql-client.js';

/**
 * Encounters scored step by step (POST /v1/encounters/{id}/observations): keyed by the HMAC of
 * the client's id, they hold measured values (the hours and descriptors), so the data directory
 * or database is protected like the record itself (README, "Prediction store").
 */

export const encountersTable: Omit<Migration, 'version'> = {
  name: 'encounters',
  up: [
    `CREATE TABLE encounters (
      subject_key TEXT PRIMARY KEY,
      model_name TEXT NOT NULL,
      model_version TEXT NOT NULL,
      header TEXT NOT NULL,
      hours TEXT NOT NULL,
      last_hour BIGINT NOT NULL,
      state TEXT,
      state_hour BIGINT,
      revision BIGINT NOT NULL,
      created_at BIGINT NOT NULL,
      updated_at BIGINT NOT NULL
    )`,
    // The idle sweep deletes by last update.
    'CREATE INDEX encounters_updated_at ON encounters (updated_at)',
  ],
};

export interface EncounterRecord {
  /** subjectKey(id): HMAC-SHA256 of the client's encounter id. */
  key: string;
  modelName: string;
  /** The model version the stored state and last answer come from. */
  modelVersion: string;
  header: EncounterHeader;
  /** The hours in the model's window, canonical units. */
  hours: EncounterHours;
  lastHour: number;
  /** The step graph's state and carry after `stateHour` (opaque to the store), or null. */
  state: string | null;
  stateHour: number | null;
  /** Bumped by every save: a writer that read an older revision lost a race and starts again. */
  revision: number;
  createdAt: number;
  updatedAt: number;
}

interface EncounterRow extends Record<string, unknown> {
  subject_key: string;
  model_name: string;
  model_version: string;
  header: string;
  hours: string;
  last_hour: number | string;
  state: string | null;
  state_hour: number | string | null;
  revision: number | string;
  created_at: number | string;
  updated_at: number | string;
}

/** pg reads BIGINT as a string (it may pass 2^53); these never do. */
const num = (v: number | string): number => Number(v);

function fromRow(row: EncounterRow): EncounterRecord {
  return {
    key: row.subject_key,
    modelName: row.model_name,
    modelVersion: row.model_version,
    header: JSON.parse(row.header) as EncounterHeader,
    hours: JSON.parse(row.hours) as EncounterHours,
    lastHour: num(row.last_hour),
    state: row.state,
    stateHour: row.state_hour === null ? null : num(row.state_hour),
    revision: num(row.revision),
    createdAt: num(row.created_at),
    updatedAt: num(row.updated_at),
  };
}

export async function readEncounter(client: SqlClient, key: string): Promise<EncounterRecord | undefined> {
  const row = await client.get<EncounterRow>('SELECT * FROM encounters WHERE subject_key = $1', [key]);
  return row === undefined ? undefined : fromRow(row);
}

/**
 * Saves `record` as revision `record.revision`: a new encounter when `expected` is undefined, else
 * only over revision `expected`. False when another writer got there first (nothing is written).
 */
export async function saveEncounter(
  client: SqlClient,
  record: EncounterRecord,
  expected: number | undefined,
): Promise<boolean> {
  const values = [
    record.modelName,
    record.modelVersion,
    JSON.stringify(record.header),
    JSON.stringify(record.hours),
    record.lastHour,
    record.state,
    record.stateHour,
    record.revision,
    record.updatedAt,
    record.key,
  ];
  if (expected === undefined) {
    const { changes } = await client.run(
      `INSERT INTO encounters (model_name, model_version, header, hours, last_hour, state, state_hour, revision,
         updated_at, subject_key, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (subject_key) DO NOTHING`,
      [...values, record.createdAt],
    );
    return changes === 1;
  }
  const { changes } = await client.run(
    `UPDATE encounters SET model_name = $1, model_version = $2, header = $3, hours = $4, last_hour = $5, state = $6,
       state_hour = $7, revision = $8, updated_at = $9
     WHERE subject_key = $10 AND revision = $11`,
    [...values, expected],
  );
  return changes === 1;
}

export async function deleteEncounter(client: SqlClient, key: string): Promise<boolean> {
  return (await client.run('DELETE FROM encounters WHERE subject_key = $1', [key])).changes === 1;
}

/** Deletes the encounters not updated since `before` (epoch ms); returns how many. */
export async function deleteIdleEncounters(client: SqlClient, before: number): Promise<number> {
  return (await client.run('DELETE FROM encounters WHERE updated_at < $1', [before])).changes;
}

export async function countEncounters(client: SqlClient): Promise<number> {
  const row = await client.get<{ n: number | string }>('SELECT COUNT(*) AS n FROM encounters');
  return row === undefined ? 0 : num(row.n);
}
