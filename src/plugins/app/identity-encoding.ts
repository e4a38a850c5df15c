import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { ApiError } from '../../http/errors.js';

/**
 * Request bodies are read as sent: a `Content-Encoding` other than identity is refused with
 * 415 (RFC 9110 section 15.5.16) instead of being parsed as if it were plain JSON.
 */
async function identityEncodingPlugin(app: FastifyInstance): Promise<void> {
  app.addHook('onRequest', async (request) => {
    const encoding = request.headers['content-encoding'];
    if (encoding === undefined || encoding.trim().toLowerCase() === 'identity') return;
    throw new ApiError(
      415,
      'unsupported_content_encoding',
      'compressed request bodies are not accepted: send the body without Content-Encoding',
    );
  });
}

export const identityEncoding = fp(identityEncodingPlugin, { name: 'identity-encoding', fastify: '5.x' });
