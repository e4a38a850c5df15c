import { batcherSink, scoreStays, type RowSink } from './score-stays.js';
import { predictionResult } from '../clinical/result.js';
import type { FieldIssue, PredictionResult, ValidPatient } from '../clinical/types.js';
import { ScannedPatient } from '../clinical/validate.js';
import type { Manifest } from '../model/manifest.js';
import type { ModelRepository } from '../model/repository.js';
import { reportAll, type ModelRef, type Observe, type Observed } from './observer.js';
import { isUsableOutput, OUTPUT_NOT_A_PROBABILITY } from './output-check.js';

/**
 * The scoring core: validated patients in, one result (with its explanation when asked) or one
 * failure each out, in order. Every entry point scores through scoreValid: POST /v1/predict,
 * FHIR and CDS Hooks through scorePatients below, the stream and the CLI through the ordered
 * pipeline (./pipeline.ts), which calls it batch by batch.
 */

/** A valid patient's outcome: its result, or the model gave no usable probability for it. */
export type ValidOutcome =
  { ok: true; result: PredictionResult } | { ok: false; failure: typeof OUTPUT_NOT_A_PROBABILITY };

export interface ValidScoring {
  manifest: Manifest;
  model: ModelRef;
  /** Where the stays' rows go (a model's batcher, with the caller's signal and share). */
  sink: RowSink;
  /** Add each result's trajectory and contributions (src/clinical/explain.ts). */
  explain?: boolean;
  /** Report missingThroughout per result (the API does; a CSV file has no column for it). */
  reportMissing?: boolean;
}

/** Scores valid patients in one call; throws what the sink throws (queue full, abort, engine error). */
export async function scoreValid(patients: readonly ValidPatient[], scoring: ValidScoring): Promise<ValidOutcome[]> {
  const { manifest, model } = scoring;
  const { probabilities, explanations } = await scoreStays(
    manifest,
    patients as ValidPatient[],
    scoring.sink,
    scoring.explain === true,
  );
  return patients.map((patient, k): ValidOutcome => {
    const probability = probabilities[k];
    const explanation = explanations?.[k];
    if (!isUsableOutput(probability, explanation)) return { ok: false, failure: OUTPUT_NOT_A_PROBABILITY };
    return {
      ok: true,
      result: predictionResult(manifest, model, patient, probability as number, {
        reportMissing: scoring.reportMissing,
        ...(explanation ? { explanation } : {}),
      }),
    };
  });
}

export type ScoreOutcome =
  | { index: number; ok: true; result: PredictionResult }
  | { index: number; ok: false; id?: string; issues: FieldIssue[]; failure?: typeof OUTPUT_NOT_A_PROBABILITY };

export interface ScoreResponse {
  model: ModelRef;
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

/**
 * Validate-then-score for a list of patients: one outcome per input, in order, all scored by the
 * one model version it leases. Throws what the batcher throws (queue full, abort, engine error)
 * and ModelNotFoundError.
 */
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
    let failed = 0;
    if (valid.length > 0) {
      const scored = await scoreValid(valid, {
        manifest: model.manifest,
        model: ref,
        sink: batcherSink(model.batcher, options.signal, options.caller),
        explain: options.explain === true,
      });
      scored.forEach((outcome, k) => {
        const index = validIndex[k] as number;
        if (outcome.ok) outcomes[index] = { index, ok: true, result: outcome.result };
        else {
          const { id } = valid[k] as ValidPatient;
          const base = { index, ok: false as const, issues: [], failure: outcome.failure };
          outcomes[index] = id === undefined ? base : { ...base, id };
          failed++;
        }
      });
    }
    if (options.observe)
      reportAll(
        options.observe,
        ref,
        outcomes.map((o): Observed => (o.ok ? o.result : o.failure ? 'failed' : 'invalid')),
      );
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
