import { DESCRIPTOR_FIELDS, DESCRIPTORS, type DescriptorField, type Manifest } from '../model/manifest.js';
import type { Contribution, TrajectoryPoint, ValidPatient } from './types.js';
import { observedColumns, validPatient, type PatientHeader } from './validate.js';

/**
 * Exact explanations by rescoring: the trajectory is each prefix's probability, a contribution
 * the probability minus that of the stay without the variable. The network is causal and
 * batch-invariant, so each row scored in the stay's batch equals that row scored alone. With the
 * model's per-hour output (`perHour`), the trajectory is read from the stay's own row, one pass
 * (models/README.md: equal to each prefix scored alone); else one prefix row per hour.
 */

export interface Explanation {
  trajectory: TrajectoryPoint[];
  contributions: Contribution[];
}

/** The descriptors of the stay that the manifest encodes: each is a contributor with a row of its own. */
function presentDescriptors(manifest: Manifest, patient: ValidPatient): DescriptorField[] {
  const statics = new Set(manifest.statics.map((s) => s.name));
  return DESCRIPTOR_FIELDS.filter((field) => statics.has(DESCRIPTORS[field]) && patient[field] !== null);
}

/**
 * Engine rows that scoring the stay costs, without building them: the stay itself and, explained,
 * one prefix per hour before the last (none with `perHour`) and one removal per present variable and descriptor.
 */
export function rowCost(manifest: Manifest, patient: ValidPatient, explain: boolean, perHour = false): number {
  if (!explain) return 1;
  let present = 0;
  for (let j = 0; j < manifest.variables.length; j++) if (patient.observed[j] !== 0) present++;
  return (perHour ? 1 : patient.hoursUsed) + present + presentDescriptors(manifest, patient).length;
}

/** The rows to score for one stay's explanation, and how to read their probabilities back. */
export interface ExplainPlan {
  /** Prefixes of 1..hoursUsed-1 hours (none with perHour), then the stay without each contributor. */
  rows: ValidPatient[];
  hoursUsed: number;
  /** How many of `rows` are prefixes: 0 when the trajectory comes from the stay's per-hour output. */
  prefixes: number;
  contributors: string[];
}

/** `perHour`: the trajectory will come from the stay's own per-hour output, so no prefix rows. */
export function explainPlan(manifest: Manifest, patient: ValidPatient, perHour = false): ExplainPlan {
  const { values, hoursUsed: hours, observed } = patient;
  const V = manifest.variables.length;
  // A hybrid model's note embedding goes with every row: it is context, not a contributor.
  const header: PatientHeader = {
    id: undefined,
    age: patient.age,
    sex: patient.sex,
    icuType: patient.icuType,
    height: patient.height,
    noteEmbedding: patient.noteEmbedding,
  };
  const rows: ValidPatient[] = [];
  for (let h = 1; h < (perHour ? 1 : hours); h++) {
    const prefix = values.subarray(0, h * V);
    rows.push(denseRow(header, prefix, h, observedColumns(prefix, h, V)));
  }
  const prefixes = rows.length;
  const contributors: string[] = [];
  manifest.variables.forEach((variable, j) => {
    if (observed[j] === 0) return;
    const without = values.slice(0, hours * V);
    for (let t = 0; t < hours; t++) without[t * V + j] = Number.NaN;
    const seen = observed.slice();
    seen[j] = 0;
    rows.push(denseRow(header, without, hours, seen));
    contributors.push(variable.name);
  });
  for (const field of presentDescriptors(manifest, patient)) {
    rows.push(denseRow({ ...header, [field]: null }, values, hours, observed));
    contributors.push(field);
  }
  return { rows, hoursUsed: hours, prefixes, contributors };
}

/**
 * The explanation from the plan's probabilities (in `rows` order) and the stay's own; `perHour`,
 * the stay's probability after each hour, for a plan without prefix rows.
 */
export function explanationOf(
  plan: ExplainPlan,
  probabilities: ArrayLike<number>,
  probability: number,
  perHour?: ArrayLike<number>,
): Explanation {
  const hourly = plan.prefixes > 0 ? probabilities : perHour;
  if (hourly === undefined && plan.hoursUsed > 1)
    throw new Error('a plan without prefix rows needs the per-hour output');
  const trajectory: TrajectoryPoint[] = [];
  for (let h = 1; h < plan.hoursUsed; h++) trajectory.push({ hour: h, probability: hourly?.[h - 1] as number });
  trajectory.push({ hour: plan.hoursUsed, probability });
  const offset = plan.prefixes;
  const contributions = plan.contributors.map((variable, k) => ({
    variable,
    effect: probability - (probabilities[offset + k] as number),
  }));
  contributions.sort((a, b) => Math.abs(b.effect) - Math.abs(a.effect) || (a.variable < b.variable ? -1 : 1));
  return { trajectory, contributions };
}

function denseRow(header: PatientHeader, values: Float64Array, hours: number, observed: Uint8Array): ValidPatient {
  return validPatient(header, hours, hours, values, observed);
}
