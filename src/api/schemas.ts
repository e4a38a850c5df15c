import { z } from 'zod';
import { patientInputSchema } from '../clinical/schemas.js';
import type { Manifest } from '../model/manifest.js';
import { VERSION_NAME } from '../model/semver.js';
import { errorSchema } from './errors.js';

/**
 * Request and response schemas of the prediction API. The patient schema comes from the
 * serving model's manifest (src/clinical/schemas.ts), so the OpenAPI document lists every
 * variable with its unit and bounds.
 */

export const modelRefSchema = z.object({ name: z.string(), version: z.string() });

export const inputProfileSchema = z
  .object({
    scenario: z.string().meta({ description: 'The validated scenario the inputs match, e.g. vitals, vitals-routine-labs, first-6h, full' }),
    label: z.string(),
    heldOutAuroc: z.number().nullable().meta({ description: "The model's AUROC on held-out stays sent this way (model card); null if not evaluated" }),
  })
  .meta({ id: 'InputProfile', description: 'How much weight the score can bear: the first validated scenario that covers what the stay contains' });

export const predictionResultSchema = z
  .object({
    index: z.number().int().meta({ description: 'Position of the patient in the request' }),
    id: z.string().optional().meta({ description: 'The client id, echoed' }),
    probability: z.number().gt(0).lt(1).meta({ description: 'Calibrated probability of in-hospital death, 0 to 1' }),
    model: modelRefSchema,
    hoursUsed: z.number().int().meta({ description: 'Hourly rows the model read (at most the model maxHours)' }),
    truncated: z.boolean().meta({ description: 'True when the stay had more rows than maxHours and only the last ones were used' }),
    missingThroughout: z.array(z.string()).meta({ description: 'Variables never observed in the hours used' }),
    inputProfile: inputProfileSchema.optional(),
  })
  .meta({ id: 'PredictionResult' });

export const patientErrorSchema = z
  .object({
    index: z.number().int(),
    id: z.string().optional(),
    error: errorSchema,
  })
  .meta({ id: 'PatientError', description: 'A patient that could not be scored; the others in the request are.' });

export const predictResponseSchema = z
  .object({
    model: modelRefSchema,
    results: z.array(z.union([predictionResultSchema, patientErrorSchema])).meta({ description: 'One entry per patient, in request order' }),
  })
  .meta({
    id: 'PredictResponse',
    examples: [
      {
        model: { name: 'icu-mortality', version: '1.4.0' },
        results: [
          {
            index: 0,
            id: 'bed-12',
            probability: 0.183,
            model: { name: 'icu-mortality', version: '1.4.0' },
            hoursUsed: 3,
            truncated: false,
            missingThroughout: ['Albumin', 'ALP'],
            inputProfile: { scenario: 'first-6h', label: 'the full record of the first 6 hours', heldOutAuroc: 0.792 },
          },
          { index: 1, id: 'bed-14', error: { error: 'validation_failed', message: 'this patient is invalid', details: [{ path: 'hours.2.HR', message: 'Heart rate outside the plausible range 0 to 300 /min' }] } },
        ],
      },
    ],
  });

export function predictRequestSchema(manifest: Manifest, maxPatients: number) {
  return z
    .strictObject({
      patients: z.array(patientInputSchema(manifest)).min(1).max(maxPatients),
      model: z.string().optional().meta({ description: `Model name; default ${manifest.name}` }),
      version: z.string().optional().meta({ description: 'Exact model version; default the serving version' }),
    })
    .meta({
      description: 'One or many ICU stays to score.',
      examples: [exampleRequest(manifest)],
    });
}

/**
 * The envelope alone: what makes a request structurally unusable (400). Patients are
 * validated one by one in the handler so that one bad patient does not fail the others.
 */
export function predictEnvelopeSchema(maxPatients: number) {
  return z.strictObject({
    patients: z.array(z.unknown()).min(1).max(maxPatients),
    model: z.string().optional(),
    version: z.string().optional(),
  });
}

function exampleRequest(manifest: Manifest): unknown {
  const names = new Set(manifest.variables.map((v) => v.name));
  const pick = (row: Record<string, number | null>) => Object.fromEntries(Object.entries(row).filter(([k]) => names.has(k)));
  return {
    patients: [
      {
        id: 'bed-12',
        age: 71,
        sex: 'female',
        icuType: 3,
        height: 162,
        weight: 70.5,
        units: names.has('Temp') ? { Temp: '[degF]' } : {},
        hours: [
          pick({ HR: 104, MAP: 68, RespRate: 22, Temp: 100.9, SaO2: 94, Lactate: 3.1 }),
          pick({ HR: 110, MAP: 64, RespRate: null, Temp: null, SaO2: 93 }),
          pick({ HR: 98, MAP: 71, RespRate: 20 }),
        ],
      },
    ],
  };
}

export const reloadRequestSchema = z
  .object({
    version: z
      .string()
      .max(64)
      .regex(VERSION_NAME, 'a version folder name: letters and digits joined by ".", "+", "_" or "-"')
      .optional()
      .meta({ description: 'Load this version (a folder of the model directory) instead of the configured policy' }),
    force: z.boolean().optional().meta({ description: 'Reload even when the version is already serving' }),
  })
  .nullish();

export { errorSchema };
