import { z } from 'zod';
import { SITE_KEY_MIN_BYTES } from './subject-key.js';

/** The prediction store's environment variables (spread into src/config.ts's schema). */

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export const storeEnvShape = {
  /** Folder of the embedded store (predictions.sqlite, site-key); created at start. */
  DATA_DIR: z.string().min(1).default('./data'),
  /** postgres://... : the shared store of several replicas instead of SQLite. */
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'a postgres:// or postgresql:// URL')
    .optional(),
  /** HMAC key of subject ids; required with DATABASE_URL (replicas must agree), else generated into DATA_DIR. */
  SITE_ID_KEY: z
    .string()
    .refine((s) => Buffer.byteLength(s, 'utf8') >= SITE_KEY_MIN_BYTES, `at least ${SITE_KEY_MIN_BYTES} bytes`)
    .optional(),
  /** Predictions waiting to be written; more are dropped and counted (prediction_store_dropped_total). */
  STORE_BUFFER_ROWS: int(1, 10_000_000).default(100_000),
  /** Rows per write transaction. */
  STORE_BATCH_ROWS: int(1, 100_000).default(500),
  /** Predictions, outcomes and last alerts older than this are deleted hourly (src/store/retention.ts). */
  PREDICTION_RETENTION_DAYS: int(1, 36_500).default(365),
};

export interface StoreConfig {
  dataDir: string;
  databaseUrl: string | undefined;
  siteIdKey: string | undefined;
  bufferRows: number;
  batchRows: number;
  retentionDays: number;
}

type StoreEnv = z.infer<z.ZodObject<typeof storeEnvShape>>;

export function toStoreConfig(e: StoreEnv): StoreConfig {
  if (e.DATABASE_URL !== undefined && e.SITE_ID_KEY === undefined) {
    throw new Error(
      'invalid store configuration:\n  SITE_ID_KEY: required with DATABASE_URL (every replica must hash ids with the same key)',
    );
  }
  return {
    dataDir: e.DATA_DIR,
    databaseUrl: e.DATABASE_URL,
    siteIdKey: e.SITE_ID_KEY,
    bufferRows: e.STORE_BUFFER_ROWS,
    batchRows: e.STORE_BATCH_ROWS,
    retentionDays: e.PREDICTION_RETENTION_DAYS,
  };
}
