import type { Explanation } from '../clinical/explain.js';

/**
 * A model output that is not a probability (NaN or infinite after an overflow inside the graph,
 * whatever the input) fails its own patient only: the callers report it, they never serve it.
 */

export const OUTPUT_NOT_A_PROBABILITY = {
  error: 'inference_failed',
  message: 'the model gave no usable probability for this patient (its output was not a finite number from 0 to 1)',
} as const;

/** The probability and, when explained, every trajectory point and effect are finite; the probability in [0, 1]. */
export function isUsableOutput(probability: number | undefined, explanation?: Explanation): boolean {
  if (probability === undefined || !(probability >= 0 && probability <= 1)) return false;
  if (explanation === undefined) return true;
  return (
    explanation.trajectory.every((point) => point.probability >= 0 && point.probability <= 1) &&
    explanation.contributions.every((c) => Number.isFinite(c.effect))
  );
}
