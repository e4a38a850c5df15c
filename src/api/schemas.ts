import { z } from 'zod';
import { patientInputSchema } from '../clinical/schemas.js';
import type { Manifest } from '../model/manifest.js';
import { VERSION_NAME } from '../model/semver.js';
import { errorSchema } from '../http/errors.js';
import { predictRequestExample } from './examples.js';

/**
 * Request and response schemas of the prediction API. The patient schema comes from the
 * serving model's manifest (src/clinical/schemas.ts), so the OpenAPI document lists every
 * variable with its unit and bounds.
 */

export const modelRefSchema = z.object({ name: z.string(), version: z.string() });

export const inputProfileSchema = z
  .object({
    scenario: z.string().meta({
      description:
        'The validated scenario the inputs cover, e.g. vitals, vitals-routine-labs, first-6h, full; sparse when they cover none',
    }),
    label: z.string(),
    heldOutAuroc: z.number().nullable().meta({
      description:
        "The model's AUROC on held-out stays sent this way (model card); null for sparse stays or if not evaluated",
    }),
  })
  .meta({
    id: 'InputProfile',
    description:
      'How much weight the score can bear: of the validated scenarios whose coverage the stay has, the one with the highest held-out AUROC',
  });

export const trajectorySchema = z
  .array(
    z.object({
      hour: z.number().int().min(1).meta({ description: 'Hours of the stay read (1 to hoursUsed)' }),
      probability: z
        .number()
        .gt(0)
        .lt(1)
        .meta({ description: 'Calibrated probability after that hour: the stay cut there and scored alone' }),
    }),
  )
  .meta({
    id: 'Trajectory',
    description: 'With explain: the risk after each hour used; the last point equals `probability`',
  });

export const contributionsSchema = z
  .array(
    z.object({
      variable: z.string().meta({ description: 'A measurement name, or a descriptor: age, sex, icuType, height' }),
      effect: z.number().meta({
        description:
          'probability minus the probability of the same stay with this variable removed from every hour (-1 to 1); an association in this model, not a cause',
      }),
    }),
  )
  .meta({
    id: 'Contributions',
    description: 'With explain: every variable present in the stay, largest |effect| first',
  });

export const predictionResultSchema = z
  .object({
    index: z.number().int().meta({ description: 'Position of the patient in the request' }),
    id: z.string().optional().meta({ description: 'The client id, echoed' }),
    probability: z.number().gt(0).lt(1).meta({ description: 'Calibrated probability of in-hospital death, 0 to 1' }),
    model: modelRefSchema,
    hoursUsed: z.number().int().meta({ description: 'Hourly rows the model read (at most the model maxHours)' }),
    truncated: z
      .boolean()
      .meta({ description: 'True when the stay had more rows than maxHours and only the last ones were used' }),
    missingThroughout: z.array(z.string()).meta({ description: 'Variables never observed in the hours used' }),
    inputProfile: inputProfileSchema.optional(),
    trajectory: trajectorySchema.optional(),
    contributions: contributionsSchema.optional(),
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
    results: z
      .array(z.union([predictionResultSchema, patientErrorSchema]))
      .meta({ description: 'One entry per patient, in request order' }),
  })
  .meta({
    id: 'PredictResponse',
    examples: [
      {
        model: { name: 'icu-mortality', version: '1.6.0' },
        results: [
          {
            index: 0,
            id: 'bed-12',
            probability: 0.183,
            model: { name: 'icu-mortality', version: '1.6.0' },
            hoursUsed: 6,
            truncated: false,
            missingThroughout: ['Albumin', 'ALP'],
            inputProfile: { scenario: 'first-6h', label: 'the full record of the first 6 hours', heldOutAuroc: 0.807 },
          },
          {
            index: 1,
            id: 'bed-14',
            error: {
              error: 'validation_failed',
              message: 'this patient is invalid',
              details: [{ path: 'hours.2.HR', message: 'Heart rate outside the plausible range 0 to 300 /min' }],
            },
          },
        ],
      },
    ],
  });

export function predictRequestSchema(manifest: Manifest, limits: PatientLimits) {
  return z
    .strictObject({
      patients: z.array(patientInputSchema(manifest)).min(1).max(limits.maxPatients, tooManyPatients(limits)),
      model: z
        .string()
        .optional()
        .meta({ description: `Model name; default ${manifest.name}` }),
      version: z.string().optional().meta({ description: 'Exact model version; default the serving version' }),
      explain: explainSchema(limits),
    })
    .meta({
      description: 'One or many ICU stays to score.',
      examples: [predictRequestExample(manifest)],
    });
}

/**
 * The envelope alone: what makes a request structurally unusable (400). Patients are
 * validated one by one in the handler so that one bad patient does not fail the others.
 */
export function predictEnvelopeSchema(limits: PatientLimits) {
  return z
    .strictObject({
      patients: z.array(z.unknown()).min(1).max(limits.maxPatients, tooManyPatients(limits)),
      model: z.string().optional(),
      version: z.string().optional(),
      explain: explainSchema(limits),
    })
    .check((ctx) => {
      const { patients, explain } = ctx.value;
      if (explain === true && patients.length > limits.maxExplainedPatients) {
        ctx.issues.push({
          code: 'too_big',
          origin: 'array',
          maximum: limits.maxExplainedPatients,
          inclusive: true,
          path: ['patients'],
          input: patients,
          message: `with explain, at most ${limits.maxExplainedPatients} patients per request (MAX_EXPLAINED_PATIENTS); send larger cohorts to POST /v1/predict/stream?explain=true`,
        });
      }
    });
}

export interface PatientLimits {
  maxPatients: number;
  maxExplainedPatients: number;
}

/** Names the setting and where larger cohorts go: the stream takes any number of patients. */
function tooManyPatients(limits: PatientLimits): string {
  return `at most ${limits.maxPatients} patients per request (MAX_PATIENTS_PER_REQUEST); send larger cohorts as NDJSON to POST /v1/predict/stream`;
}

function explainSchema(limits: PatientLimits) {
  return z
    .boolean()
    .optional()
    .meta({
      description: `Add each result's trajectory (risk after every hour) and contributions (each variable's effect); at most ${limits.maxExplainedPatients} patients per request`,
    });
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
