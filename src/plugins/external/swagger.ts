import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';

/**
 * OpenAPI from the routes' zod schemas (fastify-type-provider-zod turns them into JSON
 * Schema); the UI at /docs. scripts/generate-openapi.ts writes openapi.yaml from this.
 */
export const API_VERSION = '1.0.0';

export default fp(
  async (app: FastifyInstance) => {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'ICU in-hospital mortality prediction',
          version: API_VERSION,
          description:
            'Scores ICU stays with a stacked LSTM trained on the PhysioNet/Computing in Cardiology Challenge 2012 data ' +
            '(Silva et al., CinC 2012; ODC-By 1.0). Decision support only: the probability is for clinicians, not a diagnosis. ' +
            'Errors share one shape, `{ error, message, details: [{ path, message }] }`, where each detail names the JSON path of an offending field.',
        },
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
      transform: jsonSchemaTransform,
      transformObject: jsonSchemaTransformObject,
    });
    await app.register(swaggerUi, {
      routePrefix: '/docs',
      uiConfig: { docExpansion: 'list', deepLinking: false },
    });
  },
  { name: 'swagger' },
);
