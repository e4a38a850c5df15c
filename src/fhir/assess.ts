import { randomUUID } from 'node:crypto';
import type { PredictionResult } from '../clinical/types.js';
import { scorePatients } from '../scoring/score.js';
import type { ModelRepository } from '../model/repository.js';
import type { Observe } from '../scoring/observer.js';
import type { Gathered } from './gather.js';
import { mapToPatientInput, type MappedPatient } from './mapping.js';
import { FhirInputError } from './outcome.js';
import { buildRiskAssessment, type RiskAssessment } from './risk-assessment.js';
import type { RiskThresholds } from './thresholds.js';
import { parseFhirDateTime } from './time.js';
import { missingForAnswer } from './variables.js';

/**
 * FHIR resources -> RiskAssessment: map to a built stay with the serving model's manifest,
 * then score through the same validate-and-score function as POST /v1/predict (so both give
 * the same probability for the same stay), pinned to the version the mapping used.
 */

export interface AssessOptions {
  models: ModelRepository;
  now: Date;
  /** Data older than this before now are scored as of their own time, with a warning. */
  staleAfterHours: number;
  thresholds: RiskThresholds;
  signal?: AbortSignal;
  /** Where the outcome is reported, under the caller's route (fhir or cds). */
  observe?: Observe;
  /** Whose share of the engine the scoring uses (src/inference/batcher.ts). */
  caller?: string;
}

export interface Assessment {
  riskAssessment: RiskAssessment;
  mapped: MappedPatient;
  result: PredictionResult;
}

export async function assess(gathered: Gathered, options: AssessOptions): Promise<Assessment> {
  const model = options.models.active;
  if (!model) throw new FhirInputError(422, [{ severity: 'error', code: 'processing', message: 'no model is loaded' }]);
  const manifest = model.manifest;
  let given: Date | undefined;
  if (gathered.predictionTime !== undefined) {
    const at = parseFhirDateTime(gathered.predictionTime);
    if (at === undefined) {
      throw new FhirInputError(400, [
        {
          severity: 'error',
          code: 'value',
          message: 'predictionTime is not a dateTime with a time and a time zone',
          expression: ['Parameters.parameter.valueDateTime'],
        },
      ]);
    }
    given = new Date(at);
  }
  const mapped = mapToPatientInput(gathered, {
    manifest,
    now: options.now,
    staleAfterHours: options.staleAfterHours,
    ...(given ? { predictionTime: given } : {}),
  });
  const scored = await scorePatients(options.models, [mapped.stay], {
    model: model.name,
    version: model.version,
    explain: true,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.observe ? { observe: options.observe } : {}),
    ...(options.caller === undefined ? {} : { caller: options.caller }),
  });
  const outcome = scored.outcomes[0];
  if (outcome && !outcome.ok && outcome.failure) {
    // A model output that is not a probability (src/scoring/output-check.ts) is never served.
    throw new FhirInputError(422, [{ severity: 'error', code: 'processing', message: outcome.failure.message }]);
  }
  if (!outcome || !outcome.ok) {
    // The mapping checks what validation checks, but a FHIR request carries no note embedding:
    // a hybrid model's refusal (and any mapping bug) is reported here, by its field.
    const issues = outcome && !outcome.ok ? outcome.issues : [];
    throw new FhirInputError(
      422,
      issues.map((i) => ({
        severity: 'error',
        code: 'processing',
        message: `the mapped patient failed validation at ${i.path.join('.')}: ${i.message}`,
      })),
    );
  }
  const result = outcome.result;
  const riskAssessment = buildRiskAssessment({
    id: randomUUID(),
    model: {
      name: result.model.name,
      version: result.model.version,
      architecture: manifest.architecture.type,
      bootstrap: manifest.bootstrap,
    },
    probability: result.probability,
    subject: mapped.subject,
    ...(mapped.encounter ? { encounter: mapped.encounter } : {}),
    occurrence: mapped.predictionTime,
    basis: mapped.basis,
    issues: mapped.issues,
    thresholds: options.thresholds,
    hoursUsed: result.hoursUsed,
    truncated: result.truncated,
    missingThroughout: missingForAnswer(result.missingThroughout),
    ...(result.inputProfile ? { inputProfile: result.inputProfile } : {}),
    ...(result.trajectory ? { trajectory: result.trajectory } : {}),
    ...(result.contributions ? { contributions: result.contributions } : {}),
    timeZeroSource: mapped.timeZeroSource,
  });
  return { riskAssessment, mapped, result };
}
