import { z } from 'zod';

/**
 * Environment variables of authentication, authorisation and rate limiting, validated once at
 * start-up (src/config.ts composes this shape into the service's one env schema).
 *
 * - API keys are configured as SHA-256 hashes only, never in clear:
 *   `API_KEY_HASHES="ehr-batch:<64 hex>:predict models:read,ops:<64 hex>:admin"` and/or
 *   `API_KEYS_FILE=/etc/icu-mortality/keys.json` holding `[{"name","sha256","scopes":[...]}]`.
 *   A client sends the key as `Authorization: Bearer <key>` or `X-API-Key: <key>`; keys must not
 *   contain '.', since a credential shaped like a compact JWS (a.b.c) is verified as a JWT.
 * - JWT bearer tokens (SMART Backend Services access tokens, CDS Hooks EHR tokens) are verified
 *   against `JWT_JWKS_URL` or a local `JWT_JWKS_FILE`, with issuer (`JWT_ISSUERS`), audience
 *   (`JWT_AUDIENCE`) and expiry checks, asymmetric algorithms only. Keys come only from the
 *   configured JWKS: a token's `jku`/`jwk`/`x5u` headers are never followed. For CDS Hooks, `aud` is
 *   the exact URL the EHR calls, so list both .../cds-services and .../cds-services/icu-mortality.
 * - CDS Hooks tokens carry no scope: issuers listed in `CDS_HOOKS_ISSUERS` get the `cds` scope
 *   (and are allowed as issuers) and each token's `jti` is accepted once.
 * - Nothing configured: every protected route answers 401 (fail closed). `AUTH_DISABLED=true`
 *   lets every request through as an anonymous admin, for local development only.
 */

export const SCOPES = ['predict', 'models:read', 'admin', 'cds'] as const;
export type Scope = (typeof SCOPES)[number];

/** Asymmetric JWS algorithms (RFC 7518, RFC 8037). `none` and the HMAC family can never be enabled. */
export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const list = z.string().transform((s) => s.split(',').map((p) => p.trim()).filter((p) => p.length > 0));

const scopeList = z
  .string()
  .transform((s) => s.split(/\s+/).filter((p) => p.length > 0))
  .pipe(z.array(z.enum(SCOPES)).min(1));

export const apiKeyEntrySchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'a key name is 1-64 letters, digits, ".", "_" or "-"'),
  sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, 'sha256 must be 64 hex digits (the SHA-256 of the key, never the key)').transform((h) => h.toLowerCase()),
  scopes: z.array(z.enum(SCOPES)).min(1),
});
export type ApiKeyEntry = z.infer<typeof apiKeyEntrySchema>;

const apiKeyHashes = z.string().transform((s, ctx) => {
  const entries: ApiKeyEntry[] = [];
  for (const [i, item] of s.split(',').map((p) => p.trim()).filter((p) => p.length > 0).entries()) {
    const [name, sha256, scopes, ...rest] = item.split(':');
    // Scopes may themselves contain ':' (models:read): re-join what follows the hash.
    const parsed = apiKeyEntrySchema.safeParse({ name, sha256, scopes: scopeList.safeParse([scopes, ...rest].join(':')).data ?? [] });
    if (!parsed.success) {
      ctx.addIssue({ code: 'custom', message: `entry ${i + 1}: expected name:sha256hex:scope1 scope2 (${parsed.error.issues[0]?.message ?? 'invalid'})` });
      continue;
    }
    entries.push(parsed.data);
  }
  return entries;
});

const algorithms = list.pipe(z.array(z.enum(ASYMMETRIC_ALGORITHMS, { message: `only asymmetric algorithms: ${ASYMMETRIC_ALGORITHMS.join(', ')}` })).min(1));

export const authEnvShape = {
  AUTH_DISABLED: bool.default(false),
  API_KEY_HASHES: apiKeyHashes.optional(),
  API_KEYS_FILE: z.string().min(1).optional(),
  JWT_JWKS_URL: z.url({ protocol: /^https?$/ }).optional(),
  JWT_JWKS_FILE: z.string().min(1).optional(),
  JWT_ISSUERS: list.optional(),
  JWT_AUDIENCE: list.optional(),
  JWT_ALGORITHMS: algorithms.default([...ASYMMETRIC_ALGORITHMS]),
  JWT_CLOCK_TOLERANCE_S: z.coerce.number().int().min(0).max(300).default(30),
  CDS_HOOKS_ISSUERS: list.optional(),
  JTI_CACHE_SIZE: z.coerce.number().int().min(1).max(10_000_000).default(100_000),
  /** Requests per credential (or per client IP before authentication) per window; 0 turns rate limiting off. */
  RATE_LIMIT_MAX: z.coerce.number().int().min(0).default(600),
  RATE_LIMIT_WINDOW_MS: z.coerce.number().int().min(1000).max(86_400_000).default(60_000),
};

export const authEnvSchema = z.object(authEnvShape);

export interface JwtConfig {
  jwksUrl?: string;
  jwksFile?: string;
  issuers: string[];
  audience: string[];
  algorithms: string[];
  clockToleranceS: number;
  cdsIssuers: string[];
  jtiCacheSize: number;
}

export interface AuthConfig {
  disabled: boolean;
  apiKeys: ApiKeyEntry[];
  apiKeysFile?: string;
  jwt?: JwtConfig;
  rateLimit: { max: number; windowMs: number };
}

/** Env -> AuthConfig; throws an Error naming the variables when the combination is incomplete. */
export function toAuthConfig(e: z.infer<typeof authEnvSchema>): AuthConfig {
  const problems: string[] = [];
  const wantsJwt = e.JWT_JWKS_URL !== undefined || e.JWT_JWKS_FILE !== undefined;
  if (e.JWT_JWKS_URL !== undefined && e.JWT_JWKS_FILE !== undefined) problems.push('JWT_JWKS_URL and JWT_JWKS_FILE: give one, not both');
  const issuers = [...new Set([...(e.JWT_ISSUERS ?? []), ...(e.CDS_HOOKS_ISSUERS ?? [])])];
  if (wantsJwt && issuers.length === 0) problems.push('JWT_ISSUERS (or CDS_HOOKS_ISSUERS): required with a JWKS, tokens of any issuer would be accepted');
  if (wantsJwt && (e.JWT_AUDIENCE ?? []).length === 0) problems.push('JWT_AUDIENCE: required with a JWKS (the URL(s) this service is called at)');
  if (!wantsJwt && (e.JWT_ISSUERS !== undefined || e.JWT_AUDIENCE !== undefined || e.CDS_HOOKS_ISSUERS !== undefined)) {
    problems.push('JWT_ISSUERS/JWT_AUDIENCE/CDS_HOOKS_ISSUERS: set JWT_JWKS_URL or JWT_JWKS_FILE too');
  }
  if (problems.length > 0) throw new Error(`invalid auth configuration:\n  ${problems.join('\n  ')}`);
  const config: AuthConfig = {
    disabled: e.AUTH_DISABLED,
    apiKeys: e.API_KEY_HASHES ?? [],
    rateLimit: { max: e.RATE_LIMIT_MAX, windowMs: e.RATE_LIMIT_WINDOW_MS },
  };
  if (e.API_KEYS_FILE !== undefined) config.apiKeysFile = e.API_KEYS_FILE;
  if (wantsJwt) {
    config.jwt = {
      issuers,
      audience: e.JWT_AUDIENCE ?? [],
      algorithms: e.JWT_ALGORITHMS,
      clockToleranceS: e.JWT_CLOCK_TOLERANCE_S,
      cdsIssuers: e.CDS_HOOKS_ISSUERS ?? [],
      jtiCacheSize: e.JTI_CACHE_SIZE,
    };
    if (e.JWT_JWKS_URL !== undefined) config.jwt.jwksUrl = e.JWT_JWKS_URL;
    if (e.JWT_JWKS_FILE !== undefined) config.jwt.jwksFile = e.JWT_JWKS_FILE;
  }
  return config;
}

/** The config when nothing is set: fail closed. Tests and the dev helper pass `{ ...closed, disabled: true }`. */
export const DEFAULT_AUTH_CONFIG: AuthConfig = { disabled: false, apiKeys: [], rateLimit: { max: 600, windowMs: 60_000 } };
