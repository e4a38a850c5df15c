import { z } from 'zod';

/**
 * Environment variables of authentication and rate limiting (README, "Security"): API keys as
 * SHA-256 hashes only, and keys never contain '.' (a.b.c is verified as a JWT); JWT trust per
 * route family; nothing configured fails closed.
 */

/** The scopes an API key or a JWT_ISSUERS token may carry. */
export const SCOPES = ['predict', 'models:read', 'outcomes:write', 'admin', 'cds'] as const;
/**
 * `smart-app`: granted only to a SMART_ISSUERS access token (credentials.ts), never configurable;
 * it opens only the routes the SMART app calls (routes marked `smartApp`, src/api/scope.ts).
 */
export type Scope = (typeof SCOPES)[number] | 'smart-app';

/** Asymmetric JWS algorithms (RFC 7518, RFC 8037). `none` and the HMAC family can never be enabled. */
export const ASYMMETRIC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
] as const;

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const list = z.string().transform((s) =>
  s
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0),
);

const scopeList = z
  .string()
  .transform((s) => s.split(/\s+/).filter((p) => p.length > 0))
  .pipe(z.array(z.enum(SCOPES)).min(1));

export const apiKeyEntrySchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'a key name is 1-64 letters, digits, ".", "_" or "-"'),
  sha256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, 'sha256 must be 64 hex digits (the SHA-256 of the key, never the key)')
    .transform((h) => h.toLowerCase()),
  scopes: z.array(z.enum(SCOPES)).min(1),
});
export type ApiKeyEntry = z.infer<typeof apiKeyEntrySchema>;

const apiKeyHashes = z.string().transform((s, ctx) => {
  const entries: ApiKeyEntry[] = [];
  for (const [i, item] of s
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0)
    .entries()) {
    const [name, sha256, scopes, ...rest] = item.split(':');
    // Scopes may themselves contain ':' (models:read): re-join what follows the hash.
    const parsed = apiKeyEntrySchema.safeParse({
      name,
      sha256,
      scopes: scopeList.safeParse([scopes, ...rest].join(':')).data ?? [],
    });
    if (!parsed.success) {
      ctx.addIssue({
        code: 'custom',
        message: `entry ${i + 1}: expected name:sha256hex:scope1 scope2 (${parsed.error.issues[0]?.message ?? 'invalid'})`,
      });
      continue;
    }
    entries.push(parsed.data);
  }
  return entries;
});

const algorithms = list.pipe(
  z
    .array(
      z.enum(ASYMMETRIC_ALGORITHMS, { message: `only asymmetric algorithms: ${ASYMMETRIC_ALGORITHMS.join(', ')}` }),
    )
    .min(1),
);

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
  JWT_MAX_TOKEN_AGE_S: z.coerce.number().int().min(1).max(86_400).default(3600),
  CDS_HOOKS_ISSUERS: list.optional(),
  CDS_HOOKS_AUDIENCE: list.optional(),
  CDS_HOOKS_MAX_TOKEN_AGE_S: z.coerce.number().int().min(1).max(3600).default(300),
  /** EHR authorization servers whose SMART access tokens the API accepts (README, "SMART on FHIR app"). */
  SMART_ISSUERS: list.optional(),
  /** The `aud` of those tokens: the EHR's FHIR base URL(s) the app was launched against. */
  SMART_AUDIENCE: list.optional(),
  JTI_CACHE_SIZE: z.coerce.number().int().min(1).max(10_000_000).default(100_000),
  /** Requests per credential (or per client IP before authentication) per window; 0 turns rate limiting off. */
  RATE_LIMIT_MAX: z.coerce.number().int().min(0).default(600),
  RATE_LIMIT_WINDOW_MS: z.coerce.number().int().min(1000).max(86_400_000).default(60_000),
};

export const authEnvSchema = z.object(authEnvShape);

/** Who may call one family of routes with a JWT. An empty `issuers` list: no token is accepted there. */
export interface TokenTrust {
  issuers: string[];
  audience: string[];
  maxTokenAgeS: number;
}

export type RouteFamily = 'api' | 'cds';

/** SMART access tokens must also have been issued to this service's app. */
export interface SmartTrust extends TokenTrust {
  /** SMART_CLIENT_ID: the token's `client_id` (RFC 9068) or `azp` (OpenID Connect) must equal it. */
  clientId: string;
}

export interface JwtConfig {
  jwksUrl?: string;
  jwksFile?: string;
  algorithms: string[];
  clockToleranceS: number;
  api: TokenTrust;
  cds: TokenTrust;
  /** SMART access tokens of an EHR, accepted on the API routes (scopes mapped in credentials.ts). */
  smart: SmartTrust;
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
export function toAuthConfig(e: z.infer<typeof authEnvSchema>, smartClientId: string): AuthConfig {
  const problems: string[] = [];
  const wantsJwt = e.JWT_JWKS_URL !== undefined || e.JWT_JWKS_FILE !== undefined;
  if (e.JWT_JWKS_URL !== undefined && e.JWT_JWKS_FILE !== undefined)
    problems.push('JWT_JWKS_URL and JWT_JWKS_FILE: give one, not both');
  const api = { issuers: e.JWT_ISSUERS ?? [], audience: e.JWT_AUDIENCE ?? [] };
  const cds = { issuers: e.CDS_HOOKS_ISSUERS ?? [], audience: e.CDS_HOOKS_AUDIENCE ?? [] };
  const smart = { issuers: e.SMART_ISSUERS ?? [], audience: e.SMART_AUDIENCE ?? [] };
  if (wantsJwt && api.issuers.length === 0 && cds.issuers.length === 0 && smart.issuers.length === 0)
    problems.push(
      'JWT_ISSUERS, CDS_HOOKS_ISSUERS or SMART_ISSUERS: required with a JWKS, tokens of any issuer would be accepted',
    );
  if (wantsJwt && api.issuers.length > 0 && api.audience.length === 0)
    problems.push("JWT_AUDIENCE: required with JWT_ISSUERS (the URL(s) this service's API is called at)");
  if (wantsJwt && cds.issuers.length > 0 && cds.audience.length === 0)
    problems.push('CDS_HOOKS_AUDIENCE: required with CDS_HOOKS_ISSUERS (the CDS service URLs the EHR calls)');
  if (wantsJwt && smart.issuers.length > 0 && smart.audience.length === 0)
    problems.push("SMART_AUDIENCE: required with SMART_ISSUERS (the EHR's FHIR base URL its access tokens name)");
  if (smart.issuers.some((i) => api.issuers.includes(i)))
    problems.push('SMART_ISSUERS: an issuer may not also be in JWT_ISSUERS (its tokens would be read two ways)');
  if (
    !wantsJwt &&
    [e.JWT_ISSUERS, e.JWT_AUDIENCE, e.CDS_HOOKS_ISSUERS, e.CDS_HOOKS_AUDIENCE, e.SMART_ISSUERS, e.SMART_AUDIENCE].some(
      (v) => v !== undefined,
    )
  ) {
    problems.push(
      'JWT_ISSUERS/JWT_AUDIENCE/CDS_HOOKS_ISSUERS/CDS_HOOKS_AUDIENCE/SMART_ISSUERS/SMART_AUDIENCE: set JWT_JWKS_URL or JWT_JWKS_FILE too',
    );
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
      algorithms: e.JWT_ALGORITHMS,
      clockToleranceS: e.JWT_CLOCK_TOLERANCE_S,
      api: { ...api, maxTokenAgeS: e.JWT_MAX_TOKEN_AGE_S },
      cds: { ...cds, maxTokenAgeS: e.CDS_HOOKS_MAX_TOKEN_AGE_S },
      smart: { ...smart, maxTokenAgeS: e.JWT_MAX_TOKEN_AGE_S, clientId: smartClientId },
      jtiCacheSize: e.JTI_CACHE_SIZE,
    };
    if (e.JWT_JWKS_URL !== undefined) config.jwt.jwksUrl = e.JWT_JWKS_URL;
    if (e.JWT_JWKS_FILE !== undefined) config.jwt.jwksFile = e.JWT_JWKS_FILE;
  }
  return config;
}
