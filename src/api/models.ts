import { access, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AppConfig } from '../config.js';
import { isVersionName } from '../model/semver.js';
import { ModelNotFoundError } from '../model/repository.js';
import { ApiError, errorSchema } from '../http/errors.js';
import { reloadRequestSchema } from './schemas.js';
// After ./schemas.js: openapi.yaml lists the named schemas in the order their modules define them.
import { modelsResponseSchema } from './models-schemas.js';
import './scope.js';

const CARD_FILE = 'model-card.md';

/** RFC 7763's media type for Markdown. */
const MARKDOWN = 'text/markdown; charset=utf-8';

export interface ModelRoutesOptions {
  config: Pick<AppConfig, 'modelDir' | 'fhir' | 'alerting'>;
}

const reloadResponseSchema = z.object({
  changed: z.boolean(),
  previous: z.string().optional(),
  current: z.string(),
});

export async function modelRoutes(app: FastifyInstance, opts: ModelRoutesOptions): Promise<void> {
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const cds = {
    mode: opts.config.fhir.cdsSilent ? ('silent' as const) : ('cards' as const),
    alertPolicy: opts.config.alerting.policy,
  };
  const cardUrl = (version: string): string => `/v1/models/${encodeURIComponent(version)}/card`;
  // Only names listed from disk by the repository become paths, never one taken from the URL.
  const cardFile = (version: string): string =>
    join(resolve(opts.config.modelDir), app.models.name, version, CARD_FILE);
  const withCards = async (available: readonly string[]): Promise<string[]> => {
    const has = await Promise.all(
      available.map((v) =>
        access(cardFile(v)).then(
          () => true,
          () => false,
        ),
      ),
    );
    return available.filter((_, i) => has[i]);
  };

  routes.get(
    '/v1/models',
    {
      config: { scope: 'models:read', smartApp: true },
      schema: {
        operationId: 'listModels',
        tags: ['models'],
        summary: 'The serving model: features with units and bounds, provenance, metrics, execution provider',
        response: { 200: modelsResponseSchema },
      },
    },
    async () => {
      const model = app.models.active;
      const available = await app.models.versions();
      const cardUrls = Object.fromEntries((await withCards(available)).map((v) => [v, cardUrl(v)]));
      if (!model) return { models: [], available, cards: cardUrls, cds };
      const m = model.manifest;
      return {
        available,
        cards: cardUrls,
        cds,
        models: [
          {
            name: model.name,
            version: model.version,
            serving: true,
            bootstrap: m.bootstrap,
            description: m.description,
            createdAt: m.createdAt,
            executionProvider: model.provider,
            maxHours: m.maxHours,
            loadedAt: model.loadedAt.toISOString(),
            features: m.variables.map((v) => ({
              name: v.name,
              label: v.label,
              unit: v.unit,
              loinc: v.loinc,
              bounds: v.bounds,
              alternativeUnits: v.alternativeUnits.map((a) => a.unit),
            })),
            statics: m.statics.map((s) =>
              s.kind === 'numeric'
                ? { name: s.name, kind: s.kind, unit: s.unit, bounds: s.bounds }
                : { name: s.name, kind: s.kind, labels: s.labels },
            ),
            decisionThreshold: m.decisionThreshold,
            provenance: m.provenance,
            metrics: m.metrics,
            ...(m.noteEmbedding
              ? {
                  noteEmbedding: {
                    dimension: m.noteEmbedding.dimension,
                    encoder: m.noteEmbedding.encoder,
                    normalisation: m.noteEmbedding.normalisation,
                  },
                }
              : {}),
            ...(cardUrls[model.version] === undefined ? {} : { card: cardUrls[model.version] }),
          },
        ],
      };
    },
  );

  routes.get(
    '/v1/models/:version/card',
    {
      config: { scope: 'models:read', smartApp: true },
      schema: {
        operationId: 'getModelCard',
        tags: ['models'],
        summary: 'The model card of a version on disk: data, metrics by subgroup, limits and intended use',
        params: z.object({ version: z.string().meta({ description: 'A version of `available` in GET /v1/models' }) }),
        response: {
          200: {
            description: 'model-card.md of that version, as written by training/model_card.py',
            content: { 'text/markdown': { schema: z.string() } },
          },
          404: errorSchema.describe('No version of that name on disk, or it has no model card'),
        },
      },
      serializerCompiler: () => (data) => String(data),
    },
    async (request, reply) => {
      const { version } = request.params;
      const carded = await withCards(await app.models.versions());
      const card = carded.includes(version)
        ? await readFile(cardFile(version), 'utf8').catch(() => undefined)
        : undefined;
      if (card === undefined) {
        // Only a version name is echoed, never an arbitrary string from the URL.
        const named = isVersionName(version) && version.length <= 64 ? `"${version}"` : '(not a version name)';
        throw new ApiError(
          404,
          'model_card_not_found',
          `no model card for version ${named} (versions with a card: ${carded.join(', ') || 'none'})`,
        );
      }
      return reply.type(MARKDOWN).send(card);
    },
  );

  routes.post(
    '/admin/models/reload',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'reloadModel',
        tags: ['models'],
        summary: 'Load the configured (or given) model version, warm it up and switch to it atomically',
        description:
          'In-flight requests finish on the old version, which is closed afterwards. A model that fails to load or warm up is rejected (422) and the serving one keeps serving.',
        body: reloadRequestSchema,
        response: { 200: reloadResponseSchema, 404: errorSchema, 422: errorSchema },
      },
    },
    async (request) => {
      const body = request.body ?? {};
      try {
        const outcome = await app.models.reload(body);
        app.metrics.reloads.inc({ outcome: outcome.changed ? 'changed' : 'unchanged' });
        return outcome.previous === undefined ? { changed: outcome.changed, current: outcome.current } : outcome;
      } catch (error) {
        app.metrics.reloads.inc({ outcome: 'failed' });
        // Messages name versions, never paths (the repository's load errors are path-free; the log has the folder).
        // Statuses come from src/http/error-table.ts.
        if (error instanceof ModelNotFoundError && body.version === undefined)
          throw new ModelNotFoundError('the configured model version is not in the model folder');
        throw error;
      }
    },
  );
}
