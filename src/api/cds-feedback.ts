import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { SERVICE_ID } from '../fhir/cds.js';
import type { CardIds } from '../fhir/card-id.js';
import { ApiError, errorSchema } from '../http/errors.js';
import { feedbackSchema } from './cds-hooks-schemas.js';
import './scope.js';

/** Feedback is a few small JSON objects; the service's 64 MiB default is for batches of stays. */
export const FEEDBACK_BODY_LIMIT_BYTES = 64 * 1024;

/** CDS Hooks 2.0 feedback on the cards this service issued (`cards` tells them apart): counts only are logged. */
export function cdsFeedbackRoute(app: FastifyInstance, cards: CardIds): void {
  app.withTypeProvider<ZodTypeProvider>().post(
    `/cds-services/${SERVICE_ID}/feedback`,
    {
      config: { scope: 'cds' },
      bodyLimit: FEEDBACK_BODY_LIMIT_BYTES,
      schema: {
        operationId: 'sendCdsFeedback',
        tags: ['cds-hooks'],
        summary: 'CDS Hooks 2.0 feedback: whether a card was accepted or overridden',
        body: z.object({ feedback: z.array(feedbackSchema).min(1).max(1000) }),
        response: {
          200: z.strictObject({}).meta({ description: 'Feedback recorded (counts only are logged)' }),
          400: errorSchema,
          413: errorSchema,
        },
      },
    },
    async (request, reply) => {
      const { feedback } = request.body;
      const unknown = feedback.flatMap((f, i) =>
        cards.verify(f.card)
          ? []
          : [{ path: `feedback.${i}.card`, message: 'is not the uuid of a card this service issued' }],
      );
      if (unknown.length > 0)
        throw new ApiError(
          400,
          'unknown_card',
          'feedback names a card this service did not issue',
          unknown.slice(0, 20),
        );
      // Counts only: card ids and reasons may identify a patient encounter.
      const accepted = feedback.filter((f) => f.outcome === 'accepted').length;
      request.log.info({ cds: 'feedback', accepted, overridden: feedback.length - accepted }, 'CDS card feedback');
      return reply.code(200).send({});
    },
  );
}
