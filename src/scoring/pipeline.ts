import { setImmediate as nextTurn } from 'node:timers/promises';
import type { PatientValidator } from '../clinical/validate.js';
import { scoreValid, type ValidOutcome } from './score.js';
import type { RowSink } from './score-stays.js';
import type { FieldIssue, PredictionResult, ValidPatient } from '../clinical/types.js';
import { reportAll, type ModelRef, type Observe, type Observed } from './observer.js';

/**
 * Scores patients of any number in input order with bounded memory (the stream and the CLI):
 * at most `window` batches in flight, so a slow consumer stops the reader; the main thread
 * validates the next batch while a worker scores this one.
 */

/** A record as a reader produced it: either an unvalidated patient or a reason it could not be read. */
export type ScoreInput<W> =
  | { where: W; id?: string; input: unknown; failure?: undefined }
  | { where: W; id?: string; input?: undefined; failure: RecordFailure };

/** The API's error shape, with paths still as arrays (the caller formats them). */
export interface RecordFailure {
  error: string;
  message: string;
  details: FieldIssue[];
}

export type ScoreOutcome<W> =
  | { where: W; id?: string; ok: true; result: PredictionResult; patient: ValidPatient }
  | { where: W; id?: string; ok: false; failure: RecordFailure };

/**
 * Batches in flight for the stream and the CLI: enough for every engine worker to have one running
 * and one queued (src/inference/engine.ts) while the next is read and validated.
 */
export const DEFAULT_WINDOW = 8;

export interface PipelineOptions {
  validator: PatientValidator;
  model: ModelRef;
  /** Scores valid patients, one probability each; may reject (the batch's records then fail). */
  scoreBatch(patients: ValidPatient[]): Promise<ArrayLike<number>>;
  /** As scoreBatch, with each patient's probability after each hour: explanations read their trajectory from it. */
  scoreBatchPerHour?: RowSink['submitPerHour'];
  /**
   * The failure reported for each record of a batch whose scoring threw (default: inference_failed with the error's
   * message).
   */
  failureOf?(error: unknown): RecordFailure;
  /** Records per batch. */
  batchSize: number;
  /** Batches in flight (submitted, not yet taken by the consumer); >= 2 to overlap reading with inference. */
  window: number;
  /**
   * Submit a partial batch when the input has been idle this long (ms). For interactive
   * streams, where the next line may come only after this one's result; a file needs none.
   */
  flushIdleMs?: number;
  /** Report missingThroughout per result (the API does; a CSV file has no column for it). */
  reportMissing?: boolean;
  /** Add each result's trajectory and contributions (src/clinical/explain.ts). */
  explain?: boolean;
  /**
   * Where each record's outcome is reported: `invalid` for one that could not be read or
   * validated, `failed` for a valid one that got no result.
   */
  observe?: Observe;
}

type Entry<W> = { where: W; id?: string; patient: ValidPatient } | { where: W; id?: string; failure: RecordFailure };

/** Validation of one record: the failure the API would answer for it, or the valid patient. */
function validateOne<W>(item: ScoreInput<W>, validator: PatientValidator): Entry<W> {
  const base = item.id === undefined ? { where: item.where } : { where: item.where, id: item.id };
  if (item.failure !== undefined) return { ...base, failure: item.failure };
  const outcome = validator.validate(item.input);
  if (!outcome.ok)
    return {
      ...base,
      failure: { error: 'validation_failed', message: 'the patient failed validation', details: outcome.issues },
    };
  return { ...base, patient: outcome.patient };
}

const IDLE = Symbol('idle');

/** Groups items into arrays of up to `size`; with `flushIdleMs`, also when the source idles. */
export async function* batches<T>(source: AsyncIterable<T>, size: number, flushIdleMs?: number): AsyncGenerator<T[]> {
  const it = source[Symbol.asyncIterator]();
  let pending: Promise<IteratorResult<T>> | undefined;
  let chunk: T[] = [];
  let finished = false;
  // One idle timer per partial batch, pushed back as each item arrives, rather than a new
  // timer per item.
  const idle = flushIdleMs === undefined ? undefined : new IdleTimer(flushIdleMs);
  try {
    for (;;) {
      pending ??= it.next();
      const next =
        chunk.length > 0 && idle !== undefined ? await Promise.race([pending, idle.expired()]) : await pending;
      if (next === IDLE) {
        idle?.stop();
        yield chunk;
        chunk = [];
        continue;
      }
      pending = undefined;
      if (next.done) break;
      chunk.push(next.value);
      if (chunk.length >= size) {
        idle?.stop();
        yield chunk;
        chunk = [];
      } else {
        idle?.restart();
      }
    }
    finished = true;
    idle?.stop();
    if (chunk.length > 0) yield chunk;
  } finally {
    idle?.stop();
    // Stopped early by our consumer: let the source release what it holds (files, request streams).
    if (!finished && pending === undefined) await it.return?.();
    // A read still in flight settles when the caller closes the source; nobody awaits it then.
    else if (!finished) pending?.catch(() => undefined);
  }
}

/** Resolves expired() to IDLE once `ms` pass without a restart(); restart() pushes the deadline back. */
class IdleTimer {
  readonly #ms: number;
  #timer: NodeJS.Timeout | undefined;
  #expired: Promise<typeof IDLE> | undefined;
  #resolve: ((value: typeof IDLE) => void) | undefined;

  constructor(ms: number) {
    this.#ms = ms;
  }

  /** Starts the countdown, or pushes it back if running. */
  restart(): void {
    if (this.#timer === undefined) {
      // Not running, or ran out while an item won the race: a fresh countdown.
      this.#expired = undefined;
      this.#resolve = undefined;
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#resolve?.(IDLE);
      }, this.#ms);
    } else {
      this.#timer.refresh();
    }
  }

  /** The current countdown's end (a new one after stop()). */
  expired(): Promise<typeof IDLE> {
    this.#expired ??= new Promise((resolve) => {
      this.#resolve = resolve;
    });
    return this.#expired;
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#expired = undefined;
    this.#resolve = undefined;
  }
}

/** A batch's outcomes, and the same as its observers see them. */
interface ScoredBatch<W> {
  outcomes: ScoreOutcome<W>[];
  observed: Observed[];
}

async function scoreEntries<W>(entries: Entry<W>[], opts: PipelineOptions): Promise<ScoredBatch<W>> {
  const patients: ValidPatient[] = [];
  for (const e of entries) if ('patient' in e) patients.push(e.patient);
  let scored: ValidOutcome[] | undefined;
  let failure: RecordFailure | undefined;
  // A batch of invalid records only must still give the event loop a turn, as the engine's
  // answer does for a scored batch: a flood of bad lines would otherwise starve every other request.
  if (patients.length === 0) await nextTurn();
  else {
    try {
      scored = await scoreValid(patients, {
        manifest: opts.validator.manifest,
        model: opts.model,
        sink: {
          submit: (rows) => opts.scoreBatch(rows),
          ...(opts.scoreBatchPerHour === undefined ? {} : { submitPerHour: opts.scoreBatchPerHour }),
        },
        explain: opts.explain === true,
        reportMissing: opts.reportMissing,
      });
    } catch (error) {
      failure = opts.failureOf?.(error) ?? {
        error: 'inference_failed',
        message: error instanceof Error ? error.message : 'inference failed',
        details: [],
      };
    }
  }
  let k = 0;
  const observed: Observed[] = new Array(entries.length);
  const outcomes = entries.map((e, i): ScoreOutcome<W> => {
    const base = e.id === undefined ? { where: e.where } : { where: e.where, id: e.id };
    if (!('patient' in e)) {
      observed[i] = 'invalid';
      return { ...base, ok: false, failure: e.failure };
    }
    const outcome = scored?.[k++];
    if (outcome?.ok) {
      observed[i] = outcome.result;
      return { ...base, ok: true, result: outcome.result, patient: e.patient };
    }
    // A valid patient without a result failed: the engine failed on its batch, or gave no probability for it.
    observed[i] = 'failed';
    return {
      ...base,
      ok: false,
      failure: failure ?? (outcome ? { ...outcome.failure, details: [] } : FAILED_WITHOUT_OUTPUT),
    };
  });
  return { outcomes, observed };
}

const FAILED_WITHOUT_OUTPUT: RecordFailure = {
  error: 'inference_failed',
  message: 'no probability returned',
  details: [],
};

/** A one-shot wake-up: wait() resolves at the next wake() (or at once if one came since the last wait). */
class Signal {
  #resolve: (() => void) | undefined;
  #pending = false;

  wait(): Promise<void> {
    if (this.#pending) {
      this.#pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.#resolve = resolve;
    });
  }

  wake(): void {
    const resolve = this.#resolve;
    this.#resolve = undefined;
    if (resolve) resolve();
    else this.#pending = true;
  }
}

/**
 * Scores `items` in order, yielding the outcomes batch by batch (one array per batch, so
 * that a writer can write a batch at once). Returning early from the generator (a client
 * that went away) stops the producer: it submits nothing more and closes its source.
 */
export async function* scoreInOrder<W>(
  items: AsyncIterable<ScoreInput<W>>,
  opts: PipelineOptions,
): AsyncGenerator<ScoreOutcome<W>[]> {
  if (!(opts.batchSize >= 1) || !(opts.window >= 1)) throw new RangeError('batchSize and window must be >= 1');
  const inFlight: Array<Promise<ScoredBatch<W>>> = [];
  const toConsumer = new Signal();
  const toProducer = new Signal();
  let stopped = false;
  let done = false;
  let failed: { error: unknown } | undefined;

  const producer = (async () => {
    try {
      // Validated batch by batch rather than through another async generator: each layer of
      // those costs a promise and a microtask turn per record.
      for await (const chunk of batches(items, opts.batchSize, opts.flushIdleMs)) {
        if (stopped) break;
        const entries = chunk.map((item) => validateOne(item, opts.validator));
        inFlight.push(scoreEntries(entries, opts));
        toConsumer.wake();
        while (inFlight.length >= opts.window && !stopped) await toProducer.wait();
        if (stopped) break;
      }
    } catch (error) {
      failed = { error };
    } finally {
      done = true;
      toConsumer.wake();
    }
  })();

  try {
    for (;;) {
      const head = inFlight[0];
      if (head === undefined) {
        if (done) break;
        await toConsumer.wait();
        continue;
      }
      const { outcomes, observed } = await head;
      inFlight.shift();
      toProducer.wake();
      // Reported as the consumer takes them: a batch dropped unread (a client gone, a CLI run
      // interrupted) was never answered, and is not counted.
      if (opts.observe) reportAll(opts.observe, opts.model, observed);
      yield outcomes;
    }
    if (failed) throw failed.error;
  } finally {
    stopped = true;
    toProducer.wake();
    // A producer still waiting on its source (a request body) ends when the caller closes
    // that source; awaiting it here would wait for a client that has gone.
    if (done) await producer;
  }
}
