import { inputWidth, type Manifest, type StaticSpec } from '../model/manifest.js';
import type { EngineBatch } from '../inference/engine.js';
import type { ValidPatient } from './types.js';

export type { EngineBatch } from '../inference/engine.js';

/**
 * The model's input tensor from validated patients, exactly as models/README.md ("Input
 * tensor, hour by hour") defines it and training/ implements it: per hour, V normalised
 * forward-filled values (training mean = 0 before the first observation), V masks, V capped
 * deltas, then the statics. Batch-major [batch, time, nInputs], time = the batch's longest
 * stay, zeros past each stay's length (the graph's sequence_lens keeps padding out of the
 * result). Pure function.
 */

export function buildBatch(manifest: Manifest, patients: readonly ValidPatient[]): EngineBatch {
  const nInputs = inputWidth(manifest);
  const batch = patients.length;
  let time = 0;
  for (const p of patients) time = Math.max(time, Math.min(p.dense ? p.dense.hours : p.hours.length, manifest.maxHours));
  const x = new Float32Array(batch * time * nInputs);
  const lengths = new Int32Array(batch);
  const statics = new Float32Array(nInputs - 3 * manifest.variables.length);
  const norm = normalisation(manifest);
  patients.forEach((patient, b) => {
    lengths[b] = writeStay(manifest, norm, patient, x, b * time * nInputs, nInputs, statics);
  });
  return { x, lengths, batch, time, nInputs };
}

interface Normalisation {
  mean: Float64Array;
  std: Float64Array;
}

function normalisation(manifest: Manifest): Normalisation {
  return {
    mean: Float64Array.from(manifest.variables, (v) => v.mean),
    std: Float64Array.from(manifest.variables, (v) => v.std),
  };
}

function writeStay(manifest: Manifest, norm: Normalisation, patient: ValidPatient, x: Float32Array, offset: number, nInputs: number, statics: Float32Array): number {
  const V = manifest.variables.length;
  const { values, hours } = denseOf(manifest, patient);
  // Defensive: validation already cuts, but the tensor must never exceed maxHours.
  const T = Math.min(hours, manifest.maxHours);
  const first = hours - T;
  const cap = manifest.deltaCap;
  const { mean, std } = norm;
  const last = new Float64Array(V);
  const seen = new Uint8Array(V);
  const delta = new Float64Array(V);
  fillStatics(manifest.statics, patient, statics);
  for (let t = 0; t < T; t++) {
    const base = offset + t * nInputs;
    const row = (first + t) * V;
    for (let v = 0; v < V; v++) {
      const value = values[row + v] as number;
      const observed = !Number.isNaN(value);
      if (observed) {
        last[v] = value;
        seen[v] = 1;
        delta[v] = 0;
      } else {
        delta[v] = (delta[v] as number) + 1;
      }
      x[base + v] = seen[v] ? ((last[v] as number) - (mean[v] as number)) / (std[v] as number) : 0;
      x[base + V + v] = observed ? 1 : 0;
      x[base + 2 * V + v] = Math.min(delta[v] as number, cap) / cap;
    }
    x.set(statics, base + 3 * V);
  }
  return T;
}

/** The stay as a dense [hours x V] matrix, NaN = missing: validation's copy, or built from the rows. */
function denseOf(manifest: Manifest, patient: ValidPatient): { values: Float64Array; hours: number } {
  if (patient.dense) return patient.dense;
  const V = manifest.variables.length;
  const rows = patient.hours;
  const values = new Float64Array(rows.length * V);
  for (let t = 0; t < rows.length; t++) {
    const row = rows[t] ?? {};
    for (let v = 0; v < V; v++) {
      const value = row[(manifest.variables[v] as { name: string }).name];
      values[t * V + v] = typeof value === 'number' ? value : Number.NaN;
    }
  }
  return { values, hours: rows.length };
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
function categoricalStaticValue(spec: Extract<StaticSpec, { kind: 'categorical' }>, patient: ValidPatient): number | null {
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
