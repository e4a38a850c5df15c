import helmet from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/**
 * Security headers on every response (@fastify/helmet's defaults: HSTS, nosniff, frame
 * denial, a strict Content-Security-Policy, no X-Powered-By). The service answers JSON to
 * machines; the only HTML is the API docs page, which @fastify/swagger-ui serves with its own
 * CSP hashes when registered with `staticCSP: true`.
 */
async function helmetPlugin(app: FastifyInstance): Promise<void> {
  await app.register(helmet, { global: true });
}

export const securityHeaders = fp(helmetPlugin, { name: 'security-headers', fastify: '5.x' });
