import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z, type ZodType } from 'zod';
import type { AppConfig } from '../config.js';
import { BatcherDrainingError, QueueFullError } from '../inference/errors.js';
import type { ModelBatcher, ModelLease } from '../scoring/repository.js';
import type { ValidPatient } from '../clinical/types.js';
import type { PatientValidator } from '../clinical/validate.js';
import { splitLines } from '../scoring/lines.js';
import { parseNdjsonLine } from '../scoring/ndjson.js';
import {
  DEFAULT_WINDOW,
  scoreInOrder,
  type RecordFailure,
  type ScoreInput,
  type ScoreOutcome,
} from '../scoring/pipeline.js';
import { recordAudit } from '../plugins/app/audit.js';
import { rateLimitKey } from '../plugins/external/rate-limit.js';
import { errorSchema, issuesToDetails } from '../http/errors.js';
import { describeError, mapScoringError } from '../http/error-table.js';
import './scope.js';
import { budgetedChunks, LineBudget } from './stream-budget.js';

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

type Where = number;

/** Why a stream stopped reading its input before the end. */
type CutReason = 'shutting_down' | 'error_limit';

const STOPPED = Symbol('stopped');

/**
 * The chunks of `body` until `signal` aborts. It never calls the body's return(), which would
 * destroy the request and with it the response that still has to say why it was cut.
 */
async function* untilStopped(body: Readable, signal: AbortSignal): AsyncGenerator<Buffer> {
  const it = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  while (!signal.aborted) {
    // A listener per read, removed once it settles: racing one long-lived promise instead kept
    // every chunk reachable from its reactions (bench/RESULTS.md, "History").
    const next = await new Promise<IteratorResult<Buffer> | typeof STOPPED>((resolve, reject) => {
      const onAbort = (): void => resolve(STOPPED);
      signal.addEventListener('abort', onAbort, { once: true });
      it.next().then(
        (r) => {
          signal.removeEventListener('abort', onAbort);
          resolve(r);
        },
        (e: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      );
    });
    if (next === STOPPED || next.done) return;
    yield next.value;
  }
}

function endLine(reason: CutReason, afterLine: number, maxErrorLines: number): string {
  const message =
    reason === 'error_limit'
      ? `more than ${maxErrorLines} lines were invalid: the stream was ended after line ${afterLine}; check the input, then resubmit from line ${afterLine + 1}`
      : `the service is shutting down: lines after ${afterLine} were not scored; resubmit them from line ${afterLine + 1}`;
  return `${JSON.stringify({ end: { reason, afterLine, message } })}\n`;
}

function isReadable(body: unknown): body is Readable {
  return (
    typeof body === 'object' &&
    body !== null &&
    typeof (body as Readable).pipe === 'function' &&
    Symbol.asyncIterator in body
  );
}

async function* inputs(
  body: AsyncIterable<Buffer>,
  maxLineBytes: number,
  validator: PatientValidator,
  stop: AbortSignal,
): AsyncGenerator<ScoreInput<Where>> {
  for await (const line of splitLines(body, maxLineBytes)) {
    if (stop.aborted) return;
    const parsed = parseNdjsonLine(line, maxLineBytes, validator);
    if (parsed.failure?.error === 'line_too_long') parsed.failure.message += ' (STREAM_MAX_LINE_BYTES)';
    const base = parsed.id === undefined ? { where: line.number } : { where: line.number, id: parsed.id };
    yield parsed.failure ? { ...base, failure: parsed.failure } : { ...base, input: parsed.input };
  }
}

/**
 * Submits to the shared batcher. A full queue means other traffic is using the engine: wait and
 * retry rather than fail lines of a stream that is itself bounded. Shutting down fails the batch.
 */
async function submitPatiently(
  batcher: ModelBatcher,
  patients: ValidPatient[],
  signal: AbortSignal,
  caller: string,
): Promise<ArrayLike<number>> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await batcher.submit(patients, signal, caller);
    } catch (error) {
      if (!(error instanceof QueueFullError) || error instanceof BatcherDrainingError) throw error;
      await delay(Math.min(1000, 20 * 2 ** attempt), undefined, { signal });
    }
  }
}

/** A line's failure says what the whole request would (src/http/error-table.ts): code, and a 5xx's message hidden. */
function failureOf(error: unknown): RecordFailure {
  const { code, message } = describeError(error);
  return { error: code, message, details: [] };
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
      const session = new StreamSession(app, request, reply, body, lease, openStreams);
      const { model } = lease;
      const explain = query.explain === 'true';
      const outcomes = scoreInOrder(
        inputs(
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

/**
 * One stream's lease, counts and end. It finishes once, at the last line written or when the
 * connection closes, which can come before its answer generator ever starts.
 */
class StreamSession {
  scored = 0;
  invalid = 0;
  cut: CutReason | undefined;
  /** Aborted to drop this stream's queued stays. */
  readonly scoring = new AbortController();
  /** Aborted to stop reading the body. */
  readonly reading = new AbortController();
  readonly probabilityHistogram;
  #finished = false;

  constructor(
    private readonly app: FastifyInstance,
    private readonly request: FastifyRequest,
    private readonly reply: FastifyReply,
    private readonly body: Readable,
    private readonly lease: ModelLease,
    private readonly openStreams: Set<(reason: CutReason) => void>,
  ) {
    this.probabilityHistogram = app.metrics.probability.labels(this.#labels());
    openStreams.add(this.cutStream);
    reply.raw.on('close', this.#onClose);
  }

  readonly cutStream = (reason: CutReason): void => {
    if (this.cut !== undefined) return;
    this.cut = reason;
    this.reading.abort();
  };

  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.openStreams.delete(this.cutStream);
    this.reply.raw.off('close', this.#onClose);
    const { model } = this.lease;
    if (this.scored > 0) this.app.metrics.predictions.inc({ ...this.#labels(), outcome: 'scored' }, this.scored);
    if (this.invalid > 0) this.app.metrics.predictions.inc({ ...this.#labels(), outcome: 'invalid' }, this.invalid);
    recordAudit(this.request, {
      patients: this.scored + this.invalid,
      model: `${model.name}@${model.version}`,
      ...(this.cut === undefined ? {} : { cut: this.cut }),
    });
    this.lease.release();
  }

  readonly #onClose = (): void => {
    if (!this.reply.raw.writableFinished) {
      // The client has gone: stop reading, and take this stream's stays out of the queue.
      this.scoring.abort(new Error('client disconnected'));
      this.body.destroy();
    }
    this.finish();
  };

  #labels(): { model: string; version: string } {
    return { model: this.lease.model.name, version: this.lease.model.version };
  }
}

/** The answer, a chunk per scored batch, then the end line of a cut stream. */
async function* answerLines(
  session: StreamSession,
  outcomes: AsyncIterable<Array<ScoreOutcome<Where>>>,
  maxErrorLines: number,
): AsyncGenerator<string> {
  let afterLine = 0;
  try {
    for await (const batch of outcomes) {
      let text = '';
      for (const outcome of batch) {
        if (outcome.ok) {
          session.scored++;
          session.probabilityHistogram.observe(outcome.result.probability);
        } else if (session.invalid === maxErrorLines) {
          session.cutStream('error_limit');
          // Queued batches of this stream are dropped, not scored for nobody.
          session.scoring.abort(new Error('stream error limit'));
          break;
        } else {
          session.invalid++;
        }
        text += `${outcomeLine(outcome)}\n`;
        afterLine = outcome.where;
      }
      yield text;
      if (session.cut === 'error_limit') break;
    }
    if (session.cut !== undefined) yield endLine(session.cut, afterLine, maxErrorLines);
  } finally {
    session.finish();
  }
}
