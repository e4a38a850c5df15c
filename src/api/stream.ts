import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { validatorCompiler } from 'fastify-type-provider-zod';
import { z, type ZodType } from 'zod';
import type { AppConfig } from '../config.js';
import { BatcherDrainingError, QueueFullError } from '../inference/errors.js';
import type { ModelBatcher, ModelLease } from '../model/repository.js';
import type { ValidPatient } from '../clinical/types.js';
import type { PatientValidator } from '../clinical/validate.js';
import { splitLines } from '../scoring/lines.js';
import { parseNdjsonLine } from '../scoring/ndjson.js';
import { scoreInOrder, type RecordFailure, type ScoreInput, type ScoreOutcome } from '../scoring/pipeline.js';
import { recordAudit } from '../plugins/app/audit.js';
import { errorSchema, issuesToDetails } from './errors.js';
import { mapScoringError } from './predict.js';
import './scope.js';

const NDJSON = 'application/x-ndjson';

const DESCRIPTION = `Scores a cohort of any size as a stream: the request body is NDJSON, one patient per line (the same
patient object as \`POST /v1/predict\`), sent with \`Content-Type: ${NDJSON}\`. The response is NDJSON too, one line per
input line, **in input order**, written as results are ready:

- a result: \`{ "line": 3, "id": "...", "probability": 0.12, "model": { "name", "version" }, "hoursUsed", "truncated", "missingThroughout" }\`
- an error for that line only, scoring goes on: \`{ "line": 4, "id"?: "...", "error": { "error", "message", "details": [{ "path", "message" }] } }\`
  (\`invalid_json\`, \`line_too_long\`, \`validation_failed\` with paths such as \`hours.2.HR\`, \`shutting_down\`, \`internal_error\`).

\`line\` counts every line of the body from 1, blank lines included (blank lines get no answer).
Every result line names the model version: one stream is scored by one version from start to end.
Memory is bounded whatever the input size: the service reads the body only as fast as it scores it and as the
client reads the answer, so a slow reader slows the upload (TCP backpressure). Closing the connection stops the
scoring and drops the queued work.`;

const querySchema = z.object({
  model: z.string().optional().meta({ description: 'Model name the client expects (404 if another is served).' }),
  version: z.string().optional().meta({ description: 'Model version the client expects (404 if another is served).' }),
});

/**
 * Batches in flight per stream: enough for every engine worker to have one running and one
 * queued (src/inference/engine.ts) while the next is read and validated, as the CLI's window.
 */
const WINDOW = 8;
/** A line arriving slower than this after the previous one: score what has come so far (interactive clients). */
const FLUSH_IDLE_MS = 2;

type Where = number;

function isReadable(body: unknown): body is Readable {
  return typeof body === 'object' && body !== null && typeof (body as Readable).pipe === 'function' && Symbol.asyncIterator in body;
}

async function* inputs(body: Readable, maxLineBytes: number, validator: PatientValidator): AsyncGenerator<ScoreInput<Where>> {
  for await (const line of splitLines(body, maxLineBytes)) {
    const parsed = parseNdjsonLine(line, maxLineBytes, validator);
    const base = parsed.id === undefined ? { where: line.number } : { where: line.number, id: parsed.id };
    yield parsed.failure ? { ...base, failure: parsed.failure } : { ...base, input: parsed.input };
  }
}

/**
 * Submits to the shared batcher. A full queue means other traffic is using the engine: wait and
 * retry rather than fail lines of a stream that is itself bounded. Shutting down fails the batch.
 */
async function submitPatiently(batcher: ModelBatcher, patients: ValidPatient[], signal: AbortSignal): Promise<ArrayLike<number>> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await batcher.submit(patients, signal);
    } catch (error) {
      if (!(error instanceof QueueFullError) || error instanceof BatcherDrainingError) throw error;
      await delay(Math.min(1000, 20 * 2 ** attempt), undefined, { signal });
    }
  }
}

function failureOf(error: unknown): RecordFailure {
  if (error instanceof BatcherDrainingError) return { error: 'shutting_down', message: error.message, details: [] };
  // As for every 5xx, the engine's own message stays in the server log.
  return { error: 'internal_error', message: 'the inference batch holding this line failed', details: [] };
}

function outcomeLine(outcome: ScoreOutcome<Where>): string {
  if (outcome.ok) return JSON.stringify({ line: outcome.where, ...outcome.result });
  const { failure } = outcome;
  return JSON.stringify({
    line: outcome.where,
    ...(outcome.id === undefined ? {} : { id: outcome.id }),
    error: { error: failure.error, message: failure.message, details: issuesToDetails(failure.details) },
  });
}

export async function streamRoutes(app: FastifyInstance, opts: { config: AppConfig }): Promise<void> {
  const { config } = opts;
  // Hand the raw body to the handler: the whole point is never to buffer it. Scoped to this plugin.
  app.addContentTypeParser(NDJSON, (_request, payload, done) => done(null, payload));

  app.post(
    '/v1/predict/stream',
    {
      config: { scope: 'predict' },
      schema: {
        tags: ['predict'],
        summary: 'Score a cohort streamed as NDJSON, results streamed back in order',
        description: DESCRIPTION,
        consumes: [NDJSON],
        querystring: querySchema,
        body: z.string().meta({ description: `One patient object per line (the schema of a patient in POST /v1/predict), ${NDJSON}.` }),
        response: {
          200: {
            description: 'NDJSON, one line per input line, in input order (see above).',
            content: { [NDJSON]: { schema: z.string().meta({ description: 'One JSON object per line: a result or an error for that line.' }) } },
          },
          404: errorSchema,
          415: errorSchema,
          503: errorSchema,
        },
      },
      // The body is documented, not validated as a whole: it is a stream, read and validated line by line.
      validatorCompiler: (route) => (route.httpPart === 'body' ? (data: unknown) => ({ value: data }) : validatorCompiler({ ...route, schema: route.schema as unknown as ZodType })),
    },
    async (request: FastifyRequest, reply: FastifyReply) => {
      const body: unknown = request.body;
      if (!isReadable(body)) {
        return reply.code(415).type('application/json; charset=utf-8').send({
          error: 'unsupported_media_type',
          message: `send the cohort as ${NDJSON}, one patient per line`,
          details: [],
        });
      }
      const query = request.query as z.infer<typeof querySchema>;
      let lease: ModelLease;
      try {
        lease = app.models.acquire(query.model, query.version);
      } catch (error) {
        body.resume();
        throw mapScoringError(error, undefined, app);
      }
      const { model } = lease;
      const labels = { model: model.name, version: model.version };
      const probabilityHistogram = app.metrics.probability.labels(labels);
      const controller = new AbortController();
      let scored = 0;
      let invalid = 0;
      let finished = false;
      // Once, whichever comes first: the last line written, or the connection closing (which
      // can happen before the response stream is ever read, when its generator never starts).
      const finish = (): void => {
        if (finished) return;
        finished = true;
        reply.raw.off('close', onClose);
        if (scored > 0) app.metrics.predictions.inc({ ...labels, outcome: 'scored' }, scored);
        if (invalid > 0) app.metrics.predictions.inc({ ...labels, outcome: 'invalid' }, invalid);
        recordAudit(request, { patients: scored + invalid, model: `${model.name}@${model.version}` });
        lease.release();
      };
      const onClose = (): void => {
        if (!reply.raw.writableFinished) {
          // The client has gone: stop reading, and take this stream's stays out of the queue.
          controller.abort(new Error('client disconnected'));
          body.destroy();
        }
        finish();
      };
      reply.raw.on('close', onClose);

      const outcomes = scoreInOrder(inputs(body, config.bodyLimitBytes, model.validator), {
        validator: model.validator,
        model: { name: model.name, version: model.version },
        scoreBatch: (patients) => submitPatiently(model.batcher, patients, controller.signal),
        failureOf,
        batchSize: config.maxBatchSize,
        window: WINDOW,
        flushIdleMs: FLUSH_IDLE_MS,
      });
      async function* lines(): AsyncGenerator<string> {
        try {
          for await (const batch of outcomes) {
            let text = '';
            for (const outcome of batch) {
              text += `${outcomeLine(outcome)}\n`;
              if (outcome.ok) {
                scored++;
                probabilityHistogram.observe(outcome.result.probability);
              } else {
                invalid++;
              }
            }
            yield text;
          }
        } finally {
          finish();
        }
      }
      reply.type(`${NDJSON}; charset=utf-8`);
      return reply.send(Readable.from(lines(), { objectMode: false }));
    },
  );
}
