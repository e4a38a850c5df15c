/**
 * Messages between the engine (main thread) and its inference workers. Typed arrays travel
 * in the transfer list, so a batch's tensor is moved, never copied.
 */
import type { ProviderAttemptFailure, ProviderName } from './providers.js';

/** The graph's input names (manifest onnx.inputs); `note` for a hybrid model. */
export interface InputNames {
  values: string;
  statics: string;
  lengths: string;
  note?: string;
}

/** True when the view spans its whole (non-shared) buffer: only then can the buffer be transferred as the view. */
export function isWhole<T extends Float64Array | Int32Array>(view: T): view is T & { buffer: ArrayBuffer } {
  return view.buffer instanceof ArrayBuffer && view.byteOffset === 0 && view.byteLength === view.buffer.byteLength;
}

/** What a worker is started with (its workerData). */
export interface WorkerInit {
  modelPath: string;
  inputNames: InputNames;
  outputName: string;
  /** The per-hour output (manifest onnx.outputs.perHour), fetched only for batches that ask for it. */
  perHourOutputName?: string;
  /** Preference order; the worker tries each and ends on `cpu`. */
  providers: ProviderName[];
  intraOpThreads: number;
  allowSpinning: boolean;
}

/** One batch in the graph's input layout (models/README.md, "ONNX graph interface"), batch-major. */
export interface BatchInputs {
  /** Hourly values [batch, time, nVariables]; NaN where not measured and after a stay's last hour. */
  values: Float64Array;
  /** Statics [batch, nStatics]: a value or category code, NaN if missing. */
  statics: Float64Array;
  /** Real hours of each stay, 1..time. */
  lengths: Int32Array;
  batch: number;
  /** Padded length of this batch: the longest stay in it, not necessarily the model's maxHours. */
  time: number;
  nVariables: number;
  nStatics: number;
  /** A hybrid model's note embeddings [batch x noteDim], batch-major. */
  note?: Float32Array;
  noteDim?: number;
  /** Also fetch the per-hour output [batch, time] (explanations' trajectories). */
  perHour?: boolean;
}

export interface RunRequest extends BatchInputs {
  type: 'run';
  id: number;
}

export interface CloseRequest {
  type: 'close';
}

export type ToWorker = RunRequest | CloseRequest;

export interface ReadyMessage {
  type: 'ready';
  provider: ProviderName;
  failures: ProviderAttemptFailure[];
}

export interface StartFailedMessage {
  type: 'start-failed';
  failures: ProviderAttemptFailure[];
}

export interface RunResult {
  type: 'result';
  id: number;
  probabilities: Float32Array;
  /** With a request's `perHour`: the probability after each hour [batch x time], NaN past each length. */
  perHour?: Float32Array;
  /** The run's values tensor, handed back (by transfer) for the engine to reuse. */
  values?: Float64Array;
}

export interface RunFailed {
  type: 'run-failed';
  id: number;
  message: string;
}

export type FromWorker = ReadyMessage | StartFailedMessage | RunResult | RunFailed;
