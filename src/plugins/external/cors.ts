import cors from '@fastify/cors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';

/**
 * CORS for the CDS Hooks routes only (@fastify/cors), so that browser-based CDS clients can
 * call the service, as CDS Hooks 2.0 asks of services. The preflight needs no credential (the
 * browser sends none); every other route sends no CORS headers. No origins configured: no CORS.
 */
export interface CorsOptions {
  /** Allowed origins, or ['*']. */
  origins: readonly string[];
}

const CDS_PREFIX = '/cds-services';

async function corsPlugin(app: FastifyInstance, opts: CorsOptions): Promise<void> {
  if (opts.origins.length === 0) return;
  const origin = opts.origins.includes('*') ? '*' : [...opts.origins];
  await app.register(cors, {
    delegator: (request: FastifyRequest, callback) => {
      const path = request.url.split('?')[0] ?? '';
      const cds = path === CDS_PREFIX || path.startsWith(`${CDS_PREFIX}/`);
      callback(
        null,
        cds
          ? {
              origin,
              methods: ['GET', 'POST', 'OPTIONS'],
              allowedHeaders: ['Authorization', 'Content-Type'],
              maxAge: 600,
            }
          : { origin: false },
      );
    },
  });
}

export const corsForCdsHooks = fp(corsPlugin, { name: 'cors', fastify: '5.x' });
