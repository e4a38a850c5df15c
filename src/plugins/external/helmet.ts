import helmet, { type FastifyHelmetOptions } from '@fastify/helmet';
import Fastify, { type FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/**
 * Security headers on every response: @fastify/helmet's defaults (HSTS, nosniff, frame
 * denial, a strict Content-Security-Policy, no X-Powered-By). The service answers JSON to
 * machines; the only HTML is the API docs page, which gets the same headers.
 *
 * The headers do not depend on the request, but @fastify/helmet rebuilds its helmet
 * middleware (options, CSP string) on every request: about 5% of the main thread under 64
 * single-stay clients. So they are taken once at start-up, from @fastify/helmet itself on a
 * throwaway instance (the same library, the same defaults), and set from a constant.
 *
 * Over plain HTTP the CSP leaves out `upgrade-insecure-requests`: a browser would fetch the
 * docs page's scripts over https from a host that serves none (a container at HOST=0.0.0.0).
 */
export const PLAIN_HTTP_HELMET: FastifyHelmetOptions = { contentSecurityPolicy: { directives: { 'upgrade-insecure-requests': null } } };

export async function helmetHeaders(options: FastifyHelmetOptions = {}): Promise<Record<string, string>> {
  const probe = Fastify({ logger: false });
  try {
    await probe.register(helmet, { ...options, global: true });
    probe.get('/', async () => '');
    const res = await probe.inject({ method: 'GET', url: '/' });
    const headers: Record<string, string> = {};
    // Only what helmet added: not the probe's own content-type, length, date or connection.
    const own = new Set(['content-type', 'content-length', 'date', 'connection', 'keep-alive']);
    for (const [name, value] of Object.entries(res.headers)) {
      if (!own.has(name) && typeof value === 'string') headers[name] = value;
    }
    return headers;
  } finally {
    await probe.close();
  }
}

async function helmetPlugin(app: FastifyInstance): Promise<void> {
  const secure = await helmetHeaders();
  const plain = await helmetHeaders(PLAIN_HTTP_HELMET);
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(request.protocol === 'https' ? secure : plain);
    done();
  });
}

export const securityHeaders = fp(helmetPlugin, { name: 'security-headers', fastify: '5.x' });
