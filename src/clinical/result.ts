import type { Manifest } from '../model/manifest.js';
import type { Explanation } from './explain.js';
import { inputProfile } from './input-profile.js';
import type { PredictionResult, ValidPatient } from './types.js';
import { missingThroughout } from './validate.js';

/** The result of one scored stay, as every entry point reports it. */
export function predictionResult(
  manifest: Manifest,
  model: { name: string; version: string },
  patient: ValidPatient,
  probability: number,
  options: { reportMissing?: boolean; explanation?: Explanation } = {},
): PredictionResult {
  const hoursUsed = patient.hoursUsed;
  const missing = missingThroughout(manifest, patient);
  const profile = inputProfile(manifest, patient);
  return {
    ...(patient.id === undefined ? {} : { id: patient.id }),
    probability,
    model,
    hoursUsed,
    truncated: patient.hoursReceived > hoursUsed,
    missingThroughout: options.reportMissing === false ? [] : missing,
    ...(profile === undefined ? {} : { inputProfile: profile }),
    ...(options.explanation === undefined ? {} : options.explanation),
  };
}
