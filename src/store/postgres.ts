import pg from 'pg';
import { bindValue, type Row, type SqlClient, type SqlValue } from './sql-client.js';

/**
 * The shared backend for several replicas: a pg Pool. BIGINT (int8) and COUNT(*) come back as
 * numbers rather than pg's default strings: epoch milliseconds and counts stay below 2^53.
 */

const INT8_OID = 20;

export interface PostgresOptions {
  /** Connections at most. */
  max?: number;
  /** Milliseconds to wait for a connection before an operation fails (the store is down). */
  connectionTimeoutMs?: number;
  /** Milliseconds a query may wait for its answer before it fails and its connection is dropped. */
  queryTimeoutMs?: number;
  /** Called when an idle connection errors (server restarted); the pool drops it and reconnects. */
  onIdleError?: (error: Error) => void;
}

const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

type Queryable = Pick<pg.Pool, 'query'> | pg.PoolClient;

function clientOver(q: Queryable, transaction: SqlClient['transaction']): SqlClient {
  const query = async <T extends Row>(sql: string, params: readonly SqlValue[] = []) =>
    q.query<T>({ text: sql, values: params.map(bindValue) });
  return {
    dialect: 'postgres',
    run: async (sql, params) => ({ changes: (await query(sql, params)).rowCount ?? 0 }),
    all: async <T extends Row>(sql: string, params?: readonly SqlValue[]) => (await query<T>(sql, params)).rows,
    get: async <T extends Row>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined> =>
      (await query<T>(sql, params)).rows[0],
    transaction,
    close: async () => {
      throw new Error('close() inside a transaction');
    },
  };
}

export function openPostgres(connectionString: string, options: PostgresOptions = {}): SqlClient {
  const queryTimeout = options.queryTimeoutMs ?? 15_000;
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 4,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 5000,
    // A server that stops answering without closing (a partition) would hold a query forever:
    // pg's client-side timer fails it, the server cancels its own statements a second earlier,
    // and TCP keep-alive lets the kernel notice a dead peer on idle connections.
    query_timeout: queryTimeout,
    statement_timeout: Math.max(1, queryTimeout - 1000),
    idle_in_transaction_session_timeout: 2 * queryTimeout,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    types,
  });
  // Without a listener an idle client's error (the server stopped) is an uncaught 'error' event.
  pool.on('error', (error) => options.onIdleError?.(error));

  const transaction = async <T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> => {
    const connection = await pool.connect();
    let broken = false;
    // A checked-out client whose server goes away between two queries emits 'error' on itself
    // (pg-pool listens only while it is idle): without this listener that is an uncaught error.
    const onError = (): void => {
      broken = true;
    };
    connection.on('error', onError);
    try {
      await connection.query('BEGIN');
      const tx: SqlClient = clientOver(connection, (inner) => inner(tx));
      const value = await fn(tx);
      await connection.query('COMMIT');
      return value;
    } catch (error) {
      // After a read timeout the connection is stuck behind the unanswered query: drop it.
      broken ||= (error as Error).message === 'Query read timeout';
      try {
        if (!broken) await connection.query('ROLLBACK');
      } catch {
        broken = true; // the connection itself failed: do not return it to the pool
      }
      throw error;
    } finally {
      connection.off('error', onError);
      connection.release(broken);
    }
  };

  const client = clientOver(pool, transaction);
  let ended = false;
  return {
    ...client,
    close: async () => {
      if (ended) return;
      ended = true;
      await pool.end();
    },
  };
}
