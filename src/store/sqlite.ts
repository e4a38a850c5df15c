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
  /** Told once per crashed worker (no SQL, no values in `why`). */
  onWorkerCrash?: (why: string) => void;
  /** A crashed worker is replaced at the first call this long after the crash (default 1000 ms): no restart loop. */
  restartIntervalMs?: number;
}

/** The code of the error the calls of a worker that stopped without close() get (it is replaced, see openSqlite). */
export const WORKER_EXITED = 'ERR_SQLITE_WORKER_EXITED';
/** The code of the error every call gets after close(). */
export const STORE_CLOSED = 'ERR_SQLITE_CLOSED';

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

/** One connection's thread: requests answered in order; calls fail, not hang, once it has stopped. */
interface Connection {
  ask(ask: Ask): Promise<Answer>;
  /** Stopped without close(): a crash. */
  crashed(): boolean;
}

function connect(init: SqliteInit, url: URL, onCrash: (why: string) => void): Connection {
  const worker: Worker = newWorker(url, init);
  const pending = new Map<number, { resolve(answer: Answer): void; reject(error: Error): void }>();
  let nextId = 1;
  let stopped: SqliteErrorData | undefined;
  let closing = false;
  const stop = (why: SqliteErrorData): void => {
    if (stopped === undefined && !closing) onCrash(why.message);
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
  const send = (ask: Ask): Promise<Answer> => {
    if (stopped !== undefined) return Promise.reject(toError(stopped));
    const id = nextId++;
    const answer = new Promise<Answer>((resolve, reject) => {
      try {
        worker.postMessage({ ...ask, id } satisfies SqliteRequest);
      } catch {
        // A value that cannot be cloned (DataCloneError): its message quotes the value, so it is not passed on.
        reject(new TypeError(`a parameter of this ${ask.op} cannot be sent to the SQLite worker`));
        return;
      }
      pending.set(id, { resolve, reject });
      if (pending.size === 1) worker.ref();
    });
    if (ask.op !== 'close') return answer;
    closing = true;
    return answer.finally(async () => {
      stopped ??= { name: 'Error', message: 'the SQLite store is closed', code: STORE_CLOSED };
      await worker.terminate();
    });
  };
  return { ask: send, crashed: () => stopped !== undefined && !closing };
}

export function openSqlite(file: string, options: SqliteOptions = {}): SqlClient {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const init = { file, busyTimeoutMs: options.busyTimeoutMs ?? 5000 };
  const url = options.workerUrl ?? siblingModule(import.meta.url, 'sqlite-worker');
  const onCrash = options.onWorkerCrash ?? (() => undefined);
  const restartIntervalMs = options.restartIntervalMs ?? 1000;
  // A crash (native fault, out of memory) fails the calls it held, and the first call after
  // restartIntervalMs opens a new connection: the store recovers without a process restart.
  // An in-memory database does not survive its worker, so it is not reopened empty.
  let connection = connect(init, url, onCrash);
  let crashedAt = 0;
  const current = (): Connection => {
    if (connection.crashed() && file !== ':memory:') {
      crashedAt ||= Date.now();
      if (Date.now() - crashedAt >= restartIntervalMs) {
        connection = connect(init, url, onCrash);
        crashedAt = 0;
      }
    }
    return connection;
  };
  const ask = (request: Ask): Promise<Answer> => current().ask(request);

  // A promise chain: a transaction holds it across its awaits, plain statements queue behind it.
  // Shared by every connection of this process to the file, so that a second one's BEGIN does not
  // wait out busy_timeout in its worker for a lock this process is about to release.
  const chain = chainOf(file);
  const locked = <T>(fn: () => Promise<T> | T): Promise<T> => {
    const result = chain.tail.then(fn, fn);
    chain.tail = result.catch(() => undefined);
    return result;
  };

  const on = (conn: Pick<Connection, 'ask'>) => ({
    run: async (sql: string, params: readonly SqlValue[] = []): Promise<RunResult> => ({
      changes: (await conn.ask({ op: 'run', sql, params })).changes ?? 0,
    }),
    all: async <T extends Row>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> =>
      revive((await conn.ask({ op: 'all', sql, params })).rows ?? []) as T[],
  });
  const direct = on({ ask });

  /** A transaction's client: its statements go to the worker that began it, never to a replacement. */
  const inTransaction = (conn: Connection): SqlClient => {
    const bound = on(conn);
    const tx: SqlClient = {
      dialect: 'sqlite',
      run: bound.run,
      all: bound.all,
      get: async <T extends Row>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined> =>
        (await bound.all<T>(sql, params))[0],
      transaction: (fn) => fn(tx),
      close: async () => {
        throw new Error('close() inside a transaction');
      },
    };
    return tx;
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
        const conn = current();
        await conn.ask({ op: 'begin' });
        try {
          const value = await fn(inTransaction(conn));
          await conn.ask({ op: 'commit' });
          return value;
        } catch (error) {
          // The worker rolls back only if SQLite still holds the transaction (a failed COMMIT may not).
          await conn.ask({ op: 'rollback' }).catch(() => undefined);
          throw error;
        }
      }),
    close: () =>
      locked(async () => {
        if (closed) return;
        closed = true;
        await connection.ask({ op: 'close' }).catch(() => undefined);
      }),
  };
}
