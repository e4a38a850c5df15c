/**
 * Messages between the step engine (main thread) and its worker: a model version's one-step
 * graph (models/README.md, "Step graph"), run for one encounter over one or more hours.
 */

/** The step graph's tensor names (manifest onnx.step). */
export interface StepGraphNames {
  inputs: { values: string; statics: string; state: string; carry: string; note?: string };
  outputs: { probability: string; state: string; carry: string };
}

export interface StepWorkerInit extends StepGraphNames {
  modelPath: string;
  intraOpThreads: number;
}

/** One encounter's hours to step, in order, from `state` and `carry`. */
export interface StepInputs {
  /** [hours x V] raw values as model.onnx reads them, NaN = not measured. */
  values: Float64Array;
  hours: number;
  nVariables: number;
  /** [S], as model.onnx's statics. */
  statics: Float64Array;
  /** A hybrid model's note embedding [noteDim]. */
  note?: Float32Array;
  /** Before the first of these hours: [K x hidden] and [2 x V], zeros before hour 0. */
  state: Float32Array;
  carry: Float32Array;
  stateShape: number[];
  carryShape: number[];
}

export interface StepOutputs {
  /** The probability after each hour stepped. */
  probabilities: Float32Array;
  /** After the last hour stepped. */
  state: Float32Array;
  carry: Float32Array;
}

export type ToStepWorker = ({ type: 'steps'; id: number } & StepInputs) | { type: 'close' };

export type FromStepWorker =
  | { type: 'ready' }
  | { type: 'start-failed'; reason: string }
  | ({ type: 'result'; id: number } & StepOutputs)
  | { type: 'run-failed'; id: number; message: string };
