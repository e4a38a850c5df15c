import type { ValidPatient } from '../clinical/types.js';
import { explainPlan, explanationOf, rowCost, type ExplainPlan, type Explanation } from '../clinical/explain.js';
import type { Manifest } from '../model/manifest.js';

/** Where scoreStays sends its rows (e.g. a batcher, with the caller whose share they use). */
export interface RowSink {
  submit(rows: ValidPatient[]): Promise<ArrayLike<number>>;
  /**
   * As submit, with each row's probability after each of its hours (e.g. Batcher.submitPerHour);
   * present when the model has the per-hour output. Explanations then take their trajectory
   * from it instead of one prefix row per hour.
   */
  submitPerHour?(rows: ValidPatient[]): Promise<{ probabilities: ArrayLike<number>; perHour: ArrayLike<number>[] }>;
  /** Throws to refuse this many rows before they are built (e.g. Batcher.admit). */
  admit?(rows: number): void;
}

/** What batcherSink needs of a batcher (src/inference/batcher.ts; test doubles may lack the per-hour path). */
export interface SinkBatcher {
  submit(rows: ValidPatient[], signal?: AbortSignal, caller?: string): Promise<ArrayLike<number>>;
  admit(rows: number, caller?: string): void;
  readonly perHour?: boolean;
  submitPerHour?(
    rows: ValidPatient[],
    signal?: AbortSignal,
    caller?: string,
  ): Promise<{ probabilities: ArrayLike<number>; perHour: ArrayLike<number>[] }>;
}

/** A batcher as one caller's sink: its per-hour path when its engine has the model's per-hour output. */
export function batcherSink(batcher: SinkBatcher, signal?: AbortSignal, caller?: string): RowSink {
  const sink: RowSink = {
    submit: (rows) => batcher.submit(rows, signal, caller),
    admit: (rows) => batcher.admit(rows, caller),
  };
  const submitPerHour = batcher.perHour === true ? batcher.submitPerHour?.bind(batcher) : undefined;
  if (submitPerHour !== undefined) sink.submitPerHour = (rows) => submitPerHour(rows, signal, caller);
  return sink;
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
  const perHour = sink.submitPerHour !== undefined;
  sink.admit?.(patients.reduce((sum, p) => sum + rowCost(manifest, p, true, perHour), 0));
  const batch = explainBatch(manifest, patients, perHour);
  const scored =
    sink.submitPerHour === undefined
      ? batch.read(await sink.submit(batch.rows))
      : await sink.submitPerHour(batch.rows).then((out) => batch.read(out.probabilities, out.perHour));
  return { probabilities: scored.map((s) => s.probability), explanations: scored.map((s) => s.explanation) };
}

function explainBatch(
  manifest: Manifest,
  patients: readonly ValidPatient[],
  perHour: boolean,
): {
  rows: ValidPatient[];
  read(
    probabilities: ArrayLike<number>,
    perHour?: ArrayLike<number>[],
  ): Array<{ probability: number; explanation: Explanation }>;
} {
  const plans = patients.map((p) => explainPlan(manifest, p, perHour));
  const rows: ValidPatient[] = [];
  patients.forEach((p, i) => rows.push(p, ...(plans[i] as ExplainPlan).rows));
  return {
    rows,
    read(probabilities, hourly) {
      let at = 0;
      return plans.map((plan) => {
        const probability = probabilities[at] as number;
        const own = Array.prototype.slice.call(probabilities, at + 1, at + 1 + plan.rows.length) as number[];
        const trajectory = hourly?.[at];
        at += 1 + plan.rows.length;
        return { probability, explanation: explanationOf(plan, own, probability, trajectory) };
      });
    },
  };
}
