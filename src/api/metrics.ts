import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import './scope.js';

/** Prometheus text exposition of the app's registry. */
export async function metricsRoutes(app: FastifyInstance): Promise<void> {
  app.get(
    '/metrics',
    {
      config: { scope: 'public' },
      schema: {
        operationId: 'getMetrics',
        tags: ['health'],
        summary: 'Prometheus metrics',
        description:
          'Request counts and latency by route template and status, engine batch size and latency, queue depth and wait, rejections, predicted probabilities per model version, process metrics.',
        produces: ['text/plain'],
        response: { 200: z.string().meta({ description: 'Prometheus text exposition format 0.0.4' }) },
      },
    },
    async (_request, reply) => {
      const body = await app.metrics.registry.metrics();
      return reply.type(app.metrics.registry.contentType).send(body);
    },
  );
}
