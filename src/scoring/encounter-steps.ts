import { join } from 'node:path';
import { buildBatch } from '../clinical/preprocess.js';
import type { ValidPatient } from '../clinical/types.js';
import { createStepEngine, type StepEngine } from '../inference/step-engine.js';
import type { LoadedModel, ModelRepository } from '../model/repository.js';

/**
 * The step graphs of the served model versions (manifest onnx.step), opened at first use, one
 * worker each, closed when their version stops serving. A version without one, or whose graph
 * fails to open, has none: its encounters are rescored whole.
 */

/** The recurrent state and the input tensor's carry after an hour, as the store keeps them. */
export interface StepState {
  state: Float32Array;
  carry: Float32Array;
}

export function encodeState(s: StepState): string {
  const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
  return JSON.stringify({ state: bytes(s.state), carry: bytes(s.carry) });
}

export function decodeState(text: string): StepState {
  const parsed = JSON.parse(text) as { state: string; carry: string };
  const floats = (b64: string) => {
    const bytes = Buffer.from(b64, 'base64');
    // A copy: Buffer's pool may hand out an offset that is not 4-byte aligned.
    return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  };
  return { state: floats(parsed.state), carry: floats(parsed.carry) };
}

export class EncounterSteps {
  readonly #engines = new Map<string, Promise<StepEngine | undefined>>();
  readonly #onError: (reason: string) => void;

  constructor(models: ModelRepository, onError: (reason: string) => void) {
    this.#onError = onError;
    models.on('serving', (serving: LoadedModel) => {
      for (const version of [...this.#engines.keys()]) if (version !== serving.version) this.#drop(version);
    });
  }

  /** Whether `model` has a step graph (it may still fail to open). */
  has(model: LoadedModel): boolean {
    return model.manifest.onnx.step !== undefined;
  }

  /**
   * Steps `patient`'s hours from..hoursUsed-1 from `from === 0 ? zeros : start`; undefined when
   * the version has no usable step graph (the caller rescores instead).
   */
  async run(
    model: LoadedModel,
    patient: ValidPatient,
    from: number,
    start: StepState | undefined,
  ): Promise<{ probability: number; after: StepState } | undefined> {
    const step = model.manifest.onnx.step;
    const engine = await this.#engine(model);
    if (step === undefined || engine === undefined) return undefined;
    const batch = buildBatch(model.manifest, [patient]);
    const V = batch.nVariables;
    const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
    const hours = patient.hoursUsed - from;
    const out = await engine.run({
      values: batch.values.slice(from * V, patient.hoursUsed * V),
      hours,
      nVariables: V,
      statics: batch.statics,
      ...(batch.note ? { note: batch.note } : {}),
      state: start?.state ?? new Float32Array(size(step.stateShape)),
      carry: start?.carry ?? new Float32Array(size(step.carryShape)),
      stateShape: step.stateShape,
      carryShape: step.carryShape,
    });
    return { probability: out.probabilities[hours - 1] as number, after: { state: out.state, carry: out.carry } };
  }

  async close(): Promise<void> {
    await Promise.all([...this.#engines.keys()].map((version) => this.#drop(version)));
  }

  #engine(model: LoadedModel): Promise<StepEngine | undefined> {
    let engine = this.#engines.get(model.version);
    const step = model.manifest.onnx.step;
    if (engine === undefined && step !== undefined) {
      engine = createStepEngine({
        modelPath: join(model.files.dir, step.file),
        inputs: step.inputs,
        outputs: step.outputs,
        intraOpThreads: 1,
      }).catch((error: unknown) => {
        this.#onError(error instanceof Error ? error.message : String(error));
        return undefined;
      });
      this.#engines.set(model.version, engine);
    }
    return engine ?? Promise.resolve(undefined);
  }

  async #drop(version: string): Promise<void> {
    const engine = this.#engines.get(version);
    this.#engines.delete(version);
    await (await engine)?.close();
  }
}
