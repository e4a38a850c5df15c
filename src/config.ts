import { z } from 'zod';
import { defaultEngineThreads } from './inference/engine.js';
import { VERSION_NAME } from './model/semver.js';
import { fhirEnvShape, toFhirConfig, type FhirConfig } from './fhir/config.js';
import { authEnvShape, toAuthConfig, type AuthConfig } from './plugins/app/auth-config.js';
import { storeEnvShape, toStoreConfig, type StoreConfig } from './store/config.js';
import { encounterEnvShape, toEncounterConfig, type EncounterConfig } from './scoring/encounter-config.js';
import { alertingEnvShape, toAlertingConfig, type AlertingConfig } from './plugins/app/alerting-config.js';
import { policyThresholds } from './clinical/alert-policy.js';

/**
 * Every environment variable the service reads, validated once at start-up. A bad value
 * stops the process with a message naming the variable, rather than failing later.
 */

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const providers = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p.length > 0),
  )
  .pipe(z.array(z.enum(['cpu', 'webgpu', 'cuda'])).min(1));

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export const envSchema = z.object({
  PORT: int(0, 65535).default(3000),
  /** Loopback by default: a container sets HOST=0.0.0.0 explicitly. */
  HOST: z.string().min(1).default('127.0.0.1'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Root holding models/<name>/<version>/. */
  MODEL_DIR: z.string().min(1).default('models'),
  MODEL_NAME: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]*$/)
    .default('icu-mortality'),
  /** `latest` (highest semver under MODEL_DIR/MODEL_NAME) or an exact version to pin. */
  MODEL_VERSION: z.string().regex(VERSION_NAME, 'latest, or a version folder name').max(64).default('latest'),
  /** Watch MODEL_DIR/MODEL_NAME and reload when a new version appears. */
  MODEL_WATCH: bool.default(false),
  EXECUTION_PROVIDERS: providers.default(['cpu']),
  /** Intra-op threads of each inference session; total across workers should stay <= cores. */
  INTRA_OP_THREADS: int(1, 256).default(defaultEngineThreads().intraOpThreads),
  /**
   * Sessions (worker threads): one per core on the CPU (at most 4, defaultEngineThreads()), one for a GPU provider
   * (sessions would share the device).
   */
  ENGINE_WORKERS: int(1, 64).optional(),
  /** Let idle ONNX Runtime threads spin: lower latency, but they take CPU from the event loop. */
  ENGINE_ALLOW_SPINNING: bool.default(false),
  /** Stays per engine batch: 64 is about the fastest per stay on CPU (bench/RESULTS.md; 512 was 25% slower). */
  MAX_BATCH_SIZE: int(1, 65536).default(64),
  MAX_QUEUE_DELAY_MS: z.coerce.number().min(0).max(1000).default(2),
  /** Stays waiting in the batcher's queue before new requests get 503. */
  MAX_QUEUE_SIZE: int(1, 10_000_000).default(16384),
  /** Share of that queue one caller (credential, or client IP without one) may hold, so others always find room. */
  CALLER_QUEUE_SHARE: z.coerce.number().gt(0).max(1).default(0.5),
  MAX_PATIENTS_PER_REQUEST: int(1, 100_000).default(4096),
  /** Patients per request with explain: each costs up to hoursUsed + variables present + 4 rows. */
  MAX_EXPLAINED_PATIENTS: int(1, 100_000).default(64),
  /** Invalid lines a stream answers before it ends with an error_limit line. */
  STREAM_MAX_ERROR_LINES: int(1, 10_000_000).default(10_000),
  /** Longest NDJSON line of a stream; a longer one is answered with an error line, never buffered whole. */
  STREAM_MAX_LINE_BYTES: int(1024, 1 << 30).default(16 * 1024 * 1024),
  /** Bytes of long lines all streams together may hold; a stream whose line would pass it waits (backpressure). */
  STREAM_MAX_BUFFERED_BYTES: int(1024, Number.MAX_SAFE_INTEGER).default(256 * 1024 * 1024),
  BODY_LIMIT_BYTES: int(1024, 1 << 30).default(64 * 1024 * 1024),
  REQUEST_TIMEOUT_MS: int(1, 3_600_000).default(30_000),
  /** Open sockets at most; Node closes further ones as they connect (net.Server.maxConnections). */
  MAX_CONNECTIONS: int(1, 1_000_000).default(1024),
  /** Idle keep-alive sockets close after this; behind a load balancer, set it above the balancer's idle timeout. */
  KEEP_ALIVE_TIMEOUT_MS: int(1, 600_000).default(5000),
  /** A request's headers must arrive within this (slow-header clients). */
  HEADERS_TIMEOUT_MS: int(1, 600_000).default(10_000),
  /** A socket with no traffic either way for this long is closed; 0 never. */
  CONNECTION_TIMEOUT_MS: int(0, 3_600_000).default(120_000),
  /** under-pressure thresholds; 0 disables a check. */
  MAX_EVENT_LOOP_DELAY_MS: int(0, 600_000).default(1000),
  MAX_HEAP_USED_BYTES: int(0, Number.MAX_SAFE_INTEGER).default(0),
  MAX_RSS_BYTES: int(0, Number.MAX_SAFE_INTEGER).default(0),
  SHUTDOWN_GRACE_MS: int(100, 600_000).default(30_000),
  // Authentication, rate limiting (src/plugins/app/auth-config.ts) and FHIR/CDS Hooks (src/fhir/config.ts).
  ...authEnvShape,
  ...fhirEnvShape,
  // The prediction store: SQLite in DATA_DIR or PostgreSQL at DATABASE_URL (src/store/config.ts).
  ...storeEnvShape,
  // Encounters scored hour by hour (src/scoring/encounter-config.ts).
  ...encounterEnvShape,
  // The alert policy (ALERT_POLICY) and live monitoring (src/plugins/app/alerting-config.ts).
  ...alertingEnvShape,
});

export interface AppConfig {
  port: number;
  host: string;
  logLevel: z.infer<typeof envSchema>['LOG_LEVEL'];
  modelDir: string;
  modelName: string;
  modelVersion: string;
  modelWatch: boolean;
  providers: Array<'cpu' | 'webgpu' | 'cuda'>;
  intraOpThreads: number;
  engineWorkers: number;
  engineAllowSpinning: boolean;
  maxBatchSize: number;
  maxQueueDelayMs: number;
  maxQueueSize: number;
  callerQueueShare: number;
  maxPatientsPerRequest: number;
  maxExplainedPatients: number;
  streamMaxErrorLines: number;
  streamMaxLineBytes: number;
  streamMaxBufferedBytes: number;
  bodyLimitBytes: number;
  requestTimeoutMs: number;
  maxConnections: number;
  keepAliveTimeoutMs: number;
  headersTimeoutMs: number;
  connectionTimeoutMs: number;
  maxEventLoopDelayMs: number;
  maxHeapUsedBytes: number;
  maxRssBytes: number;
  shutdownGraceMs: number;
  auth: AuthConfig;
  fhir: FhirConfig;
  store: StoreConfig;
  encounters: EncounterConfig;
  alerting: AlertingConfig;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses the environment (process.env by default); throws ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): AppConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const e = parsed.data;
  if (e.STREAM_MAX_BUFFERED_BYTES < e.STREAM_MAX_LINE_BYTES) {
    // A stream waits for room for a whole line: a budget smaller than one line would wait forever.
    throw new ConfigError(
      'invalid configuration:\n  STREAM_MAX_BUFFERED_BYTES: must be at least STREAM_MAX_LINE_BYTES (one line must fit)',
    );
  }
  let auth: AuthConfig;
  let fhir: FhirConfig;
  let store: StoreConfig;
  let alerting: AlertingConfig;
  try {
    fhir = toFhirConfig(e);
    auth = toAuthConfig(e, fhir.smartApp.clientId);
    store = toStoreConfig(e);
    alerting = toAlertingConfig(e, fhir.thresholds, env);
    // One definition of the bands: a policy file's tiers are the RiskAssessment's too.
    fhir = { ...fhir, thresholds: policyThresholds(alerting.policy) };
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  return {
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
    modelDir: e.MODEL_DIR,
    modelName: e.MODEL_NAME,
    modelVersion: e.MODEL_VERSION,
    modelWatch: e.MODEL_WATCH,
    providers: e.EXECUTION_PROVIDERS,
    intraOpThreads: e.INTRA_OP_THREADS,
    engineWorkers: e.ENGINE_WORKERS ?? (e.EXECUTION_PROVIDERS[0] === 'cpu' ? defaultEngineThreads().workers : 1),
    engineAllowSpinning: e.ENGINE_ALLOW_SPINNING,
    maxBatchSize: e.MAX_BATCH_SIZE,
    maxQueueDelayMs: e.MAX_QUEUE_DELAY_MS,
    maxQueueSize: e.MAX_QUEUE_SIZE,
    callerQueueShare: e.CALLER_QUEUE_SHARE,
    maxPatientsPerRequest: e.MAX_PATIENTS_PER_REQUEST,
    maxExplainedPatients: e.MAX_EXPLAINED_PATIENTS,
    streamMaxErrorLines: e.STREAM_MAX_ERROR_LINES,
    streamMaxLineBytes: e.STREAM_MAX_LINE_BYTES,
    streamMaxBufferedBytes: e.STREAM_MAX_BUFFERED_BYTES,
    bodyLimitBytes: e.BODY_LIMIT_BYTES,
    requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
    maxConnections: e.MAX_CONNECTIONS,
    keepAliveTimeoutMs: e.KEEP_ALIVE_TIMEOUT_MS,
    headersTimeoutMs: e.HEADERS_TIMEOUT_MS,
    connectionTimeoutMs: e.CONNECTION_TIMEOUT_MS,
    maxEventLoopDelayMs: e.MAX_EVENT_LOOP_DELAY_MS,
    maxHeapUsedBytes: e.MAX_HEAP_USED_BYTES,
    maxRssBytes: e.MAX_RSS_BYTES,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    auth,
    fhir,
    store,
    encounters: toEncounterConfig(e),
    alerting,
  };
}
