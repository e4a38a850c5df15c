/**
 * Dynamic batching: stays from concurrent requests, coalesced by length behind a bounded queue. A
 * batch forms at once when a worker is idle; otherwise one batch is prepared ahead when full or
 * after maxQueueDelayMs (Triton's max_queue_delay_microseconds). Same-tick submits always coalesce.
 * Rows go max-min fair to the callers queued, least served first; each holds maxQueuePerCaller at most.
 */
import type { Engine, EngineBatch } from './engine.js';
import {
  BatcherDrainingError,
  EngineRunError,
  QueueFullError,
  RequestExceedsQueueError,
  abortError,
} from './errors.js';
import { planBatch } from './batch-plan.js';

export { BatcherDrainingError, EngineRunError, QueueFullError, RequestExceedsQueueError } from './errors.js';

export interface BatcherObserver {
  /** One engine batch finished (or failed): stays in it, seconds in the engine, share of padded cells. */
  batchRun?(size: number, seconds: number, paddingFraction: number): void;
  /** Once per request: seconds from submit until its last stay left the queue. */
  queueWait?(seconds: number): void;
  /** Queued stays (not yet in a batch), after every change. */
  depthChanged?(depth: number): void;
  rejected?(reason: 'queue_full' | 'too_large' | 'draining'): void;
}

export interface BatcherOptions<P> {
  engine: Engine;
  /** Builds the tensor of these stays, padded to the longest of them (not to maxHours). */
  buildBatch: (patients: P[]) => EngineBatch;
  maxBatchSize: number;
  maxQueueDelayMs: number;
  /** Most stays (engine rows) waiting in the queue; beyond it submits fail with QueueFullError. */
  maxQueueSize: number;
  /** Most of them one caller may hold (default maxQueueSize): the rest stays free for the others. */
  maxQueuePerCaller?: number;
  /** Hours the stay will occupy in the tensor (1..maxHours). */
  lengthOf: (patient: P) => number;
  observer?: BatcherObserver;
}

interface Request<P> {
  patients: P[];
  flow: Flow<P>;
  results: Float32Array;
  /** submitPerHour's: each stay's probability after each of its hours, filled as its batch returns. */
  perHour: Float32Array[] | undefined;
  /** Stays still in the queue. */
  queued: number;
  /** Stays without a result yet (queued or running). */
  unresolved: number;
  submittedAt: number;
  settled: boolean;
  resolve(results: Float32Array): void;
  reject(error: Error): void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** One caller's queued stays, by length, each list oldest first. */
interface Flow<P> {
  caller: string;
  buckets: Map<number, Item<P>[]>;
  depth: number;
  /** Stays taken into batches since the caller's queue was last empty: the least served go first. */
  served: number;
}

interface Item<P> {
  request: Request<P>;
  index: number;
  length: number;
  /** Arrival order: the lowest is the oldest. */
  seq: number;
  enqueuedAt: number;
}

const nowSeconds = (): number => performance.now() / 1000;

export class Batcher<P> {
  readonly #engine: Engine;
  readonly #buildBatch: (patients: P[]) => EngineBatch;
  readonly #maxBatchSize: number;
  readonly #maxQueueDelaySeconds: number;
  readonly #maxQueueSize: number;
  readonly #maxQueuePerCaller: number;
  readonly #lengthOf: (patient: P) => number;
  readonly #observer: BatcherObserver;
  /** Batches allowed in the engine at once: one per worker plus one prepared ahead. */
  readonly #maxInFlight: number;
  readonly #concurrency: number;

  /** Callers with stays queued. */
  readonly #flows = new Map<string, Flow<P>>();
  #depth = 0;
  #seq = 0;
  #inFlight = 0;
  /** Batches prepared ahead, in the order the engine will start them. */
  readonly #waitingToStart: Array<{ started: number | undefined }> = [];
  #pumpScheduled = false;
  #timer: NodeJS.Timeout | undefined;
  #draining = false;
  #drainWaiters: Array<() => void> = [];
  /** Smoothed engine throughput (stays/s) for Retry-After hints. */
  #staysPerSecond = 0;

  constructor(opts: BatcherOptions<P>) {
    const maxQueuePerCaller = opts.maxQueuePerCaller ?? opts.maxQueueSize;
    for (const [key, value] of Object.entries({
      maxBatchSize: opts.maxBatchSize,
      maxQueueSize: opts.maxQueueSize,
      maxQueuePerCaller,
    })) {
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`batcher ${key} must be an integer >= 1`);
    }
    if (!(opts.maxQueueDelayMs >= 0)) throw new RangeError('batcher maxQueueDelayMs must be >= 0');
    this.#engine = opts.engine;
    this.#buildBatch = opts.buildBatch;
    this.#maxBatchSize = opts.maxBatchSize;
    this.#maxQueueDelaySeconds = opts.maxQueueDelayMs / 1000;
    this.#maxQueueSize = opts.maxQueueSize;
    this.#maxQueuePerCaller = Math.min(maxQueuePerCaller, opts.maxQueueSize);
    this.#lengthOf = opts.lengthOf;
    this.#observer = opts.observer ?? {};
    this.#concurrency = Math.max(1, opts.engine.concurrency ?? 1);
    this.#maxInFlight = this.#concurrency + 1;
  }

  /** Stays waiting in the queue (not yet in a batch). */
  get depth(): number {
    return this.#depth;
  }

  /**
   * Throws what submit() would reject `rows` more stays of `caller` with now (QueueFullError,
   * BatcherDrainingError, RequestExceedsQueueError): lets a caller refuse work before it builds the rows.
   */
  admit(rows: number, caller = ''): void {
    const refusal = this.#refusal(rows, caller);
    if (refusal !== undefined) throw refusal;
  }

  /**
   * Scores the stays; resolves to one probability per patient, in input order. Rejects with
   * QueueFullError (queue bounded), RequestExceedsQueueError (more stays than one caller may
   * ever queue), BatcherDrainingError (shutting down), EngineRunError
   * (a batch holding one of its stays failed) or an AbortError DOMException (signal fired).
   * `caller` names whose share of the engine the stays use (e.g. the authenticated principal).
   */
  submit(patients: P[], signal?: AbortSignal, caller = ''): Promise<Float32Array> {
    return this.#enqueue(patients, signal, caller, undefined);
  }

  /** Whether submitPerHour can be used: the engine has the model's per-hour output. */
  get perHour(): boolean {
    return this.#engine.runPerHour !== undefined;
  }

  /**
   * As submit, and also each stay's probability after each of its hours (lengthOf(patient) of
   * them), from the same engine rows: their batches fetch the engine's per-hour output.
   */
  submitPerHour(
    patients: P[],
    signal?: AbortSignal,
    caller = '',
  ): Promise<{ probabilities: Float32Array; perHour: Float32Array[] }> {
    if (!this.perHour) return Promise.reject(new EngineRunError('this model has no per-hour output'));
    const perHour = new Array<Float32Array>(patients.length);
    return this.#enqueue(patients, signal, caller, perHour).then((probabilities) => ({ probabilities, perHour }));
  }

  #enqueue(
    patients: P[],
    signal: AbortSignal | undefined,
    caller: string,
    perHour: Float32Array[] | undefined,
  ): Promise<Float32Array> {
    const n = patients.length;
    if (!this.#draining && signal?.aborted) return Promise.reject(abortError());
    if (!this.#draining && n === 0) return Promise.resolve(new Float32Array(0));
    const refusal = this.#refusal(n, caller);
    if (refusal !== undefined) return Promise.reject(refusal);
    const lengths = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      const len = this.#lengthOf(patients[i] as P);
      if (!Number.isInteger(len) || len < 1) {
        return Promise.reject(new RangeError(`patient ${i} has ${len} hours; at least 1 is needed`));
      }
      lengths[i] = len;
    }

    return new Promise<Float32Array>((resolve, reject) => {
      const now = nowSeconds();
      let flow = this.#flows.get(caller);
      if (flow === undefined) {
        flow = { caller, buckets: new Map(), depth: 0, served: 0 };
        this.#flows.set(caller, flow);
      }
      const request: Request<P> = {
        patients,
        flow,
        results: new Float32Array(n),
        perHour,
        queued: n,
        unresolved: n,
        submittedAt: now,
        settled: false,
        resolve,
        reject,
        signal,
        onAbort: undefined,
      };
      for (let i = 0; i < n; i++) {
        const length = lengths[i] as number;
        let bucket = flow.buckets.get(length);
        if (bucket === undefined) {
          bucket = [];
          flow.buckets.set(length, bucket);
        }
        bucket.push({ request, index: i, length, seq: this.#seq++, enqueuedAt: now });
      }
      flow.depth += n;
      this.#setDepth(this.#depth + n);
      if (signal !== undefined) {
        request.onAbort = () => this.#fail(request, abortError());
        signal.addEventListener('abort', request.onAbort, { once: true });
      }
      this.#schedulePump();
    });
  }

  /**
   * Stops accepting work, runs everything queued without waiting for fuller batches, resolves when all has finished.
   */
  drain(): Promise<void> {
    this.#draining = true;
    this.#clearTimer();
    const done = new Promise<void>((resolve) => this.#drainWaiters.push(resolve));
    this.#pump();
    this.#checkDrained();
    return done;
  }

  /** Why `n` more stays of `caller` cannot be queued now (or ever), if they cannot. */
  #refusal(n: number, caller: string): QueueFullError | RequestExceedsQueueError | undefined {
    if (this.#draining) {
      this.#observer.rejected?.('draining');
      return new BatcherDrainingError();
    }
    if (n > this.#maxQueuePerCaller) {
      this.#observer.rejected?.('too_large');
      return new RequestExceedsQueueError(
        `the request needs ${n} engine rows; one caller may queue at most ${this.#maxQueuePerCaller}` +
          ' (MAX_QUEUE_SIZE x CALLER_QUEUE_SHARE): send fewer patients per request, or use POST /v1/predict/stream',
      );
    }
    const held = this.#flows.get(caller)?.depth ?? 0;
    let message: string | undefined;
    if (this.#depth + n > this.#maxQueueSize)
      message = `the prediction queue is full (${this.#depth} of ${this.#maxQueueSize} engine rows waiting)`;
    else if (held + n > this.#maxQueuePerCaller)
      message = `this caller already has ${held} engine rows waiting, of ${this.#maxQueuePerCaller} allowed per caller; the request needs ${n}`;
    if (message === undefined) return undefined;
    this.#observer.rejected?.('queue_full');
    return new QueueFullError(message, this.#retryAfterSeconds());
  }

  #setDepth(depth: number): void {
    this.#depth = depth;
    this.#observer.depthChanged?.(depth);
  }

  #retryAfterSeconds(): number {
    if (this.#staysPerSecond <= 0) return 1;
    return Math.min(60, (this.#depth + this.#inFlight * this.#maxBatchSize) / this.#staysPerSecond);
  }

  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    setImmediate(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#depth > 0 && this.#inFlight < this.#maxInFlight) {
      const idle = this.#inFlight < this.#concurrency;
      const full = this.#depth >= this.#maxBatchSize;
      const waited = nowSeconds() - this.#oldest().enqueuedAt;
      if (!(idle || full || this.#draining || waited >= this.#maxQueueDelaySeconds)) {
        this.#armTimer(this.#maxQueueDelaySeconds - waited);
        return;
      }
      this.#dispatch();
    }
    this.#clearTimer();
  }

  #armTimer(seconds: number): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#pump();
      },
      Math.max(0, Math.ceil(seconds * 1000)),
    );
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The oldest queued stay, of all callers or of one. */
  #oldest(flows: Iterable<Flow<P>> = this.#flows.values()): Item<P> {
    let oldest: Item<P> | undefined;
    for (const flow of flows) {
      for (const bucket of flow.buckets.values()) {
        const head = bucket[0];
        if (head !== undefined && (oldest === undefined || head.seq < oldest.seq)) oldest = head;
      }
    }
    if (oldest === undefined) throw new Error('batcher queue is empty');
    return oldest;
  }

  /**
   * The next batch: max-min fair shares of maxBatchSize rows between the callers with stays
   * queued (a caller needing less than an equal share leaves the rest to the others; remainders
   * go to the least served), then each caller's share cut from its own queue by length
   * (planBatch, anchored on its oldest stay).
   */
  #takeBatch(): Item<P>[] {
    const shares = new Map<Flow<P>, number>();
    let left = this.#maxBatchSize;
    // A stable sort: equally served callers keep their arrival order.
    let open = [...this.#flows.values()].sort((a, b) => a.served - b.served);
    while (left > 0 && open.length > 0) {
      // With more callers than rows, the least served get one each; the others are then less served.
      const each = Math.max(1, Math.floor(left / open.length));
      for (const flow of open) {
        const give = Math.min(each, flow.depth - (shares.get(flow) ?? 0), left);
        shares.set(flow, (shares.get(flow) ?? 0) + give);
        left -= give;
        if (left === 0) break;
      }
      open = open.filter((flow) => (shares.get(flow) ?? 0) < flow.depth);
    }
    const items: Item<P>[] = [];
    for (const [flow, share] of shares) {
      if (share === 0) continue;
      const counts = [...flow.buckets.entries()]
        .map(([len, bucket]) => [len, bucket.length] as const)
        .sort((a, b) => a[0] - b[0]);
      for (const [len, count] of planBatch(counts, this.#oldest([flow]).length, share)) {
        const bucket = flow.buckets.get(len) as Item<P>[];
        items.push(...bucket.splice(0, count));
        if (bucket.length === 0) flow.buckets.delete(len);
      }
      flow.depth -= share;
      flow.served += share;
      if (flow.depth === 0) this.#flows.delete(flow.caller);
    }
    return items;
  }

  #dispatch(): void {
    const items = this.#takeBatch();
    this.#setDepth(this.#depth - items.length);
    const now = nowSeconds();
    for (const item of items) {
      const request = item.request;
      request.queued--;
      if (request.queued === 0) this.#observer.queueWait?.(now - request.submittedAt);
    }

    let batch: EngineBatch;
    try {
      batch = this.#buildBatch(items.map((item) => item.request.patients[item.index] as P));
    } catch (error) {
      this.#failBatch(items, new EngineRunError('could not build the batch', { cause: error }));
      return;
    }
    const lengthSum = items.reduce((sum, item) => sum + item.length, 0);
    const paddingFraction = batch.time > 0 ? Math.max(0, 1 - lengthSum / (items.length * batch.time)) : 0;

    // A batch prepared ahead waits in the engine until a worker frees; its run time starts
    // then, so that batch durations (and the throughput behind Retry-After) exclude the wait.
    const timing = { started: this.#inFlight < this.#concurrency ? nowSeconds() : undefined };
    if (timing.started === undefined) this.#waitingToStart.push(timing);
    this.#inFlight++;
    const finish = (): void => {
      const now = nowSeconds();
      const seconds = now - (timing.started ?? now);
      this.#inFlight--;
      const waitingAt = this.#waitingToStart.indexOf(timing);
      if (waitingAt >= 0) {
        // Failed before it started (e.g. refused as malformed): no worker was freed.
        this.#waitingToStart.splice(waitingAt, 1);
      } else {
        const next = this.#waitingToStart.shift();
        if (next !== undefined) next.started = now;
      }
      this.#observer.batchRun?.(items.length, seconds, paddingFraction);
      if (seconds > 0) {
        const rate = items.length / seconds;
        this.#staysPerSecond = this.#staysPerSecond === 0 ? rate : 0.8 * this.#staysPerSecond + 0.2 * rate;
      }
    };
    // Per-hour output only for batches that hold a submitPerHour stay; the others skip its copy.
    const runPerHour = items.some((item) => item.request.perHour !== undefined) ? this.#engine.runPerHour : undefined;
    const time = batch.time;
    let run: Promise<{ probabilities: Float32Array; perHour?: Float32Array }>;
    try {
      run =
        runPerHour === undefined
          ? this.#engine.run(batch).then((probabilities) => ({ probabilities }))
          : runPerHour.call(this.#engine, batch);
    } catch (error) {
      run = Promise.reject(error);
    }
    run.then(
      ({ probabilities, perHour }) => {
        finish();
        if (probabilities.length !== items.length) {
          this.#failBatch(
            items,
            new EngineRunError(`the engine returned ${probabilities.length} results for ${items.length} stays`),
          );
        } else {
          for (let k = 0; k < items.length; k++) {
            const item = items[k] as Item<P>;
            const request = item.request;
            if (request.settled) continue;
            request.results[item.index] = probabilities[k] as number;
            if (request.perHour !== undefined && perHour !== undefined)
              // A view: the worker's fresh buffer, never pooled or refilled.
              request.perHour[item.index] = perHour.subarray(k * time, k * time + item.length);
            request.unresolved--;
            if (request.unresolved === 0) this.#settle(request);
          }
        }
        this.#afterBatch();
      },
      (error: unknown) => {
        finish();
        this.#failBatch(
          items,
          error instanceof EngineRunError ? error : new EngineRunError('the inference batch failed', { cause: error }),
        );
        this.#afterBatch();
      },
    );
  }

  #afterBatch(): void {
    this.#pump();
    this.#checkDrained();
  }

  #failBatch(items: Item<P>[], error: Error): void {
    const requests = new Set(items.map((item) => item.request));
    for (const request of requests) this.#fail(request, error);
  }

  #settle(request: Request<P>): void {
    request.settled = true;
    if (request.onAbort !== undefined) request.signal?.removeEventListener('abort', request.onAbort);
    request.resolve(request.results);
  }

  /** Rejects a request and takes its stays that are still queued out of the queue. */
  #fail(request: Request<P>, error: Error): void {
    if (request.settled) return;
    request.settled = true;
    if (request.onAbort !== undefined) request.signal?.removeEventListener('abort', request.onAbort);
    if (request.queued > 0) {
      const flow = request.flow;
      let removed = 0;
      for (const [len, bucket] of flow.buckets) {
        const kept = bucket.filter((item) => item.request !== request);
        removed += bucket.length - kept.length;
        if (kept.length === 0) flow.buckets.delete(len);
        else flow.buckets.set(len, kept);
      }
      request.queued = 0;
      flow.depth -= removed;
      if (flow.depth === 0 && this.#flows.get(flow.caller) === flow) this.#flows.delete(flow.caller);
      this.#setDepth(this.#depth - removed);
    }
    request.reject(error);
    this.#checkDrained();
  }

  #checkDrained(): void {
    if (this.#draining && this.#depth === 0 && this.#inFlight === 0) {
      for (const resolve of this.#drainWaiters.splice(0)) resolve();
    }
  }
}
