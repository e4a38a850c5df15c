import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { newWorker, siblingModule } from '../inference/ts-worker.js';
import type { SqliteErrorData, SqliteInit, SqliteReply, SqliteRequest } from './sqlite-host.js';
import type { Row, RunResult, SqlClient, SqlValue } from './sql-client.js';

/**
 * The embedded backend: one better-sqlite3 connection to a file, so the README's run command
 * needs no database server. better-sqlite3 is synchronous, so the connection lives in a worker
 * thread (sqlite-worker.ts) and no SQL runs on the event loop; an async transaction holds a lock
 * here so that other callers' statements wait instead of landing inside it.
 */

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
  /** Another worker entry (tests use an instrumented one); defaults to ./sqlite-worker.{ts,js}. */
  workerUrl?: URL;
}

/** The code of the error every call gets once the worker has stopped without close(). */
export const WORKER_EXITED = 'ERR_SQLITE_WORKER_EXITED';

type Ask =
  { op: 'run' | 'all'; sql: string; params: readonly SqlValue[] } | { op: 'begin' | 'commit' | 'rollback' | 'close' };
type Answer = Extract<SqliteReply, { ok: true }>;

/** The worker's error as an Error of this thread, with its SQLite code (SQLITE_BUSY, SQLITE_CONSTRAINT_...). */
function toError(data: SqliteErrorData): Error {
  const error = new Error(data.message) as Error & { code?: string };
  error.name = data.name;
  if (data.code !== undefined) error.code = data.code;
  return error;
}

/** Structured cloning turns a BLOB's Buffer into a plain Uint8Array: give it back its class. */
function revive(rows: Row[]): Row[] {
  for (const row of rows) {
    for (const key in row) {
      const value = row[key];
      if (value instanceof Uint8Array && !Buffer.isBuffer(value))
        row[key] = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    }
  }
  return rows;
}

/** The connection's thread: requests answered in order; calls fail, not hang, once it has stopped. */
function connect(init: SqliteInit, url: URL): (ask: Ask) => Promise<Answer> {
  const worker: Worker = newWorker(url, init);
  const pending = new Map<number, { resolve(answer: Answer): void; reject(error: Error): void }>();
  let nextId = 1;
  let stopped: SqliteErrorData | undefined;
  const stop = (why: SqliteErrorData): void => {
    stopped ??= why;
    for (const call of pending.values()) call.reject(toError(stopped));
    pending.clear();
  };
  worker.on('message', (reply: SqliteReply) => {
    const call = pending.get(reply.id);
    if (call === undefined) return;
    pending.delete(reply.id);
    if (pending.size === 0) worker.unref();
    if (reply.ok) call.resolve(reply);
    else call.reject(toError(reply.error));
  });
  worker.on('error', (error: Error) =>
    stop({ name: 'Error', message: `the SQLite worker failed: ${error.message}`, code: WORKER_EXITED }),
  );
  worker.on('exit', (code: number) =>
    stop({ name: 'Error', message: `the SQLite worker stopped (exit code ${code})`, code: WORKER_EXITED }),
  );
  // Held only while a call waits on it: an idle or forgotten store never keeps the process alive.
  // After the listeners: adding a 'message' listener refs the worker again.
  worker.unref();
  return (ask) => {
    if (stopped !== undefined) return Promise.reject(toError(stopped));
    const id = nextId++;
    const answer = new Promise<Answer>((resolve, reject) => {
      pending.set(id, { resolve, reject });
      if (pending.size === 1) worker.ref();
      worker.postMessage({ ...ask, id } satisfies SqliteRequest);
    });
    if (ask.op !== 'close') return answer;
    return answer.finally(async () => {
      stopped ??= { name: 'Error', message: 'the SQLite store is closed' };
      await worker.terminate();
    });
  };
}

export function openSqlite(file: string, options: SqliteOptions = {}): SqlClient {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const ask = connect(
    { file, busyTimeoutMs: options.busyTimeoutMs ?? 5000 },
    options.workerUrl ?? siblingModule(import.meta.url, 'sqlite-worker'),
  );

  // A promise chain: a transaction holds it across its awaits, plain statements queue behind it.
  // Shared by every connection of this process to the file, so that a second one's BEGIN does not
  // wait out busy_timeout in its worker for a lock this process is about to release.
  const chain = chainOf(file);
  const locked = <T>(fn: () => Promise<T> | T): Promise<T> => {
    const result = chain.tail.then(fn, fn);
    chain.tail = result.catch(() => undefined);
    return result;
  };

  const direct = {
    run: async (sql: string, params: readonly SqlValue[] = []): Promise<RunResult> => ({
      changes: (await ask({ op: 'run', sql, params })).changes ?? 0,
    }),
    all: async <T extends Row>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> =>
      revive((await ask({ op: 'all', sql, params })).rows ?? []) as T[],
  };

  const inTransaction: SqlClient = {
    dialect: 'sqlite',
    run: direct.run,
    all: direct.all,
    get: async <T extends Row>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined> =>
      (await direct.all<T>(sql, params))[0],
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
      locked(async () => (await direct.all<T>(sql, params))[0]),
    transaction: <T>(fn: (tx: SqlClient) => Promise<T>) =>
      locked(async () => {
        await ask({ op: 'begin' });
        try {
          const value = await fn(inTransaction);
          await ask({ op: 'commit' });
          return value;
        } catch (error) {
          // The worker rolls back only if SQLite still holds the transaction (a failed COMMIT may not).
          await ask({ op: 'rollback' }).catch(() => undefined);
          throw error;
        }
      }),
    close: () =>
      locked(async () => {
        if (closed) return;
        closed = true;
        await ask({ op: 'close' }).catch(() => undefined);
      }),
  };
}
