import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { errorSchema } from '../http/errors.js';
import './scope.js';

const liveSchema = z.object({ status: z.literal('ok') });
const readySchema = z.object({
  status: z.literal('ready'),
  model: z.object({ name: z.string(), version: z.string(), provider: z.string() }),
  store: z.object({ backend: z.enum(['sqlite', 'postgres']), status: z.enum(['starting', 'up', 'down']) }).meta({
    description:
      'The prediction store. Scoring goes on while it is down (results wait in a bounded buffer), so the service stays ready.',
  }),
});

/**
 * Liveness: the process answers. Readiness: a model is loaded and its warm-up inference succeeded;
 * the prediction store's state is reported, never a reason to leave the load balancer.
 */
export async function healthRoutes(app: FastifyInstance): Promise<void> {
  app.get(
    '/health/live',
    {
      config: { scope: 'public' },
      schema: { operationId: 'getLiveness', tags: ['health'], summary: 'Liveness', response: { 200: liveSchema } },
    },
    async () => ({ status: 'ok' as const }),
  );
  app.get(
    '/health/ready',
    {
      config: { scope: 'public' },
      schema: {
        operationId: 'getReadiness',
        tags: ['health'],
        summary: 'Readiness: a model is loaded and warmed up',
        response: { 200: readySchema, 503: errorSchema },
      },
    },
    async (_request, reply) => {
      const model = app.models.active;
      if (!app.models.ready || !model) {
        return reply
          .code(503)
          .header('retry-after', '1')
          .send({ error: 'not_ready', message: 'no model is loaded yet', details: [] });
      }
      return {
        status: 'ready' as const,
        model: { name: model.name, version: model.version, provider: model.provider },
        store: app.store.health(),
      };
    },
  );
}
