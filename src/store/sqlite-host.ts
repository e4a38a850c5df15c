/**
 * The inside of the SQLite worker (src/store/sqlite.ts starts it): one better-sqlite3 connection,
 * one request at a time, in the order they arrive. better-sqlite3 is synchronous, so its commits,
 * index updates and WAL checkpoints run on this thread instead of blocking the event loop.
 */
import type { MessagePort } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { bindValue, type Row, type SqlValue } from './sql-client.js';

export interface SqliteInit {
  file: string;
  /** Milliseconds a writer waits for another process's lock before SQLITE_BUSY. */
  busyTimeoutMs: number;
}

export type SqliteRequest =
  | { id: number; op: 'run' | 'all'; sql: string; params: readonly SqlValue[] }
  | { id: number; op: 'begin' | 'commit' | 'rollback' | 'close' };

/** An error as it crosses the thread boundary: structured cloning keeps neither `code` nor the class. */
export interface SqliteErrorData {
  name: string;
  message: string;
  code?: string;
}

export type SqliteReply =
  { id: number; ok: true; changes?: number; rows?: Row[] } | { id: number; ok: false; error: SqliteErrorData };

export interface SqliteHostHooks {
  /** Called before each request; lets an instrumented worker entry (tests) misbehave on cue. */
  beforeRequest?(request: SqliteRequest): void;
}

const PLACEHOLDER = /\$(\d+)/g;

/**
 * `$n` -> `?` with the values reordered and repeated to match: better-sqlite3 refuses SQLite's
 * numbered `?NNN` parameters ("Too many parameter values"), so each occurrence gets its own `?`.
 * The SQL of this store holds no `$` in string literals.
 */
export function toSqlite(sql: string, params: readonly SqlValue[]): { sql: string; values: unknown[] } {
  const values: unknown[] = [];
  const text = sql.replace(PLACEHOLDER, (_, n: string) => {
    const index = Number(n) - 1;
    if (index < 0 || index >= params.length) throw new RangeError(`SQL parameter $${n} has no value`);
    values.push(bindValue(params[index] as SqlValue));
    return '?';
  });
  return { sql: text, values };
}

function open(init: SqliteInit): Database.Database {
  const db = new Database(init.file);
  // WAL: readers do not block the writer, and a crash mid-batch leaves the last commit intact.
  db.pragma('journal_mode = WAL');
  db.pragma(`busy_timeout = ${Math.trunc(init.busyTimeoutMs)}`);
  db.pragma('synchronous = NORMAL');
  // Retention deletes personal data (src/store/retention.ts): overwrite it, do not leave it in free pages.
  db.pragma('secure_delete = ON');
  return db;
}

function errorData(error: unknown): SqliteErrorData {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const code = (error as { code?: unknown }).code;
  return { name: error.name, message: error.message, ...(typeof code === 'string' ? { code } : {}) };
}

export function serveSqlite(port: MessagePort, init: SqliteInit, hooks: SqliteHostHooks = {}): void {
  let db: Database.Database | undefined;
  let openError: unknown;
  try {
    db = open(init);
  } catch (error) {
    // Answered to every request, so a file that cannot be opened fails each call instead of the thread.
    openError = error;
  }
  const cache = new Map<string, Database.Statement>();
  const prepare = (connection: Database.Database, sql: string): Database.Statement => {
    let statement = cache.get(sql);
    if (!statement) {
      statement = connection.prepare(sql);
      if (cache.size > 256) cache.clear();
      cache.set(sql, statement);
    }
    return statement;
  };

  const answer = (request: SqliteRequest): SqliteReply => {
    const { id } = request;
    try {
      hooks.beforeRequest?.(request);
      if (request.op === 'close') {
        db?.close();
        db = undefined;
        return { id, ok: true };
      }
      if (db === undefined) throw openError ?? new Error('the SQLite connection is closed');
      switch (request.op) {
        case 'begin':
          // IMMEDIATE takes the write lock now: two processes on one file serialise here, not at COMMIT.
          db.exec('BEGIN IMMEDIATE');
          return { id, ok: true };
        case 'commit':
          db.exec('COMMIT');
          return { id, ok: true };
        case 'rollback':
          if (db.inTransaction) db.exec('ROLLBACK');
          return { id, ok: true };
        case 'run': {
          const q = toSqlite(request.sql, request.params);
          return { id, ok: true, changes: prepare(db, q.sql).run(...q.values).changes };
        }
        case 'all': {
          const q = toSqlite(request.sql, request.params);
          const statement = prepare(db, q.sql);
          if (statement.reader) return { id, ok: true, rows: statement.all(...q.values) as Row[] };
          statement.run(...q.values);
          return { id, ok: true, rows: [] };
        }
      }
    } catch (error) {
      return { id, ok: false, error: errorData(error) };
    }
  };

  port.on('message', (request: SqliteRequest) => {
    port.postMessage(answer(request));
    // Nothing else holds the thread: closing the port lets it exit.
    if (request.op === 'close') port.close();
  });
}
