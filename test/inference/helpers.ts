/**
 * Shared pieces of the inference tests: the tiny model fixture (made by
 * training/make_fixtures.py), its PyTorch reference outputs, batches built directly from
 * the reference stays, and engine wrappers that let a test hold or fail a batch on cue.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  type Engine,
  type EngineBatch,
  type EngineOptions,
  type ProviderName,
  createEngine,
} from '../../src/inference/engine.js';

export const TINY_MODEL_DIR = fileURLToPath(new URL('../fixtures/tiny-model/', import.meta.url));
export const TINY_MODEL = `${TINY_MODEL_DIR}model.onnx`;
/** The same fixture with GRU layers (training/make_fixtures.py). */
export const TINY_GRU_MODEL_DIR = fileURLToPath(new URL('../fixtures/tiny-gru-model/', import.meta.url));

interface Reference {
  lengths: number[];
  /** [stay][hour][variable], null = not measured, padded with null to 48 hours. */
  values: Array<Array<Array<number | null>>>;
  /** [stay][static]: a value or category code, null = missing. */
  statics: Array<Array<number | null>>;
  /** A hybrid fixture's note embeddings, [stay][dimension]. */
  note?: number[][];
  probability: number[];
}

/** A stay as these tests queue it: its own rows, unpadded. */
export interface Stay {
  /** length x nVariables values, hour-major, NaN = not measured. */
  rows: Float64Array;
  statics: Float64Array;
  note?: Float32Array;
  length: number;
  /** Index in the PyTorch reference. */
  ref: number;
}

type ReferenceSet = { stays: Stay[]; probability: number[]; maxHours: number };
const cached = new Map<string, ReferenceSet>();
const orNaN = (v: number | null | undefined): number => v ?? NaN;

/** The PyTorch reference inputs and outputs of a fixture folder (default: the tiny LSTM). */
export function reference(dir: string = TINY_MODEL_DIR): ReferenceSet {
  const known = cached.get(dir);
  if (known !== undefined) return known;
  const ref = JSON.parse(readFileSync(`${dir}pytorch-reference.json`, 'utf8')) as Reference;
  const maxHours = ref.values[0]?.length ?? 0;
  const stays = ref.lengths.map((length, i) => {
    const hours = (ref.values[i] ?? []).slice(0, length);
    const note = ref.note?.[i];
    return {
      rows: Float64Array.from(hours.flat(), orNaN),
      statics: Float64Array.from(ref.statics[i] ?? [], orNaN),
      ...(note === undefined ? {} : { note: Float32Array.from(note) }),
      length,
      ref: i,
    };
  });
  const set = { stays, probability: ref.probability, maxHours };
  cached.set(dir, set);
  return set;
}

/** The graph's inputs for these stays, padded with NaN (not measured) to `time` (default: the longest stay). */
export function buildBatch(stays: Stay[], time: number = Math.max(...stays.map((s) => s.length))): EngineBatch {
  const first = stays[0] as Stay;
  const nVariables = first.rows.length / first.length;
  const nStatics = first.statics.length;
  const values = new Float64Array(stays.length * time * nVariables).fill(NaN);
  const statics = new Float64Array(stays.length * nStatics);
  stays.forEach((stay, b) => {
    values.set(stay.rows, b * time * nVariables);
    statics.set(stay.statics, b * nStatics);
  });
  const lengths = Int32Array.from(stays.map((s) => s.length));
  const batch = { values, statics, lengths, batch: stays.length, time, nVariables, nStatics };
  if (first.note === undefined) return batch;
  const noteDim = first.note.length;
  const note = new Float32Array(stays.length * noteDim);
  stays.forEach((stay, b) => note.set(stay.note ?? [], b * noteDim));
  return { ...batch, note, noteDim };
}

/** The graph input names every fixture's manifest declares. */
export const INPUT_NAMES = { values: 'values', statics: 'statics', lengths: 'lengths' };

/**
 * Providers for the parity tests: `cpu` here; on a GPU host set
 * INFERENCE_TEST_PROVIDERS=webgpu (or cuda) to check the same outputs on the GPU.
 */
export const TEST_PROVIDERS = (process.env.INFERENCE_TEST_PROVIDERS ?? 'cpu').split(',') as ProviderName[];

/** PyTorch parity bound: 1e-6 on the CPU; GPU kernels may order sums differently. */
export const PARITY_TOLERANCE = TEST_PROVIDERS[0] === 'cpu' ? 1e-6 : 1e-5;

export function tinyEngine(overrides: Partial<EngineOptions> = {}): Promise<Engine> {
  return createEngine({
    modelPath: TINY_MODEL,
    inputNames: INPUT_NAMES,
    outputName: 'probability',
    providers: TEST_PROVIDERS,
    intraOpThreads: 1,
    workers: 1,
    ...overrides,
  });
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs((a[i] as number) - (b[i] as number)));
  return worst;
}

/** A promise with its resolver, for holding a batch until the test lets it go. */
export function deferred<T>(): { promise: Promise<T>; resolve(value: T): void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/**
 * Wraps a real engine, recording every batch it is given. `hold(n)` makes the n-th run
 * (1-based) wait until released; `failOnce(n)` makes the n-th run reject instead of
 * running. `started(n)` resolves when the n-th run has been handed to the engine.
 */
export class ScriptedEngine implements Engine {
  readonly batches: Array<{ lengths: number[]; time: number }> = [];
  readonly #inner: Engine;
  readonly #holds = new Map<number, Promise<void>>();
  readonly #failures = new Set<number>();
  readonly #started = new Map<number, ReturnType<typeof deferred<void>>>();

  constructor(inner: Engine) {
    this.#inner = inner;
  }

  get provider(): string {
    return this.#inner.provider;
  }

  get runs(): number {
    return this.batches.length;
  }

  hold(n: number): () => void {
    const gate = deferred<void>();
    this.#holds.set(n, gate.promise);
    return () => gate.resolve();
  }

  failOnce(n: number): void {
    this.#failures.add(n);
  }

  started(n: number): Promise<void> {
    return this.#startedGate(n).promise;
  }

  #startedGate(n: number): ReturnType<typeof deferred<void>> {
    let gate = this.#started.get(n);
    if (gate === undefined) {
      gate = deferred<void>();
      this.#started.set(n, gate);
    }
    return gate;
  }

  async run(batch: EngineBatch): Promise<Float32Array> {
    this.batches.push({ lengths: [...batch.lengths], time: batch.time });
    const n = this.batches.length;
    this.#startedGate(n).resolve();
    await this.#holds.get(n);
    if (this.#failures.has(n)) throw new Error(`scripted failure of run ${n}`);
    return this.#inner.run(batch);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}
