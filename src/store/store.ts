import { join } from 'node:path';
import { migrate, type Migration } from './migrate.js';
import { migrations as allMigrations } from './migrations.js';
import { openPostgres, type PostgresOptions } from './postgres.js';
import { openSqlite } from './sqlite.js';
import type { SqlClient } from './sql-client.js';
import type { StoreConfig } from './config.js';
import { loadOrCreateSiteKey, subjectKeyer, type SubjectKey } from './subject-key.js';
import { within } from './errors.js';

/**
 * openStore(config): the SQL client (SQLite in DATA_DIR, or PostgreSQL with DATABASE_URL), the
 * subject keyer, and the migrations applied in the background. A PostgreSQL that is down at
 * start does not stop the service: scoring starts, migrations are retried with backoff, and
 * writers wait for ready(). SQLite (its connection in a worker thread, src/store/sqlite.ts) makes
 * ready() reject when it cannot open or migrate: a DATA_DIR that cannot be written or a schema
 * from a newer release stops start-up.
 */

export interface StoreLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export type StoreStatus = 'starting' | 'up' | 'down';

export interface StoreHealth {
  backend: 'sqlite' | 'postgres';
  status: StoreStatus;
}

export interface Store {
  readonly client: SqlClient;
  readonly backend: 'sqlite' | 'postgres';
  /** HMAC-SHA256 of a patient or encounter id under the site key. */
  readonly subjectKey: SubjectKey;
  readonly config: StoreConfig;
  /** Resolves once the migrations are applied; rejects if the store is closed first, or SQLite's fail. */
  ready(): Promise<void>;
  /**
   * The last known status, at once: a stale one starts a background probe (a `SELECT 1` bounded by
   * probeTimeoutMs) whose answer the next call sees, so a stalled server never holds readiness.
   */
  health(): StoreHealth;
  /** Writers report here, so health follows what they saw between probes. */
  report(ok: boolean): void;
  close(): Promise<void>;
}

export interface StoreOptions {
  log?: StoreLog;
  migrations?: readonly Migration[];
  /** Milliseconds between migration attempts while the store is down at start (doubles, up to 30 s). */
  retryMs?: number;
  /** Milliseconds a probe result stays fresh. */
  probeTtlMs?: number;
  /** Milliseconds a probe may take before the store counts as down. */
  probeTimeoutMs?: number;
  /** PostgreSQL pool timeouts (tests shorten them). */
  postgres?: Pick<PostgresOptions, 'queryTimeoutMs' | 'connectionTimeoutMs'>;
}

const noLog: StoreLog = { info: () => undefined, warn: () => undefined };

export function openStore(config: StoreConfig, options: StoreOptions = {}): Store {
  const log = options.log ?? noLog;
  const backend = config.databaseUrl === undefined ? 'sqlite' : 'postgres';
  let client: SqlClient;
  let key: Buffer;
  if (config.databaseUrl === undefined) {
    client = openSqlite(join(config.dataDir, 'predictions.sqlite'), {
      onWorkerCrash: (why) =>
        log.warn({ store: 'sqlite', error: why }, 'SQLite worker stopped: reopening at the next call'),
    });
    key = config.siteIdKey
      ? Buffer.from(config.siteIdKey, 'utf8')
      : loadOrCreateSiteKey(join(config.dataDir, 'site-key'));
  } else {
    client = openPostgres(config.databaseUrl, {
      ...options.postgres,
      // The message only: pg's error objects can carry the connection string.
      onIdleError: (error) => log.warn({ store: backend, error: error.message }, 'store connection lost'),
    });
    key = Buffer.from(config.siteIdKey ?? '', 'utf8');
  }
  const subjectKey = subjectKeyer(key);

  let status: StoreStatus = 'starting';
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  const migrated = (async () => {
    let delay = options.retryMs ?? 1000;
    for (;;) {
      try {
        const applied = await migrate(client, options.migrations ?? allMigrations);
        status = 'up';
        log.info({ store: backend, applied }, 'store ready');
        return;
      } catch (error) {
        if (closed) throw new Error('store closed before it was ready', { cause: error });
        // A local file that cannot be migrated will not heal by waiting: start-up stops instead.
        if (backend === 'sqlite') throw error;
        status = 'down';
        log.warn({ store: backend, error: (error as Error).message, retryInMs: delay }, 'store not ready: retrying');
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, delay);
      });
      if (closed) throw new Error('store closed before it was ready');
      delay = Math.min(delay * 2, 30_000);
    }
  })();
  migrated.catch(() => undefined);

  const ttl = options.probeTtlMs ?? 5000;
  let probedAt = -Infinity;
  let probing: Promise<void> | undefined;
  const probeTimeout = options.probeTimeoutMs ?? 2000;
  const probe = async (): Promise<void> => {
    try {
      await within(client.get('SELECT 1 AS one'), probeTimeout, 'store probe');
      if (status !== 'starting') status = 'up';
    } catch {
      if (status !== 'starting') status = 'down';
    }
    probedAt = performance.now();
  };

  return {
    client,
    backend,
    subjectKey,
    config,
    ready: () => migrated,
    health() {
      if (!closed && status !== 'starting' && performance.now() - probedAt > ttl) {
        probing ??= probe().finally(() => (probing = undefined));
      }
      return { backend, status };
    },
    report(ok) {
      if (status !== 'starting') status = ok ? 'up' : 'down';
    },
    async close() {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      wake?.();
      await migrated.catch(() => undefined);
      await client.close();
    },
  };
}
