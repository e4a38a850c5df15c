import type { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { BatcherDrainingError, QueueFullError } from '../inference/errors.js';
import type { ValidPatient } from '../clinical/types.js';
import type { PatientValidator } from '../clinical/validate.js';
import { splitLines } from './lines.js';
import { parseNdjsonLine } from './ndjson.js';
import type { ScoreInput } from './pipeline.js';
import type { ModelBatcher } from '../model/repository.js';

/**
 * What feeds a streamed cohort into the scoring pipeline: the body's chunks until the stream is
 * stopped, its lines parsed and validated, and their batches submitted to the shared batcher.
 */

const STOPPED = Symbol('stopped');

/**
 * The chunks of `body` until `signal` aborts. It never calls the body's return(), which would
 * destroy the request and with it the response that still has to say why it was cut.
 */
export async function* untilStopped(body: Readable, signal: AbortSignal): AsyncGenerator<Buffer> {
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

export async function* streamInputs(
  body: AsyncIterable<Buffer>,
  maxLineBytes: number,
  validator: PatientValidator,
  stop: AbortSignal,
): AsyncGenerator<ScoreInput<number>> {
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
export async function submitPatiently(
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
