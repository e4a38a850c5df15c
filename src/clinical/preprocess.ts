import { inputWidth, type Manifest, type StaticSpec } from '../model/manifest.js';
import type { EngineBatch } from '../inference/engine.js';
import type { ValidPatient } from './types.js';

export type { EngineBatch } from '../inference/engine.js';

/**
 * The input tensor of models/README.md ("Input tensor, hour by hour"), batch-major [batch, time,
 * nInputs] with time = the longest stay; padding stays zero (the graph's sequence_lens skips it).
 * test/fixtures/skew/ holds training/preprocess.py's tensors it is checked against.
 */

/** `allocate` gives the zero-filled x (the engine's reused buffers); by default a new array. */
export function buildBatch(
  manifest: Manifest,
  patients: readonly ValidPatient[],
  allocate: (length: number) => Float32Array = (n) => new Float32Array(n),
): EngineBatch {
  const plan = planOf(manifest);
  const { nInputs } = plan;
  const batch = patients.length;
  let time = 0;
  for (const p of patients) time = Math.max(time, Math.min(p.hoursUsed, manifest.maxHours));
  // Zero-filled: writeStay leaves the cells that stay zero (masks, deltas, statics) unwritten.
  const x = allocate(batch * time * nInputs);
  const lengths = new Int32Array(batch);
  for (let b = 0; b < batch; b++) {
    lengths[b] = writeStay(manifest, plan, patients[b] as ValidPatient, x, b * time * nInputs);
  }
  const noteDim = manifest.noteEmbedding?.dimension;
  if (noteDim === undefined) return { x, lengths, batch, time, nInputs };
  return { x, lengths, batch, time, nInputs, note: notesOf(patients, noteDim), noteDim };
}

/** A hybrid model's note embeddings, one row per stay; validation guarantees each has noteDim numbers. */
function notesOf(patients: readonly ValidPatient[], noteDim: number): Float32Array {
  const note = new Float32Array(patients.length * noteDim);
  patients.forEach((p, b) => {
    if (p.noteEmbedding?.length !== noteDim) throw new Error(`stay ${b} has no note embedding of ${noteDim} numbers`);
    note.set(p.noteEmbedding, b * noteDim);
  });
  return note;
}

/** What writeStay needs from the manifest, computed once per manifest rather than per batch or stay. */
interface Plan {
  V: number;
  nInputs: number;
  mean: Float64Array;
  std: Float64Array;
  /** min(d, deltaCap) / deltaCap for d = 0..maxHours, exactly as the formula gives it. */
  deltaValue: Float64Array;
  /**
   * Scratch (buildBatch is synchronous, so one set per manifest is safe): one stay's statics and the positions of their
   * non-zero cells.
   */
  statics: Float32Array;
  nonZero: Int32Array;
  /** Per-variable state while one stay is written: last normalised value (0 until observed), hours since observed. */
  last: Float64Array;
  delta: Int32Array;
}

const plans = new WeakMap<Manifest, Plan>();

function planOf(manifest: Manifest): Plan {
  let plan = plans.get(manifest);
  if (plan === undefined) {
    const V = manifest.variables.length;
    const nInputs = inputWidth(manifest);
    const cap = manifest.deltaCap;
    plan = {
      V,
      nInputs,
      mean: Float64Array.from(manifest.variables, (v) => v.mean),
      std: Float64Array.from(manifest.variables, (v) => v.std),
      deltaValue: Float64Array.from({ length: manifest.maxHours + 1 }, (_, d) => Math.min(d, cap) / cap),
      statics: new Float32Array(nInputs - 3 * V),
      nonZero: new Int32Array(nInputs - 3 * V),
      last: new Float64Array(V),
      delta: new Int32Array(V),
    };
    plans.set(manifest, plan);
  }
  return plan;
}

/**
 * One stay into x at `offset`, where x is zero: masks, deltas and statics that stay zero are not
 * written. Hour by hour, so that x is written in order; the arithmetic is the per-hour formula's
 * (float64, rounded to float32 on store).
 */
function writeStay(manifest: Manifest, plan: Plan, patient: ValidPatient, x: Float32Array, offset: number): number {
  const { V, nInputs, mean, std, deltaValue, statics, nonZero, last, delta } = plan;
  const { values, hoursUsed: hours } = patient;
  // Defensive: validation already cuts, but the tensor must never exceed maxHours.
  const T = Math.min(hours, manifest.maxHours);
  delta.fill(0);
  // Before the first observation the forward-filled value is the training mean, 0 normalised.
  last.fill(0);
  let src = (hours - T) * V;
  for (let t = 0; t < T; t++) {
    const base = offset + t * nInputs;
    const maskAt = base + V;
    const deltaAt = base + 2 * V;
    for (let v = 0; v < V; v++, src++) {
      const value = values[src] as number;
      if (value === value) {
        // Observed (not NaN): value, mask 1, delta 0.
        const normalised = (value - (mean[v] as number)) / (std[v] as number);
        last[v] = normalised;
        delta[v] = 0;
        x[base + v] = normalised;
        x[maskAt + v] = 1;
      } else {
        const d = (delta[v] as number) + 1;
        delta[v] = d;
        x[base + v] = last[v] as number;
        x[deltaAt + v] = deltaValue[d] as number;
      }
    }
  }
  fillStatics(manifest.statics, patient, statics);
  let k = 0;
  for (let i = 0; i < statics.length; i++) if (statics[i] !== 0) nonZero[k++] = i;
  const staticsAt = offset + 3 * V;
  for (let t = 0; t < T; t++) {
    const base = staticsAt + t * nInputs;
    for (let i = 0; i < k; i++) {
      const at = nonZero[i] as number;
      x[base + at] = statics[at] as number;
    }
  }
  return T;
}

/** Numeric: (x - mean)/std and a missing flag; categorical: one-hot (all zeros if missing or unknown). */
function fillStatics(specs: readonly StaticSpec[], patient: ValidPatient, out: Float32Array): void {
  out.fill(0);
  let i = 0;
  for (const spec of specs) {
    if (spec.kind === 'numeric') {
      const value = numericStaticValue(spec.name, patient);
      if (value === null) {
        out[i + 1] = 1;
      } else {
        out[i] = (value - spec.mean) / spec.std;
      }
      i += 2;
    } else {
      const code = categoricalStaticValue(spec, patient);
      const at = code === null ? -1 : spec.categories.indexOf(code);
      if (at >= 0) out[i + at] = 1;
      i += spec.categories.length;
    }
  }
}

function numericStaticValue(name: string, patient: ValidPatient): number | null {
  switch (name) {
    case 'Age':
      return patient.age;
    case 'Height':
      return patient.height;
    default:
      return null;
  }
}

/** The category code of a categorical static; Gender is coded by the position of the label ("female"/"male"). */
function categoricalStaticValue(
  spec: Extract<StaticSpec, { kind: 'categorical' }>,
  patient: ValidPatient,
): number | null {
  switch (spec.name) {
    case 'Gender': {
      if (patient.sex === null) return null;
      const at = spec.labels.indexOf(patient.sex);
      return at >= 0 ? (spec.categories[at] ?? null) : null;
    }
    case 'ICUType':
      return patient.icuType;
    default:
      return null;
  }
}
