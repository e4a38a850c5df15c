import type { FastifyInstance } from 'fastify';
import { validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z, type ZodType } from 'zod';
import { ApiError, errorSchema } from '../http/errors.js';
import { mapScoringError } from '../http/error-table.js';
import { requestSignal } from '../http/request-signal.js';
import { rateLimitKey } from '../plugins/external/rate-limit.js';
import type { AppConfig } from '../config.js';
import { EncounterService } from '../scoring/encounters.js';
import type { Store } from '../store/store.js';
import { recordAudit } from '../plugins/app/audit.js';
import {
  deliveryOf,
  documentedBody,
  DESCRIPTION,
  ENCOUNTER_BODY_LIMIT_BYTES,
  envelopeSchema,
  paramsSchema,
} from './encounters-schemas.js';
import { predictionResultSchema } from './schemas.js';
import './scope.js';

export interface EncounterRoutesOptions {
  config: AppConfig;
  /** The prediction store the encounters live in (app.store). */
  store: Pick<Store, 'client' | 'subjectKey'>;
  /** Wall clock: instants in the future, idle time. */
  now?: () => Date;
}

export async function encounterRoutes(app: FastifyInstance, opts: EncounterRoutesOptions): Promise<void> {
  const { config } = opts;
  const manifest = app.models.active?.manifest;
  if (!manifest) throw new Error('encounter routes need a loaded model');
  const service = new EncounterService({
    models: app.models,
    sql: opts.store.client,
    subjectKey: opts.store.subjectKey,
    observer: app.observers,
    now: opts.now ?? (() => new Date()),
    idleTtlMs: config.encounters.idleTtlMs,
    maxEncounters: config.encounters.maxHeld,
    onStepGraphError: (reason) => app.log.warn({ reason }, 'step graph unavailable: encounters are rescored whole'),
  });
  const bodySchema = documentedBody(manifest);

  const sweep = setInterval(
    () => {
      service
        .sweep()
        .catch((error: unknown) =>
          app.log.warn({ reason: error instanceof Error ? error.message : String(error) }, 'encounter sweep failed'),
        );
    },
    Math.min(config.encounters.idleTtlMs, 600_000),
  );
  sweep.unref();
  app.addHook('onClose', async () => {
    clearInterval(sweep);
    await service.close();
  });

  const typed = app.withTypeProvider<ZodTypeProvider>();
  typed.post(
    '/v1/encounters/:id/observations',
    {
      config: { scope: 'predict' },
      bodyLimit: ENCOUNTER_BODY_LIMIT_BYTES,
      schema: {
        operationId: 'observeEncounter',
        tags: ['predict'],
        summary: 'Add hours to an encounter and score it as it now stands',
        description: DESCRIPTION,
        params: paramsSchema,
        body: bodySchema,
        response: {
          200: predictionResultSchema.omit({ index: true }),
          400: errorSchema,
          404: errorSchema,
          409: errorSchema,
          413: errorSchema,
          503: errorSchema,
        },
      },
      validatorCompiler: (route) =>
        validatorCompiler({ ...route, schema: (route.httpPart === 'body' ? envelopeSchema : route.schema) as ZodType }),
      serializerCompiler: () => (data) => JSON.stringify(data),
    },
    async (request, reply) => {
      const { body } = request;
      recordAudit(request, { patients: 1 });
      const signal = requestSignal(request, reply, config.requestTimeoutMs);
      try {
        const result = await service.observe(request.params.id, deliveryOf(body), {
          explain: body.explain === true,
          signal: signal.signal,
          caller: rateLimitKey(request),
        });
        recordAudit(request, { model: `${result.model.name}@${result.model.version}` });
        return reply.send(result);
      } catch (error) {
        throw mapScoringError(error, signal, app.metrics);
      } finally {
        signal.dispose();
      }
    },
  );

  typed.delete(
    '/v1/encounters/:id',
    {
      config: { scope: 'predict' },
      schema: {
        operationId: 'endEncounter',
        tags: ['predict'],
        summary: 'End an encounter: its stored hours are deleted',
        params: paramsSchema,
        response: { 204: z.null().meta({ description: 'Deleted' }), 404: errorSchema },
      },
    },
    async (request, reply) => {
      if (!(await service.end(request.params.id)))
        throw new ApiError(404, 'encounter_not_found', 'no encounter with this id (ended, expired, or never opened)');
      return reply.code(204).send(null);
    },
  );
}
