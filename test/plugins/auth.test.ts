import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type CryptoKey, type JWK } from 'jose';
import { buildTestApp } from '../helper.js';

const ISSUER = 'https://auth.hospital.example';
const EHR = 'https://ehr.hospital.example';
const AUDIENCE = 'https://risk.hospital.example';
const CDS_AUDIENCE = 'https://risk.hospital.example/cds-services';
const KEYS = {
  reader: 'reader-key-0123456789abcdef',
  scorer: 'scorer-key-0123456789abcdef',
  admin: 'admin-key-0123456789abcdef',
};
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

let signing: { privateKey: CryptoKey; publicJwk: JWK };
let other: { privateKey: CryptoKey };
let jwksDir: string;

before(async () => {
  const pair = await generateKeyPair('ES384');
  signing = {
    privateKey: pair.privateKey,
    publicJwk: { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES384', use: 'sig' },
  };
  other = { privateKey: (await generateKeyPair('ES384')).privateKey };
  jwksDir = await mkdtemp(join(tmpdir(), 'jwks-'));
  await writeFile(join(jwksDir, 'jwks.json'), JSON.stringify({ keys: [signing.publicJwk] }));
});

after(() => rm(jwksDir, { recursive: true, force: true }));

function authEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    AUTH_DISABLED: 'false',
    API_KEY_HASHES: `reader:${sha(KEYS.reader)}:models:read,scorer:${sha(KEYS.scorer)}:predict,ops:${sha(KEYS.admin)}:admin`,
    JWT_JWKS_FILE: join(jwksDir, 'jwks.json'),
    JWT_ISSUERS: ISSUER,
    JWT_AUDIENCE: AUDIENCE,
    CDS_HOOKS_ISSUERS: EHR,
    CDS_HOOKS_AUDIENCE: CDS_AUDIENCE,
    ...extra,
  };
}

async function app(t: TestContext, extra: Record<string, string> = {}) {
  return buildTestApp(t, { env: authEnv(extra) });
}

interface TokenOptions {
  iss?: string;
  aud?: string;
  scope?: string;
  expSeconds?: number;
  key?: CryptoKey;
  jti?: string | null;
  alg?: string;
  /** Seconds from now; null: no iat claim. */
  iat?: number | null;
  sub?: string;
}

async function token(o: TokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const claims: Record<string, unknown> = {};
  if (o.scope !== undefined) claims.scope = o.scope;
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: o.alg ?? 'ES384', kid: 'k1', typ: 'JWT' })
    .setIssuer(o.iss ?? ISSUER)
    .setAudience(o.aud ?? AUDIENCE)
    .setSubject(o.sub ?? 'client-42')
    .setExpirationTime(now + (o.expSeconds ?? 300));
  if (o.iat !== null) jwt.setIssuedAt(now + (o.iat ?? -10));
  if (o.jti !== null) jwt.setJti(o.jti ?? randomUUID());
  return jwt.sign(o.key ?? signing.privateKey);
}

const bearer = (credential: string) => ({ authorization: `Bearer ${credential}` });

const UNAUTHORIZED = { error: 'unauthorized', message: 'valid credentials are required', details: [] };

describe('authentication and authorisation', () => {
  test('health and metrics need no credentials', async (t) => {
    const { app: a } = await app(t);
    assert.equal((await a.inject({ method: 'GET', url: '/health/live' })).statusCode, 200);
    assert.equal((await a.inject({ method: 'GET', url: '/metrics' })).statusCode, 200);
  });

  test('a protected route without credentials answers 401 with a Bearer challenge and the shared error shape', async (t) => {
    const { app: a } = await app(t);
    const res = await a.inject({ method: 'GET', url: '/v1/models' });
    assert.equal(res.statusCode, 401);
    assert.equal(res.headers['www-authenticate'], 'Bearer realm="icu-mortality"');
    assert.deepEqual(res.json(), UNAUTHORIZED);
  });

  test('an unknown route without credentials is 401 too: routes are not revealed', async (t) => {
    const { app: a } = await app(t);
    assert.equal((await a.inject({ method: 'GET', url: '/v1/secret-admin-thing' })).statusCode, 401);
  });

  test('an API key with the route scope is accepted, as Bearer or X-API-Key', async (t) => {
    const { app: a } = await app(t);
    assert.equal((await a.inject({ method: 'GET', url: '/v1/models', headers: bearer(KEYS.reader) })).statusCode, 200);
    assert.equal(
      (await a.inject({ method: 'GET', url: '/v1/models', headers: { 'x-api-key': KEYS.reader } })).statusCode,
      200,
    );
  });

  test('an unknown API key is 401 with error="invalid_token"', async (t) => {
    const { app: a } = await app(t);
    const res = await a.inject({ method: 'GET', url: '/v1/models', headers: bearer('not-a-configured-key') });
    assert.equal(res.statusCode, 401);
    assert.equal(res.headers['www-authenticate'], 'Bearer realm="icu-mortality", error="invalid_token"');
    assert.deepEqual(res.json(), UNAUTHORIZED);
  });

  test('a valid key without the route scope is 403 insufficient_scope; admin may call anything', async (t) => {
    const { app: a } = await app(t);
    const res = await a.inject({ method: 'GET', url: '/v1/models', headers: bearer(KEYS.scorer) });
    assert.equal(res.statusCode, 403);
    assert.equal(res.headers['www-authenticate'], 'Bearer realm="icu-mortality", error="insufficient_scope"');
    assert.deepEqual(res.json(), {
      error: 'forbidden',
      message: 'the credentials do not grant access to this route',
      details: [],
    });
    assert.equal((await a.inject({ method: 'GET', url: '/v1/models', headers: bearer(KEYS.admin) })).statusCode, 200);
  });

  test('a JWT from the configured issuer and audience with the scope is accepted', async (t) => {
    const { app: a } = await app(t);
    const res = await a.inject({
      method: 'GET',
      url: '/v1/models',
      headers: bearer(await token({ scope: 'models:read' })),
    });
    assert.equal(res.statusCode, 200, res.body);
  });

  test('keys can come from a JWKS URL instead of a file', async (t) => {
    let fetched = 0;
    const server = createServer((_req, res) => {
      fetched++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [signing.publicJwk] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { app: a } = await buildTestApp(t, {
      env: {
        AUTH_DISABLED: 'false',
        JWT_JWKS_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`,
        JWT_ISSUERS: ISSUER,
        JWT_AUDIENCE: AUDIENCE,
      },
    });
    assert.equal(
      (await a.inject({ method: 'GET', url: '/v1/models', headers: bearer(await token({ scope: 'models:read' })) }))
        .statusCode,
      200,
    );
    assert.equal(
      (
        await a.inject({
          method: 'GET',
          url: '/v1/models',
          headers: bearer(await token({ scope: 'models:read', key: other.privateKey })),
        })
      ).statusCode,
      401,
    );
    assert.ok(fetched >= 1);
  });

  test('a JWT with a valid signature but without the scope is 403', async (t) => {
    const { app: a } = await app(t);
    const res = await a.inject({
      method: 'GET',
      url: '/v1/models',
      headers: bearer(await token({ scope: 'predict' })),
    });
    assert.equal(res.statusCode, 403);
  });

  test('expired, wrong audience, wrong issuer, bad signature, alg none and HMAC tokens all get the same 401', async (t) => {
    const { app: a, logs } = await app(t);
    const hmacKey = new TextEncoder().encode('a-shared-secret-that-is-long-enough-for-hs256');
    const now = Math.floor(Date.now() / 1000);
    const bad: Record<string, string> = {
      expired: await token({ scope: 'models:read', expSeconds: -3600 }),
      'wrong audience': await token({ scope: 'models:read', aud: 'https://someone-else.example' }),
      'wrong issuer': await token({ scope: 'models:read', iss: 'https://evil.example' }),
      'bad signature': await token({ scope: 'models:read', key: other.privateKey }),
      'alg none': new UnsecuredJWT({ scope: 'models:read' })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setIssuedAt(now)
        .setExpirationTime(now + 300)
        .encode(),
      HS256: await new SignJWT({ scope: 'models:read' })
        .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setExpirationTime(now + 300)
        .sign(hmacKey),
    };
    for (const [what, jwt] of Object.entries(bad)) {
      const res = await a.inject({ method: 'GET', url: '/v1/models', headers: bearer(jwt) });
      assert.equal(res.statusCode, 401, what);
      assert.deepEqual(res.json(), UNAUTHORIZED, what);
      assert.equal(res.headers['www-authenticate'], 'Bearer realm="icu-mortality", error="invalid_token"', what);
    }
    // The reason is logged server-side; the token never is.
    const text = logs.text();
    assert.match(text, /ERR_JWT_EXPIRED/);
    assert.match(text, /ERR_JWS_SIGNATURE_VERIFICATION_FAILED/);
    for (const jwt of Object.values(bad)) assert.ok(!text.includes(jwt.split('.')[1] as string), 'no token in logs');
    for (const key of Object.values(KEYS)) assert.ok(!text.includes(key), 'no API key in logs');
  });

  test('a CDS Hooks token from an allow-listed EHR carries no scope and gets cds; its jti is accepted once', async (t) => {
    const { app: a } = await app(t);
    const jwt = await token({ iss: EHR, aud: CDS_AUDIENCE });
    const first = await a.inject({ method: 'GET', url: '/cds-services', headers: bearer(jwt) });
    assert.equal(first.statusCode, 200, first.body);
    const replay = await a.inject({ method: 'GET', url: '/cds-services', headers: bearer(jwt) });
    assert.equal(replay.statusCode, 401);
    const noJti = await a.inject({
      method: 'GET',
      url: '/cds-services',
      headers: bearer(await token({ iss: EHR, aud: CDS_AUDIENCE, jti: null })),
    });
    assert.equal(noJti.statusCode, 401);
    // A CDS issuer is trusted on the CDS routes only.
    assert.equal(
      (
        await a.inject({
          method: 'GET',
          url: '/v1/models',
          headers: bearer(await token({ iss: EHR, aud: CDS_AUDIENCE })),
        })
      ).statusCode,
      401,
    );
  });

  test('a token from a non-CDS issuer cannot call CDS services, whatever scope it claims', async (t) => {
    const { app: a } = await app(t);
    assert.equal(
      (await a.inject({ method: 'GET', url: '/cds-services', headers: bearer(await token({ scope: 'predict' })) }))
        .statusCode,
      401,
    );
    assert.equal(
      (
        await a.inject({
          method: 'GET',
          url: '/cds-services',
          headers: bearer(await token({ scope: 'cds admin', aud: CDS_AUDIENCE })),
        })
      ).statusCode,
      401,
    );
  });

  test('a CDS issuer gets the cds scope alone: its token claiming admin cannot reload the model', async (t) => {
    // The EHR is also a trusted API issuer here: its CDS token still carries the CDS audience only.
    const { app: a } = await app(t, { JWT_ISSUERS: `${ISSUER},${EHR}` });
    const claimsAdmin = await token({ iss: EHR, aud: CDS_AUDIENCE, scope: 'admin predict models:read' });
    assert.equal(
      (await a.inject({ method: 'POST', url: '/admin/models/reload', headers: bearer(claimsAdmin), payload: {} }))
        .statusCode,
      401,
    );
    // On a CDS route the same kind of token works, with cds only: admin routes stay closed to it.
    const cdsOnly = await token({ iss: EHR, aud: CDS_AUDIENCE, scope: 'admin' });
    assert.equal((await a.inject({ method: 'GET', url: '/cds-services', headers: bearer(cdsOnly) })).statusCode, 200);
  });

  test('audiences are per route family: a token minted for the CDS URL is refused on the API', async (t) => {
    const { app: a } = await app(t);
    assert.equal(
      (
        await a.inject({
          method: 'GET',
          url: '/v1/models',
          headers: bearer(await token({ scope: 'models:read', aud: CDS_AUDIENCE })),
        })
      ).statusCode,
      401,
    );
    assert.equal(
      (
        await a.inject({
          method: 'GET',
          url: '/cds-services',
          headers: bearer(await token({ iss: EHR, aud: AUDIENCE })),
        })
      ).statusCode,
      401,
    );
  });

  test('tokens need iat: too old, issued in the future, or without iat they are refused', async (t) => {
    const { app: a, logs } = await app(t, { JWT_MAX_TOKEN_AGE_S: '600' });
    const models = async (jwt: string): Promise<number> =>
      (await a.inject({ method: 'GET', url: '/v1/models', headers: bearer(jwt) })).statusCode;
    assert.equal(await models(await token({ scope: 'models:read', iat: -590 })), 200);
    assert.equal(await models(await token({ scope: 'models:read', iat: -700, expSeconds: 3600 })), 401);
    assert.equal(await models(await token({ scope: 'models:read', iat: 120 })), 401);
    assert.equal(await models(await token({ scope: 'models:read', iat: null })), 401);
    assert.match(logs.text(), /ERR_JWT_EXPIRED \(iat: check_failed\)/);
    assert.match(logs.text(), /ERR_JWT_CLAIM_VALIDATION_FAILED \(iat: check_failed\)/);
    assert.match(logs.text(), /ERR_JWT_CLAIM_VALIDATION_FAILED \(iat: missing\)/);
    // CDS tokens: at most 5 minutes old by default.
    const cds = async (jwt: string): Promise<number> =>
      (await a.inject({ method: 'GET', url: '/cds-services', headers: bearer(jwt) })).statusCode;
    assert.equal(await cds(await token({ iss: EHR, aud: CDS_AUDIENCE, iat: -400 })), 401);
    assert.equal(await cds(await token({ iss: EHR, aud: CDS_AUDIENCE, iat: -200 })), 200);
  });

  test('control characters in a token subject are escaped in the audit principal', async (t) => {
    const { app: a, logs } = await app(t);
    const res = await a.inject({
      method: 'POST',
      url: '/v1/predict',
      headers: bearer(await token({ scope: 'predict', sub: 'evil\n{"audit":true,"principal":"key:ops"}\u0007' })),
      payload: { patients: [{ hours: [{ HR: 80 }] }] },
    });
    assert.equal(res.statusCode, 200, res.body);
    const audit = logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.audit === true);
    assert.equal(audit.length, 1);
    assert.equal(audit[0]?.principal, `jwt:${ISSUER}|evil\\u000a{"audit":true,"principal":"key:ops"}\\u0007`);
  });

  test('with nothing configured every protected route fails closed with 401', async (t) => {
    const { app: a, logs } = await buildTestApp(t, { env: { AUTH_DISABLED: 'false' } });
    assert.equal((await a.inject({ method: 'GET', url: '/v1/models' })).statusCode, 401);
    assert.equal((await a.inject({ method: 'GET', url: '/v1/models', headers: bearer('anything') })).statusCode, 401);
    assert.equal((await a.inject({ method: 'GET', url: '/health/live' })).statusCode, 200);
    assert.match(logs.text(), /every protected route answers 401/);
  });

  test('AUTH_DISABLED=true opens every route and says so loudly at start-up', async (t) => {
    const { app: a, logs } = await buildTestApp(t, { env: { AUTH_DISABLED: 'true' } });
    assert.equal((await a.inject({ method: 'GET', url: '/v1/models' })).statusCode, 200);
    const warning = logs.lines
      .map((l) => JSON.parse(l) as { level: number; msg: string })
      .find((l) => l.msg.includes('AUTH_DISABLED=true'));
    assert.ok(warning && warning.level === 40);
  });

  test('a scoring call refused for lack of credentials is audited as denied, without a principal', async (t) => {
    const { app: a, logs } = await app(t);
    const res = await a.inject({ method: 'POST', url: '/v1/predict', payload: { patients: [] } });
    assert.equal(res.statusCode, 401);
    const audit = logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.audit === true);
    assert.equal(audit.length, 1);
    assert.equal(audit[0]?.outcome, 'denied');
    assert.equal(audit[0]?.principal, null);
    assert.equal(audit[0]?.route, '/v1/predict');
  });

  test('a scoring call by an API key is audited with the key name, never the key', async (t) => {
    const { app: a, logs } = await app(t);
    const res = await a.inject({
      method: 'POST',
      url: '/v1/predict',
      headers: bearer(KEYS.scorer),
      payload: { patients: [{ hours: [{ HR: 80 }] }, { hours: [{ HR: 90 }] }] },
    });
    assert.equal(res.statusCode, 200, res.body);
    const audit = logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.audit === true);
    assert.equal(audit.length, 1);
    assert.equal(audit[0]?.principal, 'key:scorer');
    assert.equal(audit[0]?.outcome, 'success');
    assert.ok(!logs.text().includes(KEYS.scorer));
  });
});

describe('rate limiting and security headers', () => {
  test('each credential has its own budget; over it the answer is 429 with Retry-After in the shared error shape', async (t) => {
    const { app: a } = await app(t, { RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW_MS: '60000' });
    for (let i = 0; i < 2; i++)
      assert.equal(
        (await a.inject({ method: 'GET', url: '/v1/models', headers: bearer(KEYS.reader) })).statusCode,
        200,
      );
    const limited = await a.inject({ method: 'GET', url: '/v1/models', headers: bearer(KEYS.reader) });
    assert.equal(limited.statusCode, 429);
    assert.ok(Number(limited.headers['retry-after']) >= 1);
    const body = limited.json() as { error: string; details: unknown[] };
    assert.equal(body.error, 'rate_limited');
    assert.deepEqual(body.details, []);
    // Another credential from the same address is not affected.
    assert.equal((await a.inject({ method: 'GET', url: '/v1/models', headers: bearer(KEYS.admin) })).statusCode, 200);
  });

  test('health, readiness and metrics are never rate limited, even after a burst of bad keys from the same address', async (t) => {
    const { app: a } = await app(t, { RATE_LIMIT_MAX: '20' });
    for (let i = 0; i < 25; i++) await a.inject({ method: 'GET', url: '/v1/models', headers: bearer(`guess-${i}`) });
    assert.equal((await a.inject({ method: 'GET', url: '/v1/models', headers: bearer('guess-x') })).statusCode, 429);
    for (const url of ['/health/live', '/health/ready', '/metrics']) {
      for (let i = 0; i < 3; i++) assert.equal((await a.inject({ method: 'GET', url })).statusCode, 200, url);
    }
  });

  test('requests without valid credentials are limited per client address', async (t) => {
    const { app: a } = await app(t, { RATE_LIMIT_MAX: '2' });
    const codes = [];
    for (let i = 0; i < 3; i++)
      codes.push((await a.inject({ method: 'GET', url: '/v1/models', headers: bearer(`guess-${i}`) })).statusCode);
    assert.deepEqual(codes, [401, 401, 429]);
  });

  test('responses carry the security headers of @fastify/helmet', async (t) => {
    const { app: a } = await app(t);
    const res = await a.inject({ method: 'GET', url: '/health/live' });
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.match(String(res.headers['strict-transport-security']), /max-age=/);
    assert.ok(res.headers['content-security-policy']);
    assert.equal(res.headers['x-powered-by'], undefined);
  });
});
