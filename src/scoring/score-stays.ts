import type { ValidPatient } from '../clinical/types.js';
import { explainPlan, explanationOf, rowCost, type ExplainPlan, type Explanation } from '../clinical/explain.js';
import type { Manifest } from '../model/manifest.js';

/** Where scoreStays sends its rows (e.g. a batcher, with the caller whose share they use). */
export interface RowSink {
  submit(rows: ValidPatient[]): Promise<ArrayLike<number>>;
  /** Throws to refuse this many rows before they are built (e.g. Batcher.admit). */
  admit?(rows: number): void;
}

/**
 * Scores stays through `sink` in one call: with `explain`, each stay followed by its plan's
 * rows, read back into each stay's probability and explanation. The rows' cost is put to
 * sink.admit first, so refused work is never expanded.
 */
export async function scoreStays(
  manifest: Manifest,
  patients: ValidPatient[],
  sink: RowSink,
  explain: boolean,
): Promise<{ probabilities: ArrayLike<number>; explanations?: Explanation[] }> {
  if (!explain) return { probabilities: await sink.submit(patients) };
  sink.admit?.(patients.reduce((sum, p) => sum + rowCost(manifest, p, true), 0));
  const batch = explainBatch(manifest, patients);
  const scored = batch.read(await sink.submit(batch.rows));
  return { probabilities: scored.map((s) => s.probability), explanations: scored.map((s) => s.explanation) };
}

function explainBatch(
  manifest: Manifest,
  patients: readonly ValidPatient[],
): {
  rows: ValidPatient[];
  read(probabilities: ArrayLike<number>): Array<{ probability: number; explanation: Explanation }>;
} {
  const plans = patients.map((p) => explainPlan(manifest, p));
  const rows: ValidPatient[] = [];
  patients.forEach((p, i) => rows.push(p, ...(plans[i] as ExplainPlan).rows));
  return {
    rows,
    read(probabilities) {
      let at = 0;
      return plans.map((plan) => {
        const probability = probabilities[at] as number;
        const own = Array.prototype.slice.call(probabilities, at + 1, at + 1 + plan.rows.length) as number[];
        at += 1 + plan.rows.length;
        return { probability, explanation: explanationOf(plan, own, probability) };
      });
    },
  };
}
