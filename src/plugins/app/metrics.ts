import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { routeOf } from '../../observability/logger.js';
import { createMetrics, type Metrics } from '../../observability/metrics.js';

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics;
  }
}

/**
 * Decorates `app.metrics` and records every response by method, route template and status.
 * The route label is the template (`/v1/predict`, `/fhir/Patient/:id`), never the raw URL,
 * so no identifier can reach a label.
 */
export default fp(
  async (app: FastifyInstance, opts: { metrics?: Metrics; clock: () => number }) => {
    const metrics = opts.metrics ?? createMetrics();
    app.decorate('metrics', metrics);
    const started = new WeakMap<object, number>();
    app.addHook('onRequest', async (request) => {
      started.set(request, opts.clock());
    });
    app.addHook('onResponse', async (request, reply) => {
      const labels = { method: request.method, route: routeOf(request), status: String(reply.statusCode) };
      metrics.httpRequests.inc(labels);
      const t0 = started.get(request);
      if (t0 !== undefined) metrics.httpDuration.observe(labels, (opts.clock() - t0) / 1000);
    });
  },
  { name: 'metrics' },
);
