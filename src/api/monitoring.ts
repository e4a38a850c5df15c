import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { MIN_DEATHS, MIN_SURVIVORS } from '../evaluation/monitoring.js';
import { errorSchema } from '../http/errors.js';
import './scope.js';

/** `GET /v1/monitoring`: the model's live performance against the outcomes posted to /v1/outcomes. */

const nullable = (description: string) => z.number().nullable().meta({ description });

const figuresShape = {
  n: z.number().int().meta({ description: 'Predictions of the window joined to an outcome (one per patient)' }),
  deaths: z.number().int(),
  unlabelled: z.number().int().meta({ description: 'Predictions of the window whose patient has no outcome yet' }),
  auroc: nullable('Area under the ROC curve'),
  aurocCi95: z
    .tuple([z.number(), z.number()])
    .nullable()
    .meta({ description: 'Percentile bootstrap 95% interval of the AUROC (1000 stratified resamples)' }),
  calibration: z.object({
    interceptInTheLarge: nullable('Calibration-in-the-large: 0 when the mean risk is right'),
    slope: nullable('Calibration slope: 1 ideal, below 1 predictions too extreme'),
  }),
  observedExpected: nullable('Observed deaths over the sum of predicted risks'),
  flaggedShare: nullable("Share of the pairs at or above the alert policy's alert threshold"),
  sensitivity: nullable('Deaths flagged at the alert threshold, as a share of deaths'),
  ppv: nullable('Deaths among the flagged pairs, as a share of them'),
  withheld: z
    .string()
    .nullable()
    .meta({ description: 'Why the outcome-based figures are null (too few deaths or survivors); null when given' }),
};

export const monitoringResponseSchema = z
  .object({
    days: z.number().int(),
    since: z.string().meta({ description: 'Start of the window: predictions made since then' }),
    alertThreshold: z
      .number()
      .nullable()
      .meta({ description: 'Where a stay counts as flagged (the lowest tier above info)' }),
    minimum: z.object({ deaths: z.number().int(), survivors: z.number().int() }),
    overall: z.object(figuresShape),
    byVersion: z.array(z.object({ version: z.string(), ...figuresShape })),
    byProfile: z.array(z.object({ profile: z.string(), ...figuresShape })),
  })
  .meta({ id: 'Monitoring' });

const DESCRIPTION = `Live performance of the served models against outcomes (\`POST /v1/outcomes\`), overall, per model version
and per input profile.

Each outcome is paired with its patient's latest prediction at or before the outcome's time; the pairs whose
prediction was made in the last \`days\` days are counted. AUROC (with a bootstrap 95% interval), calibration
intercept and slope, observed/expected, sensitivity and PPV are given only with at least ${MIN_DEATHS} deaths and
${MIN_SURVIVORS} survivors (the site validation's minimum); below it they are null and \`withheld\` says why.
\`flaggedShare\`, \`sensitivity\` and \`ppv\` are at the alert policy's alert threshold. The same figures for the
last MONITORING_DAYS days are Prometheus gauges (\`monitoring_*\`), recomputed every MONITORING_INTERVAL_S.
Requires scope \`models:read\`.`;

export async function monitoringRoutes(app: FastifyInstance): Promise<void> {
  app.withTypeProvider<ZodTypeProvider>().get(
    '/v1/monitoring',
    {
      config: { scope: 'models:read' },
      schema: {
        operationId: 'getMonitoring',
        tags: ['monitoring'],
        summary: 'Live performance against outcomes',
        description: DESCRIPTION,
        querystring: z.strictObject({
          days: z.coerce.number().int().min(1).max(3650).default(30).meta({ description: 'Window in days' }),
        }),
        response: { 200: monitoringResponseSchema, 400: errorSchema, 503: errorSchema },
      },
    },
    async (request) => {
      const answer = await app.monitoring.figures(request.query.days);
      return { ...answer, minimum: { deaths: MIN_DEATHS, survivors: MIN_SURVIVORS } };
    },
  );
}
