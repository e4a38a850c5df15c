import { scoreStays } from './score-stays.js';
import { predictionResult } from '../clinical/result.js';
import type { FieldIssue, PredictionResult, ValidPatient } from '../clinical/types.js';
import { ScannedPatient } from '../clinical/validate.js';
import type { ModelRepository } from '../model/repository.js';
import { report, type Observe } from './observer.js';
import { isUsableOutput, OUTPUT_NOT_A_PROBABILITY } from './output-check.js';

/**
 * Validate-then-score for a list of patients: one outcome per input, in order, all scored by the
 * one model version it leases. Throws what the batcher throws (queue full, abort, engine error)
 * and ModelNotFoundError.
 */

export type ScoreOutcome =
  | { index: number; ok: true; result: PredictionResult }
  | { index: number; ok: false; id?: string; issues: FieldIssue[]; failure?: typeof OUTPUT_NOT_A_PROBABILITY };

export interface ScoreResponse {
  model: { name: string; version: string };
  outcomes: ScoreOutcome[];
  /** Patients that were valid and scored. */
  scored: number;
  /** Patients that were valid but got no usable probability from the model (`failure` set). */
  failed: number;
}

export interface ScoreOptions {
  model?: string;
  version?: string;
  signal?: AbortSignal;
  /** Where each patient's outcome is reported (metrics, the prediction store), under the caller's route. */
  observe?: Observe;
  /** Add each result's trajectory and contributions (src/clinical/explain.ts). */
  explain?: boolean;
  /** Whose share of the engine the rows use (the batcher's fair sharing); one shared share when absent. */
  caller?: string;
}

export async function scorePatients(
  models: ModelRepository,
  inputs: readonly unknown[],
  options: ScoreOptions = {},
): Promise<ScoreResponse> {
  const lease = models.acquire(options.model, options.version);
  try {
    const { model } = lease;
    const ref = { name: model.name, version: model.version };
    const outcomes: ScoreOutcome[] = new Array(inputs.length);
    const valid: ValidPatient[] = [];
    const validIndex: number[] = [];
    let failed = 0;
    inputs.forEach((input, index) => {
      const outcome = model.validator.validate(input);
      if (outcome.ok) {
        valid.push(outcome.patient);
        validIndex.push(index);
      } else {
        // A scanned patient is only invalid for another model version; the scanner read its id
        // (validate() has already parsed its text once for that version).
        const id = input instanceof ScannedPatient ? input.patient.id : clientId(input);
        outcomes[index] =
          id === undefined
            ? { index, ok: false, issues: outcome.issues }
            : { index, ok: false, id, issues: outcome.issues };
      }
    });
    if (valid.length > 0) {
      const { probabilities, explanations } = await scoreStays(
        model.manifest,
        valid,
        {
          submit: (rows) => model.batcher.submit(rows, options.signal, options.caller),
          admit: (rows) => model.batcher.admit(rows, options.caller),
        },
        options.explain === true,
      );
      for (let k = 0; k < valid.length; k++) {
        const patient = valid[k] as ValidPatient;
        const probability = probabilities[k] as number;
        const explanation = explanations?.[k];
        const index = validIndex[k] as number;
        if (!isUsableOutput(probability, explanation)) {
          const base = { index, ok: false as const, issues: [], failure: OUTPUT_NOT_A_PROBABILITY };
          outcomes[index] = patient.id === undefined ? base : { ...base, id: patient.id };
          failed++;
          continue;
        }
        const result = predictionResult(model.manifest, ref, patient, probability, explanation ? { explanation } : {});
        outcomes[index] = { index, ok: true, result };
      }
    }
    if (options.observe) {
      const at = new Date();
      for (const o of outcomes) report(options.observe, ref, at, o.ok ? o.result : o.failure ? 'failed' : 'invalid');
    }
    return { model: ref, outcomes, scored: valid.length - failed, failed };
  } finally {
    lease.release();
  }
}

/** The client's id, when it is a string (echoed back even for an invalid patient, never logged). */
function clientId(input: unknown): string | undefined {
  if (typeof input !== 'object' || input === null) return undefined;
  const id = (input as { id?: unknown }).id;
  return typeof id === 'string' && id.length <= 256 ? id : undefined;
}
