import type { FastifyInstance } from 'fastify';
import { validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z, type ZodType } from 'zod';
import { hourRowSchema, MAX_HOURS_RECEIVED, MAX_ID_LENGTH, patientInputSchema } from '../clinical/schemas.js';
import type { HourRow } from '../clinical/types.js';
import { ApiError, errorSchema, issuesToDetails } from '../http/errors.js';
import { mapScoringError } from '../http/error-table.js';
import { requestSignal } from '../http/request-signal.js';
import { rateLimitKey } from '../plugins/external/rate-limit.js';
import type { AppConfig } from '../config.js';
import { EncounterInputError, EncounterService, type Delivery } from '../scoring/encounters.js';
import type { Store } from '../store/store.js';
import { recordAudit } from '../plugins/app/audit.js';
import { predictionResultSchema } from './schemas.js';
import './scope.js';

const DESCRIPTION = `Scores an ICU encounter as its hours arrive: each call adds hours and answers the stay as it now
stands, as one \`POST /v1/predict\` result (\`probability\`, \`hoursUsed\`, \`inputProfile\`; \`trajectory\` and
\`contributions\` with \`"explain": true\`).

**Rows.** \`hours\` holds rows \`{ "hour": h, "HR": 88, ... }\`, \`h\` the 0-based hour since admission (the row's position
in \`/v1/predict\`'s \`hours\`), or \`{ "at": "2026-01-02T03:04:05Z", ... }\` when the encounter has an \`admittedAt\`.
Names, units (\`units\`) and bounds are those of \`/v1/predict\`. Hours never sent are empty hours.

**Late and repeated values.** A row for an hour already scored (a late lab) and a repeated delivery are merged, and the
answer is the whole stay scored anew on the stored hours: it equals \`/v1/predict\` on the same hours. A row sent by
\`hour\` is that hour's value and replaces what was there; timed rows keep an hour's last value (urine output: the sum
of its distinct instants), the rule the readers bin records with.

**Descriptors** (\`age\`, \`sex\`, \`icuType\`, \`height\`, \`weight\`, a hybrid model's \`noteEmbedding\`) come with the first
contact; sent again, they replace the stored ones. \`admittedAt\` is fixed by the first contact.

**Window.** The model reads the last maxHours hours of a stay. Past them each call rescores that window: a recurrent
state cannot forget its first hours, so the stored hours are cut to the window and replayed. Hours before the window
are accepted and change nothing, as in \`/v1/predict\`.

**Storage.** The encounter (descriptors and hours, measured values) is kept in the prediction store under an HMAC of
its id, shared by every replica and kept across restarts, until \`DELETE\` or ENCOUNTER_IDLE_TTL_MS without a call.
A model reload rescores the stored hours with the new version at the next call.

**Errors.** 400 names the field: a malformed row, an hour before admission or in the future, an instant without
\`admittedAt\`; 503 when ENCOUNTER_MAX_HELD encounters are held; 409 when concurrent calls kept overtaking this one.`;

/** Rows in one call: a day of one row a minute. */
export const MAX_ROWS_PER_DELIVERY = 1440;
/** A call's body: rows of every variable, a hybrid model's note embedding. */
export const ENCOUNTER_BODY_LIMIT_BYTES = 1024 * 1024;

const instant = z.iso.datetime({ offset: true });

const paramsSchema = z.object({
  id: z
    .string()
    .min(1)
    .max(MAX_ID_LENGTH)
    .meta({ description: 'The client’s encounter id: stored only as an HMAC, never logged.' }),
});

const placement = {
  hour: z
    .number()
    .int()
    .min(0)
    .max(MAX_HOURS_RECEIVED - 1)
    .optional()
    .meta({ description: 'Hour since admission, from 0 (the row’s position in /v1/predict’s hours).' }),
  at: instant.optional().meta({ description: 'The instant of the values, with its zone; needs admittedAt.' }),
};

const onePlacement = (row: { hour?: unknown; at?: unknown }) => (row.hour === undefined) !== (row.at === undefined);
const placementMessage = { message: 'each row needs either hour or at (not both)' };

/** What the route checks itself; the measurements are validated as /v1/predict validates them, by the service. */
const envelopeSchema = z.strictObject({
  age: z.unknown().optional(),
  sex: z.unknown().optional(),
  icuType: z.unknown().optional(),
  height: z.unknown().optional(),
  weight: z.unknown().optional(),
  units: z.unknown().optional(),
  noteEmbedding: z.unknown().optional(),
  admittedAt: instant.optional(),
  explain: z.boolean().optional(),
  hours: z
    .array(z.looseObject(placement).refine(onePlacement, placementMessage))
    .max(MAX_ROWS_PER_DELIVERY)
    .default([]),
});

type Envelope = z.output<typeof envelopeSchema>;

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
  const patient = patientInputSchema(manifest);
  // Documented with the model's names, units and bounds; checked as the envelope (see envelopeSchema).
  const documentedBody: ZodType<Envelope> = z
    .strictObject({
      age: patient.shape.age,
      sex: patient.shape.sex,
      icuType: patient.shape.icuType,
      height: patient.shape.height,
      weight: patient.shape.weight,
      units: patient.shape.units,
      noteEmbedding: patient.shape.noteEmbedding,
      admittedAt: instant.optional().meta({ description: 'Admission instant, with its zone (first contact).' }),
      explain: z.boolean().optional().meta({ description: 'Add trajectory and contributions, as /v1/predict.' }),
      hours: z
        .array(hourRowSchema(manifest).extend(placement).refine(onePlacement, placementMessage))
        .max(MAX_ROWS_PER_DELIVERY)
        .default([]),
    })
    .meta({ id: 'EncounterObservations' }) as unknown as ZodType<Envelope>;

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
        body: documentedBody,
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
        if (error instanceof EncounterInputError)
          throw new ApiError(error.status, error.code, error.message, issuesToDetails(error.issues));
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

function deliveryOf(body: Envelope): Delivery {
  const rows = body.hours.map(({ hour, at, ...values }) => ({
    ...(hour === undefined ? {} : { hour }),
    ...(at === undefined ? {} : { at: Date.parse(at) }),
    values: values as HourRow,
  }));
  const { age, sex, icuType, height, weight, units, noteEmbedding, admittedAt } = body;
  // The validator checks the descriptors' types and bounds (the same messages as /v1/predict).
  return {
    ...(age === undefined ? {} : { age: age as Delivery['age'] }),
    ...(sex === undefined ? {} : { sex: sex as Delivery['sex'] }),
    ...(icuType === undefined ? {} : { icuType: icuType as Delivery['icuType'] }),
    ...(height === undefined ? {} : { height: height as Delivery['height'] }),
    ...(weight === undefined ? {} : { weight: weight as Delivery['weight'] }),
    ...(units === undefined ? {} : { units: units as Record<string, string> }),
    ...(noteEmbedding === undefined ? {} : { noteEmbedding: noteEmbedding as number[] }),
    ...(admittedAt === undefined ? {} : { admittedAt: Date.parse(admittedAt) }),
    rows,
  };
}
