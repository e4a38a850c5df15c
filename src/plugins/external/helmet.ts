import helmet, { type FastifyHelmetOptions } from '@fastify/helmet';
import Fastify, { type FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/**
 * @fastify/helmet's headers, taken once at start-up from helmet itself on a throwaway instance:
 * the plugin rebuilt them on every request. Over plain HTTP the CSP leaves out
 * `upgrade-insecure-requests`, or /docs would fetch its scripts over https from a host serving none.
 */
export const PLAIN_HTTP_HELMET: FastifyHelmetOptions = {
  contentSecurityPolicy: { directives: { 'upgrade-insecure-requests': null } },
};

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
