import underPressure from '@fastify/under-pressure';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ApiError } from '../../http/errors.js';

/**
 * Load shedding in front of the batcher's own bounded queue: when the event loop lags or
 * memory runs high, prediction routes answer 503 with Retry-After at once instead of queueing
 * more work. Public routes (health, metrics, docs) keep answering so probes and dashboards
 * can see the pressure rather than time out.
 */
const RETRY_AFTER_SECONDS = 1;

/** The limits it reads from the app's configuration (src/config.ts). */
export interface UnderPressureConfig {
  maxEventLoopDelayMs: number;
  maxHeapUsedBytes: number;
  maxRssBytes: number;
}

export default fp(
  async (app: FastifyInstance, opts: { config: UnderPressureConfig }) => {
    const { config } = opts;
    await app.register(underPressure, {
      maxEventLoopDelay: config.maxEventLoopDelayMs,
      maxHeapUsedBytes: config.maxHeapUsedBytes,
      maxRssBytes: config.maxRssBytes,
      retryAfter: RETRY_AFTER_SECONDS,
      exposeStatusRoute: false,
      pressureHandler: async (request: FastifyRequest, _reply: FastifyReply, type: string) => {
        if (request.routeOptions.config.scope === 'public') return;
        app.metrics?.rejected.inc({ reason: 'under_pressure' });
        throw new ApiError(
          503,
          'overloaded',
          `the service is under load (${type}); retry later`,
          [],
          RETRY_AFTER_SECONDS,
        );
      },
    });
  },
  { name: 'under-pressure', dependencies: ['metrics'] },
);
