import { z } from 'zod';
import { alertPolicySchema } from '../clinical/alert-policy.js';

/** The answer of `GET /v1/models` (src/api/models.ts): each version on disk and how it is served. */

const boundsSchema = z.object({ min: z.number(), max: z.number() });

const modelDescriptionSchema = z
  .object({
    name: z.string(),
    version: z.string(),
    serving: z.boolean(),
    bootstrap: z
      .boolean()
      .meta({ description: 'True for an untrained placeholder model: its probabilities mean nothing' }),
    description: z.string(),
    createdAt: z.string(),
    executionProvider: z.string(),
    maxHours: z.number().int(),
    loadedAt: z.string(),
    features: z.array(
      z.object({
        name: z.string(),
        label: z.string(),
        unit: z.string(),
        loinc: z.array(z.string()),
        bounds: boundsSchema,
        alternativeUnits: z.array(z.string()),
      }),
    ),
    statics: z.array(
      z.object({
        name: z.string(),
        kind: z.string(),
        unit: z.string().optional(),
        bounds: boundsSchema.optional(),
        labels: z.array(z.string()).optional(),
      }),
    ),
    decisionThreshold: z.number(),
    provenance: z.record(z.string(), z.unknown()),
    metrics: z.record(z.string(), z.unknown()),
    noteEmbedding: z
      .object({ dimension: z.number().int(), encoder: z.string(), normalisation: z.string() })
      .optional()
      .meta({
        description:
          'A hybrid model only: every patient must carry noteEmbedding, this many numbers from this encoder, scaled this way',
      }),
    card: z.string().optional().meta({ description: 'URL of the model card (Markdown) of this version' }),
  })
  .meta({ id: 'ModelDescription' });

export const modelsResponseSchema = z.object({
  models: z.array(modelDescriptionSchema),
  available: z.array(z.string()).meta({ description: 'Versions found on disk' }),
  cards: z
    .record(z.string(), z.string())
    .meta({ description: 'URL of the model card of each version on disk that has one, by version' }),
  cds: z
    .object({
      mode: z.enum(['silent', 'cards']).meta({
        description:
          'silent (CDS_SILENT=true): CDS Hooks calls are scored and recorded, no card is shown; cards: cards are shown',
      }),
      alertPolicy: alertPolicySchema.meta({
        description:
          'The alert policy (ALERT_POLICY, or the default from RISK_*_THRESHOLD): tiers and re-alert suppression',
      }),
    })
    .meta({ description: 'How CDS Hooks answers: its mode and alert policy' }),
});
