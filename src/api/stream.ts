import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z, type ZodType } from 'zod';
import type { AppConfig } from '../config.js';
import type { ModelLease } from '../model/repository.js';
import { DEFAULT_WINDOW, scoreInOrder } from '../scoring/pipeline.js';
import { streamInputs, submitPatiently, untilStopped } from '../scoring/stream-input.js';
import { rateLimitKey } from '../plugins/external/rate-limit.js';
import { errorSchema } from '../http/errors.js';
import { mapScoringError } from '../http/error-table.js';
import { failureOf, type CutReason } from '../http/ndjson-answer.js';
import './scope.js';
import { budgetedChunks, LineBudget } from './stream-budget.js';
import { answerLines, StreamSession } from './stream-session.js';

const NDJSON = 'application/x-ndjson';

const DESCRIPTION = `Scores a cohort of any size as a stream: the request body is NDJSON, one patient per line (the same
patient object as \`POST /v1/predict\`), sent with \`Content-Type: ${NDJSON}\`. The response is NDJSON too, one line per
input line, **in input order**, written as results are ready:

- a result: \`{ "line": 3, "id": "...", "probability": 0.12, "model": { "name", "version" }, "hoursUsed", "truncated", "missingThroughout", "inputProfile" }\`
- an error for that line only, scoring goes on: \`{ "line": 4, "id"?: "...", "error": { "error", "message", "details": [{ "path", "message" }] } }\`
  (\`invalid_json\`, \`line_too_long\`, \`validation_failed\` with paths such as \`hours.2.HR\`, \`shutting_down\`, \`internal_error\`,
  \`inference_failed\` when the engine failed on that line's batch or gave no finite probability for it).

With \`?explain=true\` each result line also has \`trajectory\` and \`contributions\` (see \`POST /v1/predict\`).

\`line\` counts every line of the body from 1, blank lines included (blank lines get no answer).

A stream that ends before its input does says so in a last line, \`{ "end": { "reason", "afterLine", "message" } }\`:
every line up to \`afterLine\` has its answer, nothing after it was scored, so a client resubmits from \`afterLine + 1\`.
Reasons: \`error_limit\` (more invalid lines than STREAM_MAX_ERROR_LINES: the input is probably not what it should be)
and \`shutting_down\` (the service is stopping; lines already being scored are answered first).
Every result line names the model version: one stream is scored by one version from start to end.
Memory is bounded whatever the input size: the service reads the body only as fast as it scores it and as the
client reads the answer, so a slow reader slows the upload (TCP backpressure). Closing the connection stops the
scoring and drops the queued work.
A line longer than STREAM_MAX_LINE_BYTES is answered with a \`line_too_long\` error line and skipped unread; all
streams together hold at most STREAM_MAX_BUFFERED_BYTES of lines longer than 1 MiB, and a stream whose line would
pass it waits for room (its upload slows) rather than failing.`;

const querySchema = z.object({
  model: z.string().optional().meta({ description: 'Model name the client expects (404 if another is served).' }),
  version: z.string().optional().meta({ description: 'Model version the client expects (404 if another is served).' }),
  explain: z.enum(['true', 'false']).optional().meta({
    description: 'true: each result line adds `trajectory` and `contributions`, as POST /v1/predict with explain.',
  }),
});

/** Documented as NDJSON text; the handler gets the request stream, or what another content type's parser made of it. */
const bodySchema: ZodType<unknown> = z.string().meta({
  description: `One patient object per line (the schema of a patient in POST /v1/predict), ${NDJSON}.`,
});
/** Documented as NDJSON text; the handler sends it as a stream of lines. */
const answerSchema: ZodType<unknown> = z
  .string()
  .meta({ description: 'One JSON object per line: a result or an error for that line.' });

/** A line arriving slower than this after the previous one: score what has come so far (interactive clients). */
const FLUSH_IDLE_MS = 2;

function isReadable(body: unknown): body is Readable {
  return (
    typeof body === 'object' &&
    body !== null &&
    typeof (body as Readable).pipe === 'function' &&
    Symbol.asyncIterator in body
  );
}

export async function streamRoutes(app: FastifyInstance, opts: { config: AppConfig }): Promise<void> {
  const { config } = opts;
  // Hand the raw body to the handler: the whole point is never to buffer it. Scoped to this plugin.
  app.addContentTypeParser(NDJSON, (_request, payload, done) => done(null, payload));
  // Open streams end with an in-band line when the service shuts down, well inside its grace period.
  const openStreams = new Set<(reason: CutReason) => void>();
  // Shared by every stream of this instance: the bound on the bytes of long lines held at once.
  const budget = new LineBudget(config.streamMaxBufferedBytes, config.streamMaxLineBytes);
  app.addHook('preClose', async () => {
    for (const cut of openStreams) cut('shutting_down');
  });

  app.withTypeProvider<ZodTypeProvider>().post(
    '/v1/predict/stream',
    {
      config: { scope: 'predict' },
      schema: {
        operationId: 'predictStream',
        tags: ['predict'],
        summary: 'Score a cohort streamed as NDJSON, results streamed back in order',
        description: DESCRIPTION,
        consumes: [NDJSON],
        querystring: querySchema,
        body: bodySchema,
        response: {
          200: {
            description: 'NDJSON, one line per input line, in input order (see above).',
            content: {
              [NDJSON]: {
                schema: answerSchema,
              },
            },
          },
          404: errorSchema,
          415: errorSchema,
          503: errorSchema,
        },
      },
      // The body is documented, not validated as a whole: it is a stream, read and validated line by line.
      validatorCompiler: (route) =>
        route.httpPart === 'body'
          ? (data: unknown) => ({ value: data })
          : validatorCompiler({ ...route, schema: route.schema as unknown as ZodType }),
    },
    async (request, reply) => {
      const { body } = request;
      if (!isReadable(body)) {
        return reply
          .code(415)
          .type('application/json; charset=utf-8')
          .send({
            error: 'unsupported_media_type',
            message: `send the cohort as ${NDJSON}, one patient per line`,
            details: [],
          });
      }
      const { query } = request;
      let lease: ModelLease;
      try {
        lease = app.models.acquire(query.model, query.version);
      } catch (error) {
        body.resume();
        throw mapScoringError(error, undefined, app.metrics);
      }
      const session = new StreamSession(request, reply, body, lease, openStreams);
      const { model } = lease;
      const explain = query.explain === 'true';
      const outcomes = scoreInOrder(
        streamInputs(
          budgetedChunks(
            untilStopped(body, session.reading.signal),
            budget,
            config.streamMaxLineBytes,
            session.reading.signal,
          ),
          config.streamMaxLineBytes,
          model.validator,
          session.reading.signal,
        ),
        {
          validator: model.validator,
          model: { name: model.name, version: model.version },
          scoreBatch: (patients) =>
            submitPatiently(model.batcher, patients, session.scoring.signal, rateLimitKey(request)),
          failureOf,
          // An explained stay is already a batch of its own (its prefixes and removals).
          batchSize: explain ? 1 : config.maxBatchSize,
          explain,
          window: DEFAULT_WINDOW,
          flushIdleMs: FLUSH_IDLE_MS,
          observe: { to: app.observers, route: 'stream' },
        },
      );
      reply.type(`${NDJSON}; charset=utf-8`);
      // A stream may stop reading its body before the end (a cut): its connection is never
      // reused, so Node closes it after the answer and no client sends a request into it.
      reply.header('connection', 'close');
      return reply.send(
        Readable.from(answerLines(session, outcomes, config.streamMaxErrorLines), { objectMode: false }),
      );
    },
  );
}
