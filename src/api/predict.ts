import type { FastifyInstance, FastifyRequest } from 'fastify';
import { validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { z, ZodType } from 'zod';
import type { AppConfig } from '../config.js';
import { recordAudit } from '../plugins/app/audit.js';
import { ApiError, errorSchema, issuesToDetails } from '../http/errors.js';
import { predictEnvelopeSchema, predictRequestSchema, predictResponseSchema } from './schemas.js';
import { scorePatients, type ScoreResponse } from '../scoring/score.js';
import { scanPredictBody } from './predict-body.js';
import { requestSignal } from '../http/request-signal.js';
import { mapScoringError } from '../http/error-table.js';
import { rateLimitKey } from '../plugins/external/rate-limit.js';
import './scope.js';

const DESCRIPTION = `Scores one or many ICU stays.

**Validation.** Each patient is validated against the serving model's manifest: unknown measurement names,
wrong types, non-finite numbers, values outside the physiological bounds (checked in the canonical unit,
after converting any unit named in \`units\`) and empty \`hours\` are errors, each reported with its JSON path.
- A structurally unusable body (not an object, \`patients\` missing, empty, not an array or longer than the limit) is **400**.
- When **every** patient is invalid the answer is **400** with all the details (paths such as \`patients.3.hours.2.HR\`).
- When **some** patients are valid the answer is **200**: valid patients get a result, invalid ones an entry
  \`{ index, id?, error: { error, message, details } }\` with paths relative to the patient (\`hours.2.HR\`).
- A valid patient for whom the model gives no finite probability gets such an entry with \`inference_failed\`;
  the other patients keep their results.

**Aliases are rejected, not mapped.** A measurement sent under another name (e.g. \`SpO2\`) is an unknown measurement;
the message names the model's variable. SpO2 (pulse oximetry) is not the arterial SaO2 the model was trained on, so the
client has to decide whether to send it as \`SaO2\`.

**Long stays** are scored on their last maxHours rows (\`truncated: true\`). The static \`weight\` is an observation
of the model's weight variable at hour 0 when the first row has none.

**How much weight a score bears.** Each result's \`inputProfile\` names the validated scenario whose inputs the stay
has (\`vitals\`, \`vitals-routine-labs\`, \`first-6h\`, \`first-12h\`, \`first-24h\`, \`full\`), with the model's
held-out AUROC on such stays. A scenario counts only when the stay covers it: at least the manifest's \`coverage\`
number of its variables observed in its window, over at least that many hours (what 95% of its held-out stays have); of
those covered, the one with the highest figure. A stay that covers none is \`sparse\`, with \`heldOutAuroc\` null:
less data never earns a better figure.

**Why, and how it moved.** With \`"explain": true\` each result adds \`trajectory\` (the calibrated probability after
every hour used, each equal to the stay cut after that hour and scored alone) and \`contributions\` (for every variable
present, descriptors included: probability minus the probability of the same stay with that variable removed from every
hour, largest first). Effects are associations in this model, not causes; they do not add up to the probability.

**Load.** A full queue or an overloaded service answers 503 with \`Retry-After\`.`;

/** What the handler reads: the envelope, with patients not yet validated. */
type PredictBody = z.output<ReturnType<typeof predictEnvelopeSchema>>;

export async function predictRoutes(app: FastifyInstance, opts: { config: AppConfig }): Promise<void> {
  const { config } = opts;
  const manifest = app.models.active?.manifest;
  if (!manifest) throw new Error('predict routes need a loaded model');
  const limits = { maxPatients: config.maxPatientsPerRequest, maxExplainedPatients: config.maxExplainedPatients };
  const envelope = predictEnvelopeSchema(limits);
  // Typed as the envelope that validates it: every body the full schema accepts, the envelope accepts.
  const documentedBody: ZodType<PredictBody> = predictRequestSchema(manifest, limits);

  // JSON bodies of this route (this plugin only): scanned when the scanner takes them, else
  // Fastify's own JSON parser, with its answers to malformed JSON and prototype poisoning.
  const defaultJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, bytes: Buffer, done) => {
    const validator = app.models.active?.validator;
    const scanned = validator === undefined ? undefined : scanPredictBody(bytes, validator);
    if (scanned !== undefined) done(null, scanned);
    // As Fastify's own `parseAs: 'string'` gives it (a UTF-8 decode).
    else defaultJson(request, bytes.toString('utf8'), done);
  });

  app.withTypeProvider<ZodTypeProvider>().post(
    '/v1/predict',
    {
      config: { scope: 'predict' },
      schema: {
        operationId: 'predict',
        tags: ['predict'],
        summary: 'Predict in-hospital mortality for one or many ICU stays',
        description: DESCRIPTION,
        body: documentedBody,
        response: {
          200: predictResponseSchema,
          400: errorSchema,
          404: errorSchema,
          413: errorSchema,
          503: errorSchema,
        },
      },
      // The documented schema is the full patient schema; the request itself is checked for
      // its envelope only, so that patients can be validated (and fail) one by one.
      validatorCompiler: (route) =>
        validatorCompiler({ ...route, schema: (route.httpPart === 'body' ? envelope : route.schema) as ZodType }),
      // Results are built by the handler from validated data: plain JSON.stringify is enough and fast.
      serializerCompiler: () => (data) => JSON.stringify(data),
      // A caller whose share of the queue is already used up is refused before its body is read and parsed.
      // The active version's queue is the only one: a body naming another version is answered 404 once read.
      preParsing: async (request: FastifyRequest) => {
        try {
          app.models.active?.batcher.admit(1, rateLimitKey(request));
        } catch (error) {
          throw mapScoringError(error, undefined, app.metrics);
        }
      },
    },
    async (request, reply) => {
      const { body } = request;
      recordAudit(request, { patients: body.patients.length });
      const signal = requestSignal(request, reply, config.requestTimeoutMs);
      let scored: ScoreResponse;
      try {
        scored = await scorePatients(app.models, body.patients, {
          model: body.model,
          version: body.version,
          signal: signal.signal,
          observe: { to: app.observers, route: 'predict' },
          explain: body.explain === true,
          caller: rateLimitKey(request),
        });
      } catch (error) {
        throw mapScoringError(error, signal, app.metrics);
      } finally {
        signal.dispose();
      }
      recordAudit(request, { model: `${scored.model.name}@${scored.model.version}` });
      if (scored.scored === 0 && scored.failed === 0) {
        const details = scored.outcomes.flatMap((o) => (o.ok ? [] : issuesToDetails(o.issues, ['patients', o.index])));
        throw new ApiError(400, 'validation_failed', `none of the ${body.patients.length} patients is valid`, details);
      }
      return reply.send({
        model: scored.model,
        results: scored.outcomes.map((o) =>
          o.ok
            ? { index: o.index, ...o.result }
            : {
                index: o.index,
                ...(o.id === undefined ? {} : { id: o.id }),
                error: {
                  ...(o.failure ?? { error: 'validation_failed', message: 'this patient is invalid' }),
                  details: issuesToDetails(o.issues),
                },
              },
        ),
      });
    },
  );
}
