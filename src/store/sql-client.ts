/**
 * One SQL interface over SQLite (better-sqlite3) and PostgreSQL (pg). SQL is written once in
 * PostgreSQL's `$1` placeholder style and in the subset both engines read the same: TEXT,
 * BIGINT epoch-millisecond times, DOUBLE PRECISION, INTEGER 0/1 flags (no BOOLEAN columns),
 * INSERT ... ON CONFLICT and RETURNING.
 */

/** A bound value; booleans are sent as 1/0 on both engines (flags are INTEGER columns). */
export type SqlValue = string | number | bigint | boolean | null;

export type Row = Record<string, unknown>;

export interface RunResult {
  /** Rows inserted, updated or deleted. */
  changes: number;
}

export interface SqlClient {
  readonly dialect: 'sqlite' | 'postgres';
  run(sql: string, params?: readonly SqlValue[]): Promise<RunResult>;
  all<T extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  get<T extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined>;
  /** Runs `fn` in one transaction on one connection: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Flags travel as integers: SQLite has no boolean type, and one column type keeps one SQL text. */
export function bindValue(value: SqlValue): string | number | bigint | null {
  return typeof value === 'boolean' ? (value ? 1 : 0) : value;
}
