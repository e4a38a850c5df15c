import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { DestinationStream } from 'pino';
import { errorHandler, notFoundHandler } from './http/errors.js';
import { healthRoutes } from './api/health.js';
import { metricsRoutes } from './api/metrics.js';
import { modelRoutes } from './api/models.js';
import { predictRoutes } from './api/predict.js';
import { streamRoutes } from './api/stream.js';
import './api/scope.js';
import type { AppConfig } from './config.js';
import type { ModelFactories, ModelRepository } from './model/repository.js';
import { fastifyLoggerOption } from './observability/logger.js';
import type { Metrics } from './observability/metrics.js';
import metricsPlugin from './plugins/app/metrics.js';
import scoringObservers from './plugins/app/scoring-observers.js';
import modelsPlugin from './plugins/app/models.js';
import storePlugin from './plugins/app/store.js';
import monitoringPlugin from './plugins/app/monitoring.js';
import { tierOf } from './clinical/alert-policy.js';
import { outcomeRoutes } from './api/outcomes.js';
import { monitoringRoutes } from './api/monitoring.js';
import type { Store } from './store/store.js';
import swaggerPlugin from './plugins/external/swagger.js';
import { securityHeaders } from './plugins/external/helmet.js';
import { rateLimiting } from './plugins/external/rate-limit.js';
import { auth } from './plugins/app/auth.js';
import { audit } from './plugins/app/audit.js';
import { fhirRoutes } from './api/fhir.js';
import { cdsHooksRoutes } from './api/cds-hooks.js';
import { smartAppRoutes } from './api/smart-app.js';
import { encounterRoutes } from './api/encounters.js';
import underPressurePlugin from './plugins/external/under-pressure.js';
import { identityEncoding } from './plugins/app/identity-encoding.js';
import { corsForCdsHooks } from './plugins/external/cors.js';

/**
 * buildApp(config, deps) -> the Fastify instance, not listening (src/server.ts listens;
 * tests use app.inject). Dependencies come in by argument so tests pass real ones built on
 * small fixtures. Order: external plugins, application services, then routes.
 *
 * To add a plugin or route group: one `await app.register(...)` line in the right section.
 */

export interface AppDeps {
  /** A model repository built by the caller; by default one is built from config and started. */
  repository?: ModelRepository;
  /** Override the engine/batcher factories of the default repository. */
  factories?: Partial<ModelFactories>;
  /** Monotonic milliseconds (latency metrics). */
  clock?: () => number;
  /** Where logs go (tests capture them); stdout by default. */
  logStream?: DestinationStream;
  metrics?: Metrics;
  /** Wall clock: JWT expiry checks, FHIR prediction time (age, occurrenceDateTime). */
  now?: () => Date;
  /** A prediction store opened by the caller; by default one is opened from config.store. */
  store?: Store;
}

export async function buildApp(config: AppConfig, deps: AppDeps = {}): Promise<FastifyInstance> {
  const app = Fastify({
    ...fastifyLoggerOption(config.logLevel, deps.logStream),
    bodyLimit: config.bodyLimitBytes,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    // Refuse new requests once closing starts; in-flight ones finish (graceful shutdown).
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    keepAliveTimeout: config.keepAliveTimeoutMs,
    connectionTimeout: config.connectionTimeoutMs,
    // Node checks headersTimeout only every connectionsCheckingInterval (default 30 s, Node http
    // docs), so a trickled header outlived a 10 s limit by up to 30 s; a tenth of it keeps the limit.
    http: { connectionsCheckingInterval: Math.min(1000, Math.max(25, Math.floor(config.headersTimeoutMs / 10))) },
  });
  // Bounds on what unauthenticated sockets can hold: a slowloris's headers, and their number.
  app.server.headersTimeout = config.headersTimeoutMs;
  app.server.maxConnections = config.maxConnections;
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(errorHandler);
  // Shutting down: a keep-alive connection whose request was in flight at SIGTERM would stay
  // open after its answer and hold server.close() until the grace period kills the process.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
    if (closing) reply.header('connection', 'close');
  });
  // Docs are public; every other route declares its own scope.
  app.addHook('onRoute', (route) => {
    // CORS preflights (@fastify/cors's OPTIONS route) come from browsers, which send no credential.
    if (route.url.startsWith('/docs') || route.method === 'OPTIONS')
      route.config = { ...(route.config ?? {}), scope: 'public' };
  });

  // --- application services needed by external plugins ---
  await app.register(metricsPlugin, { metrics: deps.metrics, clock: deps.clock ?? (() => performance.now()) });
  await app.register(scoringObservers);

  // --- external plugins (one file each in plugins/external/) ---
  await app.register(underPressurePlugin, { config });
  await app.register(identityEncoding);
  await app.register(swaggerPlugin);
  await app.register(corsForCdsHooks, { origins: config.fhir.cdsCorsOrigins });
  // Auth identifies the caller in onRequest before rate-limit's hook keys on it (see plugins/app/auth.ts).
  await app.register(auth, { config: config.auth, ...(deps.now ? { clock: deps.now } : {}) });
  await app.register(audit);
  await app.register(securityHeaders);
  await app.register(rateLimiting, config.auth.rateLimit);

  // --- application services (plugins/app/) ---
  // Before models: its onClose runs after the batcher drains, so drained results are recorded.
  await app.register(storePlugin, {
    config: config.store,
    // Each recorded result's tier is the alert policy's, as on the CDS card.
    tierOf: (probability) => tierOf(config.alerting.policy, probability).name,
    graceMs: config.shutdownGraceMs,
    ...(deps.store ? { store: deps.store } : {}),
  });
  await app.register(modelsPlugin, { config, repository: deps.repository, factories: deps.factories });
  await app.register(monitoringPlugin, { alerting: config.alerting, cdsSilent: config.fhir.cdsSilent });

  // --- routes (src/api/) ---
  // Rate limited like any route (fastify/demo): probing unknown paths costs the prober too.
  app.setNotFoundHandler(app.hasDecorator('rateLimit') ? { preHandler: app.rateLimit() } : {}, notFoundHandler);
  await app.register(healthRoutes);
  await app.register(metricsRoutes);
  await app.register(modelRoutes, { config });
  await app.register(predictRoutes, { config });
  await app.register(streamRoutes, { config });
  await app.register(fhirRoutes, { prefix: '/fhir', config, ...(deps.now ? { now: deps.now } : {}) });
  await app.register(cdsHooksRoutes, { config, ...(deps.now ? { now: deps.now } : {}) });
  await app.register(encounterRoutes, { config, store: app.store, ...(deps.now ? { now: deps.now } : {}) });
  await app.register(outcomeRoutes, { store: app.store, ...(deps.now ? { now: deps.now } : {}) });
  await app.register(monitoringRoutes);
  await app.register(smartAppRoutes, { app: config.fhir.smartApp });
  // Other route groups register here.

  return app;
}
