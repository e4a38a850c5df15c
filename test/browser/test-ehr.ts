import { createHash, randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import cors from '@fastify/cors';
import Fastify, { type FastifyInstance } from 'fastify';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import type { Manifest } from '../../src/model/manifest.js';
import { recordToBundle, type Json } from '../fixtures/fhir/physionet-to-fhir.js';

/**
 * A loopback test EHR for the SMART app's browser test: a FHIR R4 server holding stays converted
 * from the PhysioNet-format fixture records (test/fixtures/fhir/records, synthetic), and a SMART
 * authorization server (EHR launch, authorization code with PKCE S256) that signs its access
 * tokens as JWTs with a key whose JWKS the service is configured with. A test double: its FHIR
 * reads take any bearer token (the service, not this EHR, is under test).
 */

export interface Stay {
  patient: Json;
  encounter: Json;
  observations: Json[];
}

export interface TestEhr {
  app: FastifyInstance;
  origin: string;
  fhirBase: string;
  issuer: string;
  clientId: string;
  /** Where the public JWKS was written (JWT_JWKS_FILE of the service). */
  jwksFile: string;
  stays: Map<string, Stay>;
  /** A launch id for an EHR launch of this patient (and its encounter). */
  launch(patientId: string): string;
  /** Sign the next access tokens with a key the service does not know. */
  signWithUnknownKey(unknown: boolean): void;
  /** Access tokens issued so far (the test checks none reaches the service's log). */
  issued: string[];
  /** The scopes the app asked for at the last authorization. */
  lastScope: string | undefined;
  /** A JWT of this EHR for a CDS Hooks call. */
  cdsToken(audience: string): Promise<string>;
  /** The stay as a FHIR Bundle, with the fullUrls this server gives. */
  bundle(patientId: string): Json;
  close(): Promise<void>;
}

/** A stay of a record under new ids: Patient/<id>, Encounter/<id>-enc, Observation/<id>-<n>. */
function stayOf(record: string, id: string, manifest: Manifest, admission: Date): Stay {
  const bundle = recordToBundle(record, manifest, {
    admission,
    predictionTime: new Date(admission.getTime() + 48 * 3_600_000),
  });
  const resources = (bundle.entry as Array<{ resource: Json }>).map((e) => e.resource);
  const subject = { reference: `Patient/${id}` };
  const patient = { ...(resources.find((r) => r.resourceType === 'Patient') as Json), id };
  const encounter = { ...(resources.find((r) => r.resourceType === 'Encounter') as Json), id: `${id}-enc`, subject };
  const observations = resources
    .filter((r) => r.resourceType === 'Observation')
    .map((o) => ({ ...o, id: `${id}-${String(o.id)}`, subject }));
  return { patient, encounter, observations };
}

const base64url = (b: Buffer): string => b.toString('base64url');

export async function startTestEhr(options: {
  manifest: Manifest;
  records: Record<string, string>;
  jwksFile: string;
  clientId: string;
}): Promise<TestEhr> {
  const good = await generateKeyPair('ES256');
  const unknown = await generateKeyPair('ES256');
  const publicJwk: JWK = { ...(await exportJWK(good.publicKey)), kid: 'test-ehr-1', alg: 'ES256', use: 'sig' };
  await writeFile(options.jwksFile, JSON.stringify({ keys: [publicJwk] }));

  const admission = new Date('2026-03-02T08:00:00Z');
  const stays = new Map<string, Stay>();
  for (const [id, record] of Object.entries(options.records))
    stays.set(id, stayOf(record, id, options.manifest, admission));

  const launches = new Map<string, string>();
  const codes = new Map<
    string,
    { challenge: string; redirectUri: string; patient: string | undefined; scope: string; used: boolean }
  >();
  let signingKey: CryptoKey = good.privateKey;
  const issued: string[] = [];

  const app = Fastify({ logger: false });
  await app.register(cors, { origin: true });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) =>
    done(null, Object.fromEntries(new URLSearchParams(body as string))),
  );
  // Known once listening: the routes below read them per request.
  let origin = '';
  let fhirBase = '';
  let issuer = '';

  const fhir = 'application/fhir+json';
  const searchset = (resources: Json[], self: string, next?: string): Json => ({
    resourceType: 'Bundle',
    type: 'searchset',
    total: resources.length,
    link: [{ relation: 'self', url: self }, ...(next ? [{ relation: 'next', url: next }] : [])],
    entry: resources.map((r) => ({ fullUrl: `${fhirBase}/${String(r.resourceType)}/${String(r.id)}`, resource: r })),
  });
  const outcome = (code: string, text: string): Json => ({
    resourceType: 'OperationOutcome',
    issue: [{ severity: 'error', code, diagnostics: text }],
  });

  app.get('/fhir/.well-known/smart-configuration', async () => ({
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    code_challenge_methods_supported: ['S256'],
    grant_types_supported: ['authorization_code'],
    token_endpoint_auth_methods_supported: ['none'],
    scopes_supported: ['launch', 'launch/patient', 'patient/*.read', 'patient/*.rs'],
    response_types_supported: ['code'],
    capabilities: ['launch-ehr', 'launch-standalone', 'client-public', 'context-ehr-patient', 'permission-v1'],
  }));
  app.get('/fhir/metadata', async (_req, reply) =>
    reply
      .type(fhir)
      .send({ resourceType: 'CapabilityStatement', status: 'active', kind: 'instance', fhirVersion: '4.0.1' }),
  );

  app.get('/auth/authorize', async (request, reply) => {
    const q = request.query as Record<string, string | undefined>;
    const problems = [
      q.response_type !== 'code' && 'response_type must be code',
      q.client_id !== options.clientId && 'unknown client_id',
      q.aud !== fhirBase && 'aud must be this FHIR server',
      q.code_challenge_method !== 'S256' && 'PKCE S256 is required',
      !q.code_challenge && 'code_challenge missing',
      !q.redirect_uri && 'redirect_uri missing',
      q.launch !== undefined && !launches.has(q.launch) && 'unknown launch',
    ].filter((p): p is string => typeof p === 'string');
    if (problems.length > 0) return reply.code(400).send({ error: 'invalid_request', problems });
    const code = randomUUID();
    codes.set(code, {
      challenge: q.code_challenge as string,
      redirectUri: q.redirect_uri as string,
      patient: q.launch === undefined ? [...stays.keys()][0] : launches.get(q.launch),
      scope: q.scope ?? '',
      used: false,
    });
    ehr.lastScope = q.scope;
    const target = new URL(q.redirect_uri as string);
    target.searchParams.set('code', code);
    if (q.state !== undefined) target.searchParams.set('state', q.state);
    return reply.redirect(target.toString());
  });

  app.post('/auth/token', async (request, reply) => {
    const body = request.body as Record<string, string | undefined>;
    const grant = body.code === undefined ? undefined : codes.get(body.code);
    const verifier = body.code_verifier ?? '';
    const valid =
      body.grant_type === 'authorization_code' &&
      grant !== undefined &&
      !grant.used &&
      body.redirect_uri === grant.redirectUri &&
      base64url(createHash('sha256').update(verifier).digest()) === grant.challenge;
    if (!valid || !grant) return reply.code(400).send({ error: 'invalid_grant' });
    grant.used = true;
    const granted = grant.scope
      .split(' ')
      .filter((s) => s.startsWith('patient/') || s === 'launch' || s === 'launch/patient')
      .join(' ');
    const token = await new SignJWT({ scope: granted, client_id: options.clientId, patient: grant.patient })
      .setProtectedHeader({ alg: 'ES256', kid: 'test-ehr-1' })
      .setIssuer(issuer)
      .setAudience(fhirBase)
      .setSubject('practitioner-1')
      .setIssuedAt()
      .setExpirationTime('10m')
      .setJti(randomUUID())
      .sign(signingKey);
    issued.push(token);
    return {
      access_token: token,
      token_type: 'Bearer',
      expires_in: 600,
      scope: granted,
      patient: grant.patient,
      encounter: grant.patient === undefined ? undefined : stays.get(grant.patient)?.encounter.id,
    };
  });

  app.get('/fhir/Patient/:id', async (request, reply) => {
    const stay = stays.get((request.params as { id: string }).id);
    if (!stay) return reply.code(404).type(fhir).send(outcome('not-found', 'no such Patient'));
    return reply.type(fhir).send(stay.patient);
  });
  app.get('/fhir/Encounter/:id', async (request, reply) => {
    const id = (request.params as { id: string }).id;
    const stay = [...stays.values()].find((s) => s.encounter.id === id);
    if (!stay) return reply.code(404).type(fhir).send(outcome('not-found', 'no such Encounter'));
    return reply.type(fhir).send(stay.encounter);
  });
  app.get('/fhir/Encounter', async (request, reply) => {
    const q = request.query as Record<string, string | undefined>;
    const stay = stays.get((q.patient ?? '').replace(/^Patient\//, ''));
    return reply.type(fhir).send(searchset(stay ? [stay.encounter] : [], request.url));
  });
  app.get('/fhir/Observation', async (request, reply) => {
    const q = request.query as Record<string, string | undefined>;
    const stay = stays.get((q.patient ?? '').replace(/^Patient\//, ''));
    const all = stay?.observations ?? [];
    const count = Math.min(500, Math.max(1, Number(q._count ?? 100)));
    const offset = Math.max(0, Number(q._offset ?? 0));
    const page = all.slice(offset, offset + count);
    const next =
      offset + count < all.length
        ? `${fhirBase}/Observation?patient=${encodeURIComponent(q.patient ?? '')}&_count=${count}&_offset=${offset + count}`
        : undefined;
    return reply.type(fhir).send(searchset(page, `${origin}${request.url}`, next));
  });

  await app.listen({ host: '127.0.0.1', port: 0 });
  origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  fhirBase = `${origin}/fhir`;
  issuer = `${origin}/auth`;

  const ehr: TestEhr = {
    app,
    origin,
    fhirBase,
    issuer,
    clientId: options.clientId,
    jwksFile: options.jwksFile,
    stays,
    issued,
    lastScope: undefined,
    launch(patientId) {
      const id = randomUUID();
      launches.set(id, patientId);
      return id;
    },
    signWithUnknownKey(unknownKey) {
      signingKey = unknownKey ? unknown.privateKey : good.privateKey;
    },
    async cdsToken(audience) {
      return new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: 'test-ehr-1' })
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject(options.clientId)
        .setIssuedAt()
        .setExpirationTime('5m')
        .setJti(randomUUID())
        .sign(good.privateKey);
    },
    bundle(patientId) {
      const stay = stays.get(patientId) as Stay;
      return {
        resourceType: 'Bundle',
        type: 'collection',
        entry: [stay.patient, stay.encounter, ...stay.observations].map((r) => ({
          fullUrl: `${fhirBase}/${String(r.resourceType)}/${String(r.id)}`,
          resource: r,
        })),
      };
    },
    close: () => app.close(),
  };
  return ehr;
}
