import { readFileSync } from 'node:fs';
import swagger, { type SwaggerTransform, type SwaggerTransformObject } from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { errorSchema } from '../../http/errors.js';

/**
 * OpenAPI from the routes' zod schemas (fastify-type-provider-zod turns them into JSON
 * Schema); the UI at /docs. scripts/generate-openapi.ts writes openapi.yaml from this.
 */
const PACKAGE_VERSION = (
  JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** What every protected route can also answer, documented where a route does not say it itself. */
const PROTECTED_RESPONSES = {
  401: errorSchema.describe('No credential, or one that is not valid'),
  403: errorSchema.describe('The credential lacks the scope this route needs'),
  429: errorSchema.describe(
    'Rate limited (RATE_LIMIT_MAX per RATE_LIMIT_WINDOW_MS and credential); Retry-After says when to retry',
  ),
};
// Node's HTTP server answers 408 itself, without a body, on every route.
const TIMEOUT_RESPONSE = { type: 'null', description: 'The request did not arrive within REQUEST_TIMEOUT_MS' };

/**
 * Per operation: an operationId (the route's own, for SDK method names), the credentials it
 * takes (public routes none; CDS Hooks routes the EHR's JWT only) and the errors every route
 * of its kind can answer.
 */
const transform: SwaggerTransform = (input) => {
  const scope = (input.route.config as { scope?: string } | undefined)?.scope;
  const schema = { ...input.schema } as Record<string, unknown> & { response?: Record<string, unknown> };
  if (scope !== undefined && scope !== 'public') schema.response = { ...PROTECTED_RESPONSES, ...schema.response };
  const out = jsonSchemaTransform({ ...input, schema });
  const security: Array<Record<string, string[]>> =
    scope === 'public' ? [] : scope === 'cds' ? [{ bearer: [] }] : [{ apiKey: [] }, { bearer: [] }];
  const response = { ...(out.schema.response as Record<string, unknown> | undefined), 408: TIMEOUT_RESPONSE };
  return { ...out, schema: { ...out.schema, security, response } };
};

/** Drops component schemas no operation refers to (zod's registry emits an input and an output form of each). */
const transformObject: SwaggerTransformObject = (documentObject) => {
  const doc = jsonSchemaTransformObject(documentObject);
  const components = (doc as unknown as { components?: { schemas?: Record<string, unknown> } }).components;
  const schemas = components?.schemas;
  if (!schemas) return doc;
  const referenced = (value: unknown): string[] =>
    [...JSON.stringify(value).matchAll(/"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1] as string);
  const used = new Set(referenced({ ...doc, components: { ...components, schemas: {} } }));
  for (const queue = [...used]; queue.length > 0;) {
    for (const name of referenced(schemas[queue.pop() as string])) {
      if (used.has(name)) continue;
      used.add(name);
      queue.push(name);
    }
  }
  for (const name of Object.keys(schemas)) if (!used.has(name)) delete schemas[name];
  return doc;
};

export default fp(
  async (app: FastifyInstance) => {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'ICU in-hospital mortality prediction',
          version: PACKAGE_VERSION,
          // The service's code is private; what users must honour is its model's training-data licence.
          license: {
            name: 'Model trained on PhysioNet 2012 data, ODC-By 1.0: attribute Silva et al. (see the description)',
            url: 'https://opendatacommons.org/licenses/by/1-0/',
          },
          description:
            'Scores ICU stays with a stacked recurrent network (GRU or LSTM, `GET /v1/models`) trained on the PhysioNet/Computing in Cardiology Challenge 2012 data ' +
            '(Silva et al., CinC 2012; ODC-By 1.0). Decision support only: the probability is for clinicians, not a diagnosis. ' +
            'Errors share one shape, `{ error, message, details: [{ path, message }] }`, where each detail names the JSON path of an offending field.',
        },
        // Relative: the document describes whichever host serves it.
        servers: [{ url: '/', description: 'This service' }],
        tags: [
          { name: 'predict', description: 'Mortality predictions' },
          { name: 'models', description: 'Model versions, provenance and reload' },
          { name: 'health', description: 'Liveness, readiness and metrics' },
        ],
        components: {
          securitySchemes: {
            apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' },
            bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          },
        },
      },
      transform,
      transformObject,
    });
    await app.register(swaggerUi, {
      routePrefix: '/docs',
      uiConfig: { docExpansion: 'list', deepLinking: false },
    });
  },
  { name: 'swagger' },
);
