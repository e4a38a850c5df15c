import { descriptorField, type CategoricalStaticSpec, type Manifest, type StaticSpec } from '../model/manifest.js';
import type { EngineBatch } from '../inference/engine.js';
import type { ValidPatient } from './types.js';

export type { EngineBatch } from '../inference/engine.js';

/**
 * A batch as the graph takes it (models/README.md, "ONNX graph interface"): each stay's last hours as
 * they were binned, and its raw statics. Normalisation, forward filling, masks and hours since
 * the last value are computed inside the graph, by training/preprocess.py's InputTensor.
 * test/fixtures/skew/ holds that module's tensors, read back from the graph, for comparison.
 */

/** `allocate` gives the values buffer, contents stale (the engine's reused buffers); by default a new array. */
export function buildBatch(
  manifest: Manifest,
  patients: readonly ValidPatient[],
  allocate: (length: number) => Float64Array = (n) => new Float64Array(n),
): EngineBatch {
  const nVariables = manifest.variables.length;
  const nStatics = manifest.statics.length;
  const batch = patients.length;
  let time = 0;
  for (const p of patients) time = Math.max(time, Math.min(p.hoursUsed, manifest.maxHours));
  const values = allocate(batch * time * nVariables);
  const statics = new Float64Array(batch * nStatics);
  const lengths = new Int32Array(batch);
  for (let b = 0; b < batch; b++) {
    const patient = patients[b] as ValidPatient;
    // Defensive: validation already cuts, but the graph must never see more than maxHours.
    const hours = Math.min(patient.hoursUsed, manifest.maxHours);
    const from = (patient.hoursUsed - hours) * nVariables;
    const at = b * time * nVariables;
    values.set(patient.values.subarray(from, from + hours * nVariables), at);
    values.fill(NaN, at + hours * nVariables, at + time * nVariables);
    lengths[b] = hours;
    writeStatics(manifest.statics, patient, statics, b * nStatics);
  }
  const noteDim = manifest.noteEmbedding?.dimension;
  const out = { values, statics, lengths, batch, time, nVariables, nStatics };
  return noteDim === undefined ? out : { ...out, note: notesOf(patients, noteDim), noteDim };
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

/** Each static in the manifest's order: a numeric one's value, a categorical one's code; NaN if missing. */
function writeStatics(specs: readonly StaticSpec[], patient: ValidPatient, out: Float64Array, offset: number): void {
  specs.forEach((spec, i) => {
    const value =
      spec.kind === 'numeric' ? numericStaticValue(spec.name, patient) : categoricalStaticValue(spec, patient);
    out[offset + i] = value ?? NaN;
  });
}

function numericStaticValue(name: string, patient: ValidPatient): number | null {
  const field = descriptorField(name);
  return field === 'age' || field === 'height' ? patient[field] : null;
}

/** The category code of a categorical static; sex is coded by the position of the label ("female"/"male"). */
function categoricalStaticValue(spec: CategoricalStaticSpec, patient: ValidPatient): number | null {
  switch (descriptorField(spec.name)) {
    case 'sex': {
      if (patient.sex === null) return null;
      const at = spec.labels.indexOf(patient.sex);
      return at >= 0 ? (spec.categories[at] ?? null) : null;
    }
    case 'icuType':
      return patient.icuType;
    default:
      return null;
  }
}
