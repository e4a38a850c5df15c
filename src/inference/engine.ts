/**
 * The inference engine: worker threads, each with one ONNX Runtime session, because
 * session.run() blocks its thread for the whole batch. Batches move by transfer, not copy; a
 * worker that dies fails only the batch it was running and is replaced.
 */
import type { Worker } from 'node:worker_threads';
import { usableCores } from './cpu-budget.js';
import { EngineRunError } from './errors.js';
import {
  isWhole,
  type BatchInputs,
  type FromWorker,
  type InputNames,
  type ReadyMessage,
  type RunRequest,
  type StartFailedMessage,
  type WorkerInit,
} from './protocol.js';
import { PROVIDER_NAMES, type ProviderName, providerOrder } from './providers.js';
import { newWorker, siblingModule } from './ts-worker.js';
import type { LogSink } from '../observability/logger.js';

export { EngineRunError } from './errors.js';
export { PROVIDER_NAMES, type ProviderName } from './providers.js';

export type EngineBatch = BatchInputs;

export interface EngineOptions {
  modelPath: string;
  /** Manifest onnx.inputs; with `note` (a hybrid model) every batch must carry note embeddings. */
  inputNames: InputNames;
  outputName: string;
  /** The graph's per-hour output (manifest onnx.outputs.perHour), when it has one: enables runPerHour. */
  perHourOutputName?: string;
  /** Preference order; unavailable providers are skipped with a warning and `cpu` is always the last resort. */
  providers: ProviderName[];
  /** Intra-op threads of each worker's session. Keep workers x intraOpThreads <= cores. */
  intraOpThreads: number;
  /** Worker threads, one session each. */
  workers: number;
  /**
   * Let idle intra-op threads spin (ORT session.intra_op.allow_spinning). Default false: on
   * a small machine spinning threads take CPU from the event loop between batches.
   */
  allowSpinning?: boolean;
  logger?: LogSink;
  /** Another worker entry (tests use an instrumented one); defaults to ./worker.{ts,js} beside this file. */
  workerUrl?: URL;
}

export interface Engine {
  /**
   * Scores one batch; resolves to one probability per stay. Takes ownership of batch.values and
   * batch.lengths: their buffers are transferred to the worker and are unusable afterwards.
   * Rejects with EngineRunError when the batch is malformed or the run fails.
   */
  run(batch: EngineBatch): Promise<Float32Array>;
  /**
   * As run, and also the probability after each hour of each stay [batch x time] (NaN past a
   * stay's length), fetched only here; present when the model has the output (perHourOutputName).
   */
  runPerHour?(batch: EngineBatch): Promise<EngineResult>;
  /** The execution provider actually in use. */
  readonly provider: string;
  /** How many batches can run at once (workers); the batcher keeps one more prepared. */
  readonly concurrency?: number;
  /**
   * A Float64Array of `length` for a batch's values, from the buffers workers have handed back
   * when there is one; its contents are stale, for the caller to overwrite entirely (optional:
   * callers fall back to `new Float64Array`).
   */
  allocate?(length: number): Float64Array;
  /** Finishes the runs already accepted, then releases the sessions and stops the workers. */
  close(): Promise<void>;
}

export interface EngineResult {
  probabilities: Float32Array;
  /** Batch-major [batch x time], time being the batch's padded length. */
  perHour: Float32Array;
}

/** The engine's allocate() bound to it, when it has one (engines behind narrower interfaces, test doubles). */
export function allocatorOf(engine: object): ((length: number) => Float64Array) | undefined {
  const allocate = (engine as Partial<Engine>).allocate;
  return typeof allocate === 'function' ? allocate.bind(engine) : undefined;
}

/**
 * Defaults for a CPU: one single-threaded session per core (or per CPU of a container's quota),
 * at most MAX_DEFAULT_WORKERS. The event loop takes a core's share whenever it runs, and an
 * intra-op pool stalls while one of its threads waits for a core; independent sessions do not
 * (bench/RESULTS.md, "History").
 */
export function defaultEngineThreads(cores: number = usableCores()): { workers: number; intraOpThreads: number } {
  return { workers: Math.min(Math.max(1, cores), MAX_DEFAULT_WORKERS), intraOpThreads: 1 };
}

/**
 * One event loop feeds about 4 sessions (bench/RESULTS.md, "History"); more would wait for it
 * and cost memory. Bigger hosts run several processes (replicas, or CLI shards).
 */
export const MAX_DEFAULT_WORKERS = 4;

export async function createEngine(opts: EngineOptions): Promise<Engine> {
  validateOptions(opts);
  const cores = usableCores();
  if (opts.workers * opts.intraOpThreads > cores) {
    opts.logger?.warn(
      { workers: opts.workers, intraOpThreads: opts.intraOpThreads, cores },
      'inference threads exceed CPU cores; oversubscribed ONNX Runtime thread pools run much slower',
    );
  }
  return WorkerPoolEngine.start(opts);
}

function validateOptions(opts: EngineOptions): void {
  if (!Number.isInteger(opts.workers) || opts.workers < 1)
    throw new RangeError('engine workers must be an integer >= 1');
  if (!Number.isInteger(opts.intraOpThreads) || opts.intraOpThreads < 1) {
    throw new RangeError('engine intraOpThreads must be an integer >= 1');
  }
  if (opts.providers.length === 0) throw new RangeError('engine providers must name at least one provider');
  for (const p of opts.providers) {
    if (!(PROVIDER_NAMES as readonly string[]).includes(p)) {
      throw new RangeError(`unknown execution provider "${p}" (known: ${PROVIDER_NAMES.join(', ')})`);
    }
  }
}

/** Checks a batch before it costs a worker round trip; ORT would silently give length 0 a zero state. */
export function batchProblem(batch: EngineBatch): string | undefined {
  const { values, statics, lengths, batch: n, time, nVariables, nStatics } = batch;
  if (!Number.isInteger(n) || n < 1) return `batch must be an integer >= 1, got ${n}`;
  if (!Number.isInteger(time) || time < 1) return `time must be an integer >= 1, got ${time}`;
  if (!Number.isInteger(nVariables) || nVariables < 1) return `nVariables must be an integer >= 1, got ${nVariables}`;
  if (!Number.isInteger(nStatics) || nStatics < 0) return `nStatics must be an integer >= 0, got ${nStatics}`;
  if (values.length !== n * time * nVariables)
    return `values has ${values.length} numbers, expected batch*time*nVariables = ${n * time * nVariables}`;
  if (statics.length !== n * nStatics)
    return `statics has ${statics.length} numbers, expected batch*nStatics = ${n * nStatics}`;
  if (lengths.length !== n) return `lengths has ${lengths.length} values, expected ${n}`;
  if (batch.note !== undefined) {
    const dim = batch.noteDim ?? 0;
    if (!Number.isInteger(dim) || dim < 1) return `noteDim must be an integer >= 1, got ${dim}`;
    if (batch.note.length !== n * dim)
      return `note has ${batch.note.length} values, expected batch*noteDim = ${n * dim}`;
  }
  for (let i = 0; i < n; i++) {
    const len = lengths[i] as number;
    if (len < 1 || len > time) return `lengths[${i}] = ${len} is outside 1..${time}`;
  }
  return undefined;
}

/** Transfers the view's buffer when it owns it alone; copies otherwise (a view into a larger or shared buffer). */
function transferable<T extends Float64Array | Int32Array>(
  view: T,
  copy: (v: T) => T,
): { view: T; buffer: ArrayBuffer } {
  const out = isWhole(view) ? view : copy(view);
  return { view: out, buffer: out.buffer as ArrayBuffer };
}

/** A copy to transfer, leaving the original untouched; values copies go into pooled buffers. */
function copyOf<T extends Float64Array | Int32Array>(view: T, pool?: BufferPool): { view: T; buffer: ArrayBuffer } {
  let out: T;
  if (pool !== undefined && view instanceof Float64Array) {
    out = pool.take(view.length) as T;
    out.set(view);
  } else {
    out = view.slice() as T;
  }
  return { view: out, buffer: out.buffer as ArrayBuffer };
}

interface PendingRun {
  id: number;
  batch: EngineBatch;
  /** Posted behind another run as a copy: batch.values is still ours (to run again elsewhere, then to reuse). */
  copied?: boolean;
  resolve(result: { probabilities: Float32Array; perHour?: Float32Array | undefined }): void;
  reject(error: Error): void;
}

/** 'ready': started and taking runs (up to RUNS_PER_WORKER at a time). */
type SlotState = 'starting' | 'ready' | 'stopped';

interface Slot {
  index: number;
  worker: Worker;
  state: SlotState;
  /** Runs handed to this worker, oldest (the one running) first; it runs them in order. */
  runs: PendingRun[];
}

/**
 * Runs handed to a worker at once, the one running and the next: the worker goes straight on to
 * the next batch while the main thread is busy with a long synchronous task (scanning a large body).
 */
const RUNS_PER_WORKER = 2;

const RESTART_BACKOFF_MS = [250, 1_000, 5_000, 30_000];
const CLOSE_GRACE_MS = 5_000;

/**
 * Values buffers handed back by the workers, by length, for the next batches: refilling a reused
 * tensor is far cheaper for the main thread than faulting in a fresh one, and spares the garbage
 * collector. Bounded: a few buffers per length and 64 MiB in all; past that, it starts over.
 */
class BufferPool {
  static readonly MAX_BYTES = 64 * 2 ** 20;
  static readonly PER_LENGTH = 4;
  readonly #free = new Map<number, Float64Array[]>();
  #bytes = 0;

  /** A buffer of `length` whose contents the caller overwrites entirely. */
  take(length: number): Float64Array {
    const reused = this.#free.get(length)?.pop();
    if (reused === undefined) return new Float64Array(length);
    this.#bytes -= reused.byteLength;
    return reused;
  }

  give(buffer: Float64Array): void {
    if ((this.#free.get(buffer.length)?.length ?? 0) >= BufferPool.PER_LENGTH) return;
    if (this.#bytes + buffer.byteLength > BufferPool.MAX_BYTES) {
      this.#free.clear();
      this.#bytes = 0;
    }
    // Looked up after a reset, so that #bytes counts exactly the buffers kept.
    const list = this.#free.get(buffer.length) ?? [];
    list.push(buffer);
    this.#free.set(buffer.length, list);
    this.#bytes += buffer.byteLength;
  }
}

class WorkerPoolEngine implements Engine {
  readonly provider: ProviderName;
  readonly concurrency: number;
  readonly runPerHour: ((batch: EngineBatch) => Promise<EngineResult>) | undefined;
  readonly #opts: EngineOptions;
  readonly #buffers = new BufferPool();
  readonly #slots: Slot[] = [];
  readonly #pending: PendingRun[] = [];
  #nextId = 1;
  #closing = false;
  #idleWaiters: Array<() => void> = [];

  private constructor(opts: EngineOptions, provider: ProviderName) {
    this.#opts = opts;
    this.provider = provider;
    this.concurrency = opts.workers;
    this.runPerHour =
      opts.perHourOutputName === undefined
        ? undefined
        : (batch) =>
            this.#submit({ ...batch, perHour: true }).then(({ probabilities, perHour }) => {
              if (perHour === undefined) throw new EngineRunError('the inference worker returned no per-hour output');
              return { probabilities, perHour };
            });
  }

  static async start(opts: EngineOptions): Promise<WorkerPoolEngine> {
    // The first worker chooses the provider; the others are started on that one, so that
    // every worker runs the same way.
    const first = spawn(opts, providerOrder(opts.providers));
    const ready = await waitReady(first);
    if (ready.type === 'start-failed') {
      await first.terminate();
      throw new Error(`could not open the model ${opts.modelPath}: ${describeFailures(ready)}`);
    }
    for (const failure of ready.failures) {
      opts.logger?.warn(
        { provider: failure.provider, reason: failure.reason },
        `execution provider "${failure.provider}" is unavailable; trying the next one`,
      );
    }
    const engine = new WorkerPoolEngine(opts, ready.provider);
    engine.#adopt(first, 0);
    const others = await Promise.all(
      Array.from({ length: opts.workers - 1 }, async (_, i) => {
        const worker = spawn(opts, [ready.provider]);
        return { worker, ready: await waitReady(worker), index: i + 1 };
      }),
    );
    let failure: string | undefined;
    for (const o of others) {
      if (o.ready.type === 'ready') engine.#adopt(o.worker, o.index);
      else {
        failure ??= `could not start inference worker ${o.index}: ${describeFailures(o.ready)}`;
        await o.worker.terminate();
      }
    }
    if (failure !== undefined) {
      await engine.close();
      throw new Error(failure);
    }
    opts.logger?.info(
      { provider: ready.provider, workers: opts.workers, intraOpThreads: opts.intraOpThreads },
      'inference engine ready',
    );
    return engine;
  }

  allocate(length: number): Float64Array {
    return this.#buffers.take(length);
  }

  run(batch: EngineBatch): Promise<Float32Array> {
    return this.#submit({ ...batch, perHour: false }).then((result) => result.probabilities);
  }

  #submit(batch: EngineBatch): Promise<{ probabilities: Float32Array; perHour?: Float32Array | undefined }> {
    if (this.#closing) return Promise.reject(new EngineRunError('the inference engine is closed'));
    const problem = batchProblem(batch);
    if (problem !== undefined) return Promise.reject(new EngineRunError(`malformed batch: ${problem}`));
    return new Promise((resolve, reject) => {
      this.#pending.push({ id: this.#nextId++, batch, resolve, reject });
      this.#pump();
    });
  }

  async close(): Promise<void> {
    this.#closing = true;
    await new Promise<void>((resolve) => {
      if (this.#isQuiet()) resolve();
      else this.#idleWaiters.push(resolve);
    });
    await Promise.all(this.#slots.map((slot) => stopWorker(slot)));
  }

  #isQuiet(): boolean {
    return this.#pending.length === 0 && this.#slots.every((s) => s.runs.length === 0);
  }

  #adopt(worker: Worker, index: number): void {
    const slot: Slot = { index, worker, state: 'ready', runs: [] };
    this.#slots[index] = slot;
    this.#listen(slot);
    this.#pump();
  }

  #listen(slot: Slot): void {
    const { worker } = slot;
    worker.on('message', (message: FromWorker) => {
      if (slot.worker !== worker) return;
      if (message.type === 'result' || message.type === 'run-failed') {
        const run = slot.runs[0];
        if (run === undefined || run.id !== message.id) return;
        slot.runs.shift();
        if (message.type === 'result' && message.values !== undefined) this.#buffers.give(message.values);
        if (run.copied && isWhole(run.batch.values)) this.#buffers.give(run.batch.values);
        if (message.type === 'result') run.resolve(message);
        else run.reject(new EngineRunError(`inference failed: ${message.message}`));
        this.#pump();
      }
    });
    worker.on('messageerror', () => {
      // A result that could not be deserialised: fail that run rather than wait for it forever.
      const run = slot.runs[0];
      if (slot.worker !== worker || run === undefined) return;
      slot.runs.shift();
      run.reject(new EngineRunError('the inference result could not be read'));
      this.#pump();
    });
    worker.on('error', (error: Error) => {
      this.#opts.logger?.error({ worker: slot.index, err: { message: error.message } }, 'inference worker error');
    });
    worker.on('exit', (code: number) => {
      if (slot.worker !== worker) return;
      slot.state = 'stopped';
      // The run in progress fails; the ones queued behind it had not started (the worker runs
      // them in order) and go back to the front of the queue for the next worker.
      const [run, ...notStarted] = slot.runs;
      slot.runs = [];
      this.#pending.unshift(...notStarted);
      if (this.#closing && run === undefined && notStarted.length === 0) return;
      this.#opts.logger?.error(
        { worker: slot.index, exitCode: code },
        'inference worker stopped unexpectedly; restarting it',
      );
      run?.reject(new EngineRunError(`the inference worker stopped unexpectedly (exit code ${code})`));
      if (this.#closing) {
        // No restart while closing; batches no worker is left to run must not hold close() up.
        if (!this.#slots.some((s) => s.state === 'ready')) this.#failPending();
        else this.#pump();
        this.#settleIfQuiet();
        return;
      }
      this.#restart(slot, 0);
    });
  }

  #restart(slot: Slot, attempt: number): void {
    const worker = spawn(this.#opts, [this.provider]);
    slot.worker = worker;
    slot.state = 'starting';
    void waitReady(worker).then((ready) => {
      if (slot.worker !== worker) return;
      if (ready.type === 'ready') {
        slot.state = 'ready';
        this.#listen(slot);
        this.#pump();
        return;
      }
      slot.state = 'stopped';
      this.#opts.logger?.error(
        { worker: slot.index, reason: describeFailures(ready) },
        'inference worker could not restart; retrying',
      );
      // With no worker left alive, queued batches would wait indefinitely: fail them now.
      if (!this.#slots.some((s) => s.state === 'ready')) this.#failPending();
      if (this.#closing) return;
      const delay = RESTART_BACKOFF_MS[Math.min(attempt, RESTART_BACKOFF_MS.length - 1)] as number;
      setTimeout(() => {
        if (!this.#closing) this.#restart(slot, attempt + 1);
      }, delay).unref();
    });
  }

  #failPending(): void {
    for (const run of this.#pending.splice(0)) {
      run.reject(new EngineRunError('no inference worker is available'));
    }
    this.#settleIfQuiet();
  }

  #pump(): void {
    // Breadth first: every ready worker gets a run before any gets a second.
    for (let depth = 1; depth <= RUNS_PER_WORKER; depth++) {
      for (const slot of this.#slots) {
        if (this.#pending.length === 0) break;
        if (slot === undefined || slot.state !== 'ready' || slot.runs.length >= depth) continue;
        const run = this.#pending.shift() as PendingRun;
        const { batch } = run;
        // A run queued behind another gets a copy, so that if the worker dies first the
        // original can go to the next worker ("fails only the batch it was running").
        run.copied = slot.runs.length > 0;
        slot.runs.push(run);
        const values = run.copied
          ? copyOf(batch.values, this.#buffers)
          : transferable(batch.values, (v) => new Float64Array(v));
        const lengths = run.copied ? copyOf(batch.lengths) : transferable(batch.lengths, (v) => new Int32Array(v));
        // Statics and note embeddings are small beside the values: always copies, so a retry still has the originals.
        const statics = batch.statics.slice();
        const note = batch.note === undefined ? undefined : batch.note.slice();
        const message: RunRequest = {
          type: 'run',
          id: run.id,
          values: values.view,
          statics,
          lengths: lengths.view,
          batch: batch.batch,
          time: batch.time,
          nVariables: batch.nVariables,
          nStatics: batch.nStatics,
          ...(note === undefined ? {} : { note, noteDim: batch.noteDim }),
          ...(batch.perHour === true ? { perHour: true } : {}),
        };
        const transfer = [values.buffer, lengths.buffer, statics.buffer];
        slot.worker.postMessage(message, note === undefined ? transfer : [...transfer, note.buffer]);
      }
    }
    this.#settleIfQuiet();
  }

  #settleIfQuiet(): void {
    if (this.#idleWaiters.length > 0 && this.#isQuiet()) {
      for (const resolve of this.#idleWaiters.splice(0)) resolve();
    }
  }
}

function spawn(opts: EngineOptions, providers: ProviderName[]): Worker {
  const url = opts.workerUrl ?? siblingModule(import.meta.url, 'worker');
  const init: WorkerInit = {
    modelPath: opts.modelPath,
    inputNames: opts.inputNames,
    outputName: opts.outputName,
    ...(opts.perHourOutputName === undefined ? {} : { perHourOutputName: opts.perHourOutputName }),
    providers,
    intraOpThreads: opts.intraOpThreads,
    allowSpinning: opts.allowSpinning ?? false,
  };
  return newWorker(url, init);
}

/** Resolves with the worker's first message (ready or start-failed), or a start failure if it exits first. */
function waitReady(worker: Worker): Promise<ReadyMessage | StartFailedMessage> {
  return new Promise((resolve) => {
    let lastError = '';
    const onMessage = (message: FromWorker): void => {
      if (message.type !== 'ready' && message.type !== 'start-failed') return;
      cleanup();
      resolve(message);
    };
    const onError = (error: Error): void => {
      lastError = error.message;
    };
    const onExit = (code: number): void => {
      cleanup();
      resolve({
        type: 'start-failed',
        failures: [
          {
            provider: 'cpu',
            reason: `worker exited with code ${code} while starting${lastError ? `: ${lastError}` : ''}`,
          },
        ],
      });
    };
    const cleanup = (): void => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
}

function describeFailures(message: StartFailedMessage): string {
  return message.failures.map((f) => `${f.provider}: ${f.reason}`).join('; ');
}

/** Asks the worker to release its session and exit; terminates it if it does not within the grace period. */
async function stopWorker(slot: Slot): Promise<void> {
  if (slot.state === 'stopped') return;
  const { worker } = slot;
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  slot.state = 'stopped';
  worker.postMessage({ type: 'close' });
  const timer = setTimeout(() => void worker.terminate(), CLOSE_GRACE_MS);
  timer.unref();
  await exited;
  clearTimeout(timer);
}
