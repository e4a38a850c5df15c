import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { loadConfig } from '../../src/config.js';
import { smartScopesOf } from '../../src/plugins/app/credentials.js';
import { recordToBundle } from '../fixtures/fhir/physionet-to-fhir.js';
import { buildTestApp, loadTinyManifest, makeModelRoot, ROOT } from '../helper.js';

/**
 * The EHR's SMART access token on this service's API (SMART_ISSUERS/SMART_AUDIENCE): what the
 * SMART app (/app/) sends with $predict and GET /v1/models.
 */

const API_ISSUER = 'https://auth.hospital.example';
const EHR_ISSUER = 'https://ehr.hospital.example/auth';
const EHR_FHIR = 'https://ehr.hospital.example/fhir';
const API_AUDIENCE = 'https://risk.hospital.example';
const CLIENT_ID = 'icu-mortality-app';

let key: CryptoKey;
let dir: string;

before(async () => {
  const pair = await generateKeyPair('ES256');
  key = pair.privateKey;
  dir = await mkdtemp(join(tmpdir(), 'smart-jwks-'));
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'ehr', alg: 'ES256', use: 'sig' };
  await writeFile(join(dir, 'jwks.json'), JSON.stringify({ keys: [jwk] }));
});
after(() => rm(dir, { recursive: true, force: true }));

const env = (): Record<string, string> => ({
  AUTH_DISABLED: 'false',
  JWT_JWKS_FILE: join(dir, 'jwks.json'),
  JWT_ISSUERS: API_ISSUER,
  JWT_AUDIENCE: API_AUDIENCE,
  SMART_ISSUERS: EHR_ISSUER,
  SMART_AUDIENCE: EHR_FHIR,
  SMART_CLIENT_ID: CLIENT_ID,
});

type ClientClaim = { client_id: string } | { azp: string } | Record<string, never>;

async function smartToken(
  scope: string,
  o: { iss?: string; aud?: string; client?: ClientClaim } = {},
): Promise<string> {
  return new SignJWT({ scope, ...(o.client ?? { client_id: CLIENT_ID }) })
    .setProtectedHeader({ alg: 'ES256', kid: 'ehr' })
    .setIssuer(o.iss ?? EHR_ISSUER)
    .setAudience(o.aud ?? EHR_FHIR)
    .setSubject('practitioner-1')
    .setIssuedAt()
    .setExpirationTime('5m')
    .setJti(randomUUID())
    .sign(key);
}

async function stayBundle(): Promise<string> {
  const record = await readFile(join(ROOT, 'test', 'fixtures', 'fhir', 'records', 'stay-c.txt'), 'utf8');
  const admission = new Date('2026-03-02T08:00:00Z');
  return JSON.stringify(
    recordToBundle(record, await loadTinyManifest(), {
      admission,
      predictionTime: new Date(admission.getTime() + 8 * 3_600_000),
    }),
  );
}

/** The three calls web/smart-app/page.ts makes: $predict, GET /v1/models, the model card it links. */
async function appCalls(t: TestContext, token: string) {
  // A serving version with a card (1.6.0's), as test/api/model-card.test.ts builds it.
  const root = await makeModelRoot(t, { '0.0.0-tiny': { copy: true } });
  await copyFile(
    join(ROOT, 'models', 'icu-mortality', '1.6.0', 'model-card.md'),
    join(root, 'icu-mortality', '0.0.0-tiny', 'model-card.md'),
  );
  const { app } = await buildTestApp(t, { modelRoot: root, env: { ...env(), MODEL_VERSION: '0.0.0-tiny' } });
  const authorization = `Bearer ${token}`;
  const predict = await app.inject({
    method: 'POST',
    url: '/fhir/RiskAssessment/$predict',
    headers: { authorization, 'content-type': 'application/fhir+json' },
    payload: await stayBundle(),
  });
  const models = await app.inject({ url: '/v1/models', headers: { authorization } });
  const card = await app.inject({ url: '/v1/models/0.0.0-tiny/card', headers: { authorization } });
  return { app, codes: { predict: predict.statusCode, models: models.statusCode, card: card.statusCode } };
}

async function call(t: TestContext, token: string) {
  const { app, codes } = await appCalls(t, token);
  const reload = await app.inject({
    method: 'POST',
    url: '/admin/models/reload',
    headers: { authorization: `Bearer ${token}` },
    payload: {},
  });
  return { predict: codes.predict, models: codes.models, reload: reload.statusCode };
}

describe('SMART access tokens of a configured EHR', () => {
  test('a token that reads the patient’s Observations may score them and read the model, nothing more', async (t) => {
    const token = await smartToken('launch patient/Patient.read patient/Encounter.read patient/Observation.read');
    assert.deepEqual(await call(t, token), { predict: 200, models: 200, reload: 403 });
  });

  test('the token opens the app’s calls and none of the routes that store, delete or monitor', async (t) => {
    const token = await smartToken('launch patient/Patient.read patient/Encounter.read patient/Observation.read');
    const { app, codes } = await appCalls(t, token);
    assert.deepEqual(codes, { predict: 200, models: 200, card: 200 });
    const authorization = `Bearer ${token}`;
    const refused = [
      { method: 'POST', url: '/v1/predict', payload: { patients: [{ id: 'p1', hours: [] }] } },
      { method: 'POST', url: '/v1/encounters/x/observations', payload: { observations: [] } },
      { method: 'DELETE', url: '/v1/encounters/x' },
      { method: 'POST', url: '/v1/outcomes', payload: { outcomes: [] } },
      { method: 'GET', url: '/v1/monitoring' },
      { method: 'POST', url: '/admin/models/reload', payload: {} },
    ] as const;
    for (const r of refused) {
      const res = await app.inject({ ...r, headers: { authorization } });
      assert.equal(res.statusCode, 403, `${r.method} ${r.url}: ${res.body}`);
    }
  });

  test('a token issued to another client, or saying to none, is 401; azp names the client too', async (t) => {
    const scope = 'launch patient/Observation.read';
    const other = await smartToken(scope, { client: { client_id: 'another-app' } });
    assert.deepEqual((await appCalls(t, other)).codes, { predict: 401, models: 401, card: 401 });
    const otherAzp = await smartToken(scope, { client: { azp: 'another-app' } });
    assert.deepEqual((await appCalls(t, otherAzp)).codes, { predict: 401, models: 401, card: 401 });
    const none = await smartToken(scope, { client: {} });
    assert.deepEqual((await appCalls(t, none)).codes, { predict: 401, models: 401, card: 401 });
    const azp = await smartToken(scope, { client: { azp: CLIENT_ID } });
    assert.deepEqual((await appCalls(t, azp)).codes, { predict: 200, models: 200, card: 200 });
    // The default SMART_CLIENT_ID is the one the app registers with unless told otherwise.
    const byDefault = await smartToken(scope, { client: { client_id: 'icu-mortality' } });
    const withoutClientId = env();
    delete withoutClientId.SMART_CLIENT_ID;
    const { app } = await buildTestApp(t, { env: withoutClientId });
    const res = await app.inject({ url: '/v1/models', headers: { authorization: `Bearer ${byDefault}` } });
    assert.equal(res.statusCode, 200);
  });

  test('a token without Observation read access is 403, whatever else it claims', async (t) => {
    const token = await smartToken('launch patient/Patient.read predict admin');
    assert.deepEqual(await call(t, token), { predict: 403, models: 403, reload: 403 });
  });

  test('a token for another audience (this API instead of the EHR’s FHIR server) is 401', async (t) => {
    const token = await smartToken('patient/Observation.read', { aud: API_AUDIENCE });
    assert.deepEqual(await call(t, token), { predict: 401, models: 401, reload: 401 });
  });

  test('a token of an EHR not in SMART_ISSUERS is 401', async (t) => {
    const token = await smartToken('patient/Observation.read', { iss: 'https://other-ehr.example/auth' });
    assert.deepEqual(await call(t, token), { predict: 401, models: 401, reload: 401 });
  });

  test('SMART v1 and v2 read scopes grant scoring; write-only, other resources and system scopes do not', () => {
    const grants = (scope: string): boolean => smartScopesOf({ scope }).has('smart-app');
    for (const s of [
      'patient/Observation.read',
      'patient/Observation.rs',
      'user/Observation.r',
      'patient/Observation.cruds',
      'patient/*.read',
      'patient/Observation.*',
      'patient/Observation.rs?category=vital-signs',
    ])
      assert.equal(grants(`launch ${s}`), true, s);
    for (const s of [
      'patient/Observation.write',
      'patient/Observation.c',
      'patient/Observation.s',
      'patient/Patient.read',
      'system/Observation.read',
      'patient/Observations.read',
      'predict',
    ])
      assert.equal(grants(`launch ${s}`), false, s);
    assert.deepEqual([...smartScopesOf({ scope: 'patient/Observation.rs' })], ['smart-app']);
  });

  test('SMART_ISSUERS needs SMART_AUDIENCE and a JWKS, and may not repeat a JWT_ISSUERS issuer', () => {
    const base = { JWT_JWKS_FILE: '/tmp/jwks.json' };
    assert.throws(() => loadConfig({ ...base, SMART_ISSUERS: EHR_ISSUER }), /SMART_AUDIENCE: required/);
    assert.throws(
      () => loadConfig({ SMART_ISSUERS: EHR_ISSUER, SMART_AUDIENCE: EHR_FHIR }),
      /SMART_ISSUERS\/SMART_AUDIENCE: set JWT_JWKS_URL or JWT_JWKS_FILE too/,
    );
    assert.throws(
      () =>
        loadConfig({
          ...base,
          JWT_ISSUERS: EHR_ISSUER,
          JWT_AUDIENCE: API_AUDIENCE,
          SMART_ISSUERS: EHR_ISSUER,
          SMART_AUDIENCE: EHR_FHIR,
        }),
      /SMART_ISSUERS: an issuer may not also be in JWT_ISSUERS/,
    );
    const ok = loadConfig({ ...base, SMART_ISSUERS: EHR_ISSUER, SMART_AUDIENCE: EHR_FHIR });
    assert.deepEqual(ok.auth.jwt?.smart.issuers, [EHR_ISSUER]);
  });
});
