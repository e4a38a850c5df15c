import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { bindValue, type Row, type RunResult, type SqlClient, type SqlValue } from './sql-client.js';

/**
 * The embedded backend: one better-sqlite3 connection to a file, so the README's run command
 * needs no database server. better-sqlite3 is synchronous; an async transaction holds a lock
 * so that other callers' statements wait instead of landing inside it.
 */

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

const chains = new Map<string, { tail: Promise<unknown> }>();

function chainOf(file: string): { tail: Promise<unknown> } {
  if (file === ':memory:') return { tail: Promise.resolve() };
  const key = resolve(file);
  let chain = chains.get(key);
  if (!chain) {
    chain = { tail: Promise.resolve() };
    chains.set(key, chain);
  }
  return chain;
}

export interface SqliteOptions {
  /** Milliseconds a writer waits for another process's lock before SQLITE_BUSY. */
  busyTimeoutMs?: number;
}

export function openSqlite(file: string, options: SqliteOptions = {}): SqlClient {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  // WAL: readers do not block the writer, and a crash mid-batch leaves the last commit intact.
  db.pragma('journal_mode = WAL');
  db.pragma(`busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 5000)}`);
  db.pragma('synchronous = NORMAL');
  const cache = new Map<string, Database.Statement>();
  const prepare = (sql: string): Database.Statement => {
    let statement = cache.get(sql);
    if (!statement) {
      statement = db.prepare(sql);
      if (cache.size > 256) cache.clear();
      cache.set(sql, statement);
    }
    return statement;
  };

  // A promise chain: a transaction holds it across its awaits, plain statements queue behind it.
  // Shared by every connection of this process to the file: a second one's BEGIN would otherwise
  // wait synchronously (busy_timeout) for a lock that the blocked event loop can never release.
  const chain = chainOf(file);
  const locked = <T>(fn: () => Promise<T> | T): Promise<T> => {
    const result = chain.tail.then(fn, fn);
    chain.tail = result.catch(() => undefined);
    return result;
  };

  const direct = {
    run(sql: string, params: readonly SqlValue[] = []): RunResult {
      const q = toSqlite(sql, params);
      return { changes: prepare(q.sql).run(...q.values).changes };
    },
    all<T extends Row>(sql: string, params: readonly SqlValue[] = []): T[] {
      const q = toSqlite(sql, params);
      const statement = prepare(q.sql);
      return (statement.reader ? statement.all(...q.values) : (statement.run(...q.values), [])) as T[];
    },
  };

  const inTransaction: SqlClient = {
    dialect: 'sqlite',
    run: async (sql, params) => direct.run(sql, params),
    all: async <T extends Row>(sql: string, params?: readonly SqlValue[]) => direct.all<T>(sql, params),
    get: async <T extends Row>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined> =>
      direct.all<T>(sql, params)[0],
    transaction: (fn) => fn(inTransaction),
    close: async () => {
      throw new Error('close() inside a transaction');
    },
  };

  let closed = false;
  return {
    dialect: 'sqlite',
    run: (sql, params) => locked(() => direct.run(sql, params)),
    all: <T extends Row>(sql: string, params?: readonly SqlValue[]) => locked(() => direct.all<T>(sql, params)),
    get: <T extends Row>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined> =>
      locked(() => direct.all<T>(sql, params)[0]),
    transaction: <T>(fn: (tx: SqlClient) => Promise<T>) =>
      locked(async () => {
        // IMMEDIATE takes the write lock now: two processes on one file serialise here, not at COMMIT.
        db.exec('BEGIN IMMEDIATE');
        try {
          const value = await fn(inTransaction);
          db.exec('COMMIT');
          return value;
        } catch (error) {
          if (db.inTransaction) db.exec('ROLLBACK');
          throw error;
        }
      }),
    close: () =>
      locked(() => {
        if (closed) return;
        closed = true;
        db.close();
      }),
  };
}
