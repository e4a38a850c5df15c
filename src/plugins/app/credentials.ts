import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  errors as joseErrors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import { z } from 'zod';
import {
  apiKeyEntrySchema,
  SCOPES,
  type ApiKeyEntry,
  type AuthConfig,
  type JwtConfig,
  type RouteFamily,
  type Scope,
} from './auth-config.js';

/**
 * Turns a presented credential into a principal, or a reason (for the server log only) why
 * not. All JOSE work is done by `jose`; the only crypto here is hashing API keys and a
 * constant-time comparison of the hashes.
 */

export interface Principal {
  kind: 'api-key' | 'jwt' | 'anonymous';
  /** Key name, or `iss|sub` of a token: what audit lines and rate limits are keyed by. Never a secret. */
  id: string;
  scopes: ReadonlySet<Scope>;
}

export type Authentication = { ok: true; principal: Principal } | { ok: false; reason: string };

export interface CredentialVerifier {
  /** `family`: the routes called, whose issuers and audiences a token must match. */
  verify(credential: string, family: RouteFamily): Promise<Authentication>;
  readonly configured: boolean;
}

/** A bounded set of seen `jti`s, each kept until its token expires; oldest evicted when full. */
export class JtiCache {
  readonly #seen = new Map<string, number>();
  constructor(readonly capacity: number) {}

  /** True the first time a (jti, issuer) pair is seen while unexpired; false on a replay. */
  accept(key: string, expiresAtMs: number, nowMs: number): boolean {
    const known = this.#seen.get(key);
    if (known !== undefined && known > nowMs) return false;
    this.#seen.delete(key);
    if (this.#seen.size >= this.capacity) {
      for (const [k, exp] of this.#seen) {
        if (exp <= nowMs) this.#seen.delete(k);
      }
      // Still full of live tokens: drop the oldest (insertion order); a replay of it within its
      // lifetime would then pass, which the capacity (default 100k) makes a deliberate trade-off.
      while (this.#seen.size >= this.capacity) {
        const oldest = this.#seen.keys().next().value as string;
        this.#seen.delete(oldest);
      }
    }
    this.#seen.set(key, expiresAtMs);
    return true;
  }

  get size(): number {
    return this.#seen.size;
  }
}

/** A claim as it may appear in an audit line: control and line-breaking characters escaped, at most 128 characters. */
export function printable(claim: string): string {
  const escaped = claim.replace(
    // eslint-disable-next-line no-control-regex -- control characters are what it escapes
    /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return escaped.length > 128 ? `${escaped.slice(0, 127)}\u2026` : escaped;
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/;

export function looksLikeJwt(credential: string): boolean {
  return JWT_SHAPE.test(credential);
}

export async function loadApiKeysFile(path: string): Promise<ApiKeyEntry[]> {
  const text = await readFile(path, 'utf8');
  const parsed = z.array(apiKeyEntrySchema).safeParse(JSON.parse(text));
  if (!parsed.success)
    throw new Error(
      `API_KEYS_FILE ${path}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  return parsed.data;
}

function scopesOf(payload: JWTPayload): Set<Scope> {
  const raw: unknown[] =
    typeof payload.scope === 'string' ? payload.scope.split(/\s+/) : Array.isArray(payload.scp) ? payload.scp : [];
  return new Set(raw.filter((s): s is Scope => typeof s === 'string' && (SCOPES as readonly string[]).includes(s)));
}

/**
 * A SMART access token that lets its bearer read this patient's Observations (SMART App Launch
 * v1 `.read` or v2 `.rs` syntax, patient or user level, or a wildcard) grants `smart-app` alone:
 * the stateless calls the app makes ($predict, the model and its card), never the routes that
 * store or delete (encounters, /v1/predict's records, outcomes) nor monitoring.
 */
const SMART_OBSERVATION_READ = /^(patient|user)\/(Observation|\*)\.(read|\*|c?r[uds]*)(\?.*)?$/;

export function smartScopesOf(payload: JWTPayload): Set<Scope> {
  const granted = typeof payload.scope === 'string' ? payload.scope.split(/\s+/) : [];
  return granted.some((s) => SMART_OBSERVATION_READ.test(s)) ? new Set(['smart-app']) : new Set();
}

/**
 * The client a SMART token was issued to: `client_id` (RFC 9068 section 2.2, required there) or
 * OpenID Connect's `azp`. The SMART audience is the EHR's FHIR base, shared by all its apps.
 */
function smartClientOf(payload: JWTPayload): string | undefined {
  if (typeof payload.client_id === 'string') return payload.client_id;
  return typeof payload.azp === 'string' ? payload.azp : undefined;
}

/** The unverified issuer of a token, only to choose which trust verifies it. */
function claimedIssuer(token: string): string | undefined {
  try {
    const iss = decodeJwt(token).iss;
    return typeof iss === 'string' ? iss : undefined;
  } catch {
    return undefined;
  }
}

function reasonOf(err: unknown): string {
  if (err instanceof joseErrors.JWTClaimValidationFailed || err instanceof joseErrors.JWTExpired)
    return `${err.code} (${err.claim}: ${err.reason})`;
  if (err instanceof joseErrors.JOSEError) return err.code;
  return err instanceof Error ? err.name : 'unknown error';
}

async function jwksFor(config: JwtConfig): Promise<JWTVerifyGetKey> {
  if (config.jwksFile !== undefined) {
    const jwks = JSON.parse(await readFile(config.jwksFile, 'utf8')) as JSONWebKeySet;
    if (!jwks || !Array.isArray(jwks.keys))
      throw new Error(`JWT_JWKS_FILE ${config.jwksFile}: not a JWK Set ({"keys":[...]})`);
    return createLocalJWKSet(jwks);
  }
  // jose caches the set, refetches on an unknown kid (at most once per cooldown) and times out.
  return createRemoteJWKSet(new URL(config.jwksUrl as string), {
    timeoutDuration: 5000,
    cooldownDuration: 30_000,
    cacheMaxAge: 600_000,
  });
}

export interface VerifierOptions {
  clock: () => Date;
}

/** Builds the verifier once at start-up (reads the key file and the JWKS file). */
export async function createCredentialVerifier(
  config: AuthConfig,
  options: VerifierOptions,
): Promise<CredentialVerifier> {
  const keys = [
    ...config.apiKeys,
    ...(config.apiKeysFile !== undefined ? await loadApiKeysFile(config.apiKeysFile) : []),
  ];
  const hashes = keys.map((k) => ({ entry: k, hash: Buffer.from(k.sha256, 'hex') }));
  const names = new Set<string>();
  for (const k of keys) {
    if (names.has(k.name)) throw new Error(`API key name "${k.name}" is configured twice`);
    names.add(k.name);
  }
  const jwt = config.jwt;
  const getKey = jwt ? await jwksFor(jwt) : undefined;
  const jtis = new JtiCache(jwt?.jtiCacheSize ?? 1);

  const verifyApiKey = (credential: string): Authentication => {
    const presented = createHash('sha256').update(credential, 'utf8').digest();
    let match: ApiKeyEntry | undefined;
    // Compare against every hash so the time taken does not depend on which one matched.
    for (const { entry, hash } of hashes) {
      if (timingSafeEqual(presented, hash) && match === undefined) match = entry;
    }
    if (!match) return { ok: false, reason: 'unknown API key' };
    return { ok: true, principal: { kind: 'api-key', id: `key:${match.name}`, scopes: new Set(match.scopes) } };
  };

  const verifyJwt = async (token: string, family: RouteFamily): Promise<Authentication> => {
    if (!jwt || !getKey) return { ok: false, reason: 'JWT presented but no JWKS is configured' };
    const issuer = family === 'api' ? claimedIssuer(token) : undefined;
    const smart = issuer !== undefined && jwt.smart.issuers.includes(issuer);
    const trust = smart ? jwt.smart : jwt[family];
    if (trust.issuers.length === 0) return { ok: false, reason: `no JWT issuer is trusted for the ${family} routes` };
    const now = options.clock();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, getKey, {
        issuer: trust.issuers,
        audience: trust.audience,
        algorithms: jwt.algorithms,
        clockTolerance: jwt.clockToleranceS,
        currentDate: now,
        maxTokenAge: trust.maxTokenAgeS,
        requiredClaims: ['exp', 'iat', 'iss', 'aud'],
      }));
    } catch (err) {
      return { ok: false, reason: reasonOf(err) };
    }
    const iss = payload.iss as string;
    let scopes: Set<Scope>;
    if (family === 'cds') {
      // CDS Hooks 2.0: the EHR signs a fresh token with a unique jti for every call; it grants cds alone.
      if (typeof payload.jti !== 'string' || payload.jti.length === 0)
        return { ok: false, reason: 'CDS Hooks token without jti' };
      if (
        !jtis.accept(
          `${iss}\u0000${payload.jti}`,
          (payload.exp as number) * 1000 + jwt.clockToleranceS * 1000,
          now.getTime(),
        )
      ) {
        return { ok: false, reason: 'replayed jti' };
      }
      scopes = new Set(['cds']);
    } else if (smart) {
      // No client claim is refused too: a token that does not say whose it is may be another app's.
      if (smartClientOf(payload) !== jwt.smart.clientId) return { ok: false, reason: 'SMART token of another client' };
      scopes = smartScopesOf(payload);
    } else {
      scopes = scopesOf(payload);
      scopes.delete('cds');
    }
    const who =
      typeof payload.sub === 'string' ? payload.sub : typeof payload.client_id === 'string' ? payload.client_id : '-';
    return { ok: true, principal: { kind: 'jwt', id: `jwt:${printable(iss)}|${printable(who)}`, scopes } };
  };

  return {
    configured: hashes.length > 0 || jwt !== undefined,
    async verify(credential: string, family: RouteFamily): Promise<Authentication> {
      if (looksLikeJwt(credential)) return verifyJwt(credential, family);
      return verifyApiKey(credential);
    },
  };
}
