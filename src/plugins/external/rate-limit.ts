import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ApiError } from '../../http/errors.js';

/**
 * Rate limiting per credential, or per client IP before one is known (@fastify/rate-limit,
 * in-memory: one process), registered after auth so that its key is the principal.
 * `max: 0` turns it off (benchmarks).
 */

export interface RateLimitOptions {
  max: number;
  windowMs: number;
}

export function rateLimitKey(request: FastifyRequest): string {
  const principal = request.principal;
  return principal && principal.kind !== 'anonymous' ? principal.id : `ip:${request.ip}`;
}

async function rateLimitPlugin(app: FastifyInstance, opts: RateLimitOptions): Promise<void> {
  if (opts.max === 0) return;
  await app.register(rateLimit, {
    global: true,
    max: opts.max,
    timeWindow: opts.windowMs,
    keyGenerator: rateLimitKey,
    // Probes, metrics and docs are never limited: a liveness probe answered 429 gets a healthy pod restarted.
    allowList: (request) => request.routeOptions.config?.scope === 'public',
    errorResponseBuilder: (_request, context) =>
      new ApiError(
        429,
        'rate_limited',
        `rate limit of ${context.max} requests per ${context.after} exceeded; retry later`,
        [],
        Math.max(1, Math.ceil(context.ttl / 1000)),
      ),
  });
}

export const rateLimiting = fp(rateLimitPlugin, { name: 'rate-limit', fastify: '5.x', dependencies: ['auth'] });
