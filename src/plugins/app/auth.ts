import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ApiError } from '../../http/errors.js';
import { SCOPES, type AuthConfig, type Scope } from './auth-config.js';
import { createCredentialVerifier, type Principal } from './credentials.js';

/**
 * Authentication (onRequest: identify the caller, so that rate limiting can key on it) and
 * authorisation (preParsing: 401 or 403 before the body is read) for every route by its
 * `config.scope`. Refusals never say why a credential failed; the log does, without the token.
 */

export type { Principal } from './credentials.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller; null when none (or on public routes). */
    principal: Principal | null;
    authFailure: string | null;
  }
}

export interface AuthPluginOptions {
  config: AuthConfig;
  clock?: () => Date;
}

const REALM = 'icu-mortality';
const ALL_SCOPES: ReadonlySet<Scope> = new Set(SCOPES);
const ANONYMOUS: Principal = { kind: 'anonymous', id: 'anonymous', scopes: ALL_SCOPES };

/** The credential of a request: `Authorization: Bearer <token or key>` or `X-API-Key: <key>`. */
export function credentialOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return m ? m[1] : undefined;
  }
  const key = request.headers['x-api-key'];
  return typeof key === 'string' && key.length > 0 ? key : undefined;
}

/**
 * Thrown from preParsing so that the route's own error handler answers: the API's error shape,
 * or an OperationOutcome under /fhir. The challenge header is set first and kept.
 */
function unauthorized(reply: FastifyReply, presented: boolean): ApiError {
  // RFC 6750 section 3: error="invalid_token" only when a credential was presented.
  reply.header(
    'www-authenticate',
    presented ? `Bearer realm="${REALM}", error="invalid_token"` : `Bearer realm="${REALM}"`,
  );
  return new ApiError(401, 'unauthorized', 'valid credentials are required');
}

function forbidden(reply: FastifyReply): ApiError {
  reply.header('www-authenticate', `Bearer realm="${REALM}", error="insufficient_scope"`);
  return new ApiError(403, 'forbidden', 'the credentials do not grant access to this route');
}

function isPublic(request: FastifyRequest): boolean {
  return request.routeOptions.config?.scope === 'public';
}

async function authPlugin(app: FastifyInstance, opts: AuthPluginOptions): Promise<void> {
  const { config } = opts;
  const clock = opts.clock ?? (() => new Date());
  app.decorateRequest('principal', null);
  app.decorateRequest('authFailure', null);

  if (config.disabled) {
    app.log.warn(
      { auth: 'disabled' },
      'AUTH_DISABLED=true: every route is open to anyone as an anonymous admin. Never run like this outside local development.',
    );
    app.addHook('onRequest', async (request) => {
      request.principal = ANONYMOUS;
    });
    return;
  }

  const verifier = await createCredentialVerifier(config, { clock });
  if (!verifier.configured) {
    app.log.warn(
      { auth: 'unconfigured' },
      'no API keys and no JWKS configured: every protected route answers 401 (set API_KEY_HASHES/API_KEYS_FILE or JWT_JWKS_*, or AUTH_DISABLED=true for local development)',
    );
  }

  app.addHook('onRequest', async (request) => {
    if (isPublic(request)) return;
    const credential = credentialOf(request);
    if (credential === undefined) {
      request.authFailure =
        request.headers.authorization === undefined ? 'no credential' : 'malformed Authorization header';
      return;
    }
    const result = await verifier.verify(credential, request.routeOptions.config?.scope === 'cds' ? 'cds' : 'api');
    if (result.ok) request.principal = result.principal;
    else request.authFailure = result.reason;
  });

  app.addHook('preParsing', async (request, reply) => {
    if (isPublic(request)) return;
    const principal = request.principal;
    if (principal === null) {
      request.log.info({ authFailure: request.authFailure ?? 'no credential' }, 'authentication failed');
      throw unauthorized(reply, request.authFailure !== 'no credential');
    }
    const { scope: required, smartApp } = request.routeOptions.config ?? {};
    if (required === undefined || principal.scopes.has('admin') || principal.scopes.has(required as Scope)) return;
    if (smartApp === true && principal.scopes.has('smart-app')) return;
    request.log.info({ principal: principal.id, requiredScope: required }, 'authorisation failed: scope missing');
    throw forbidden(reply);
  });
}

export const auth = fp(authPlugin, { name: 'auth', fastify: '5.x' });
