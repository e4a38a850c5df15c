import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { physionetRecordToPatient } from '../../src/clinical/physionet.js';
import { buildTestApp, loadTinyManifest, ROOT } from '../helper.js';
import { recordToBundle, type Json } from '../fixtures/fhir/physionet-to-fhir.js';

const ADMISSION = new Date('2026-03-13T06:30:00Z');
const NOW = new Date('2026-03-15T06:30:00Z');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const CARD_URL = 'https://models.hospital.example/cards/{name}/{version}';

interface StayResources {
  patient: Json;
  encounter: Json;
  vitals: Json[];
  labs: Json[];
  expected: number;
}

/** stay-b as the resources an EHR holds, and its /v1/predict probability. */
async function stay(app: Awaited<ReturnType<typeof buildTestApp>>['app']): Promise<StayResources> {
  const manifest = await loadTinyManifest();
  const text = await readFile(join(ROOT, 'test', 'fixtures', 'fhir', 'records', 'stay-b.txt'), 'utf8');
  const v1 = await app.inject({
    method: 'POST',
    url: '/v1/predict',
    payload: { patients: [physionetRecordToPatient(text, manifest)] },
  });
  const expected = (v1.json() as { results: Array<{ probability: number }> }).results[0]?.probability as number;
  const resources = (
    recordToBundle(text, manifest, { admission: ADMISSION, predictionTime: NOW }) as {
      entry: Array<{ resource: Json }>;
    }
  ).entry.map((e) => e.resource);
  const category = (r: Json): string =>
    (r.category as Array<{ coding: Array<{ code: string }> }> | undefined)?.[0]?.coding[0]?.code ?? '';
  return {
    patient: resources.find((r) => r.resourceType === 'Patient') as Json,
    encounter: resources.find((r) => r.resourceType === 'Encounter') as Json,
    vitals: resources.filter((r) => r.resourceType === 'Observation' && category(r) === 'vital-signs'),
    labs: resources.filter((r) => r.resourceType === 'Observation' && category(r) === 'laboratory'),
    expected,
  };
}

const searchset = (resources: Json[]): Json => ({
  resourceType: 'Bundle',
  type: 'searchset',
  total: resources.length,
  entry: resources.map((resource) => ({
    fullUrl: `https://ehr.example.org/fhir/${String(resource.resourceType)}/${String(resource.id)}`,
    resource,
    search: { mode: 'match' },
  })),
});

function hookRequest(prefetch: Record<string, unknown> | undefined, extra: Json = {}): Json {
  return {
    hook: 'patient-view',
    hookInstance: 'd1577c69-dfbe-44ad-ba6d-3e05e953b2ea',
    context: { userId: 'Practitioner/123', patientId: 'p1' },
    ...(prefetch ? { prefetch } : {}),
    ...extra,
  };
}

async function appWith(t: TestContext, env: Record<string, string> = {}) {
  return buildTestApp(t, { env: { MODEL_CARD_URL: CARD_URL, ...env }, deps: { now: () => NOW } });
}

interface Card {
  uuid: string;
  summary: string;
  detail: string;
  indicator: string;
  source: { label: string; url?: string };
  links?: Array<{ label: string; url: string; type: string }>;
}

function percent(p: number): string {
  return p < 0.01 ? '<1%' : p > 0.99 ? '>99%' : `${Math.round(p * 100)}%`;
}

/** The card a patient-view call answers for stay-b, fully prefetched. */
async function issuedCard(app: Awaited<ReturnType<typeof buildTestApp>>['app']): Promise<Card> {
  const r = await stay(app);
  const res = await app.inject({
    method: 'POST',
    url: '/cds-services/icu-mortality',
    payload: hookRequest({ patient: r.patient, vitals: searchset(r.vitals), labs: searchset(r.labs) }),
  });
  assert.equal(res.statusCode, 200, res.body);
  return (res.json() as { cards: Card[] }).cards[0] as Card;
}

describe('CDS Hooks', () => {
  test('discovery lists the patient-view service with the fields the specification requires', async (t) => {
    const { app } = await appWith(t);
    const res = await app.inject({ method: 'GET', url: '/cds-services' });
    assert.equal(res.statusCode, 200);
    const { services } = res.json() as { services: Array<Record<string, unknown>> };
    assert.equal(services.length, 1);
    const s = services[0] as {
      hook: string;
      id: string;
      description: string;
      title: string;
      prefetch: Record<string, string>;
    };
    assert.equal(s.hook, 'patient-view');
    assert.equal(s.id, 'icu-mortality');
    assert.ok(s.description.length > 0 && s.title.length > 0);
    assert.equal(s.prefetch.patient, 'Patient/{{context.patientId}}');
    assert.match(s.prefetch.vitals as string, /^Observation\?patient=\{\{context\.patientId\}\}&category=vital-signs/);
  });

  test('patient-view with prefetch answers one card with the same probability as /v1/predict', async (t) => {
    const { app } = await appWith(t);
    const r = await stay(app);
    const res = await app.inject({
      method: 'POST',
      url: '/cds-services/icu-mortality',
      payload: hookRequest({
        patient: r.patient,
        encounter: r.encounter,
        vitals: searchset(r.vitals),
        labs: searchset(r.labs),
      }),
    });
    assert.equal(res.statusCode, 200, res.body);
    const { cards } = res.json() as { cards: Card[] };
    assert.equal(cards.length, 1);
    const card = cards[0] as Card;
    assert.match(card.uuid, UUID);
    assert.ok(card.summary.length < 140);
    assert.equal(card.summary.startsWith(`ICU mortality risk ${percent(r.expected)} (`), true, card.summary);
    const band = r.expected >= 0.4 ? 'critical' : r.expected >= 0.15 ? 'warning' : 'info';
    assert.equal(card.indicator, band);
    const manifest = await loadTinyManifest();
    assert.equal(card.source.label, `${manifest.name} ${manifest.version}`);
    assert.equal(card.source.url, `https://models.hospital.example/cards/${manifest.name}/${manifest.version}`);
    // CDS Hooks 2.0: a smart link's url is the app's launch URL (the EHR adds iss and launch);
    // inject's host is localhost:80.
    assert.deepEqual(
      card.links?.map((l) => [l.type, l.url]),
      [
        ['smart', 'http://localhost:80/app/launch'],
        ['absolute', card.source.url],
      ],
    );
    assert.match(card.detail, /Open the ICU mortality app \(link below\)/);
  });

  test('the SMART link is SMART_LAUNCH_URL when set, else the request origin on a loopback host only', async (t) => {
    const smartLink = async (app: Awaited<ReturnType<typeof buildTestApp>>['app'], host: string) => {
      const r = await stay(app);
      const res = await app.inject({
        method: 'POST',
        url: '/cds-services/icu-mortality',
        headers: { host },
        payload: hookRequest({ patient: r.patient, vitals: searchset(r.vitals), labs: searchset(r.labs) }),
      });
      assert.equal(res.statusCode, 200, res.body);
      return (res.json() as { cards: Card[] }).cards[0]?.links?.find((l) => l.type === 'smart')?.url;
    };
    const configured = await appWith(t, { SMART_LAUNCH_URL: 'https://risk.hospital.example/app/launch' });
    assert.equal(await smartLink(configured.app, 'evil.example'), 'https://risk.hospital.example/app/launch');
    const { app } = await appWith(t);
    // Host is the caller's to choose, and behind a proxy an internal name: no link rather than a wrong one.
    assert.equal(await smartLink(app, 'evil.example'), undefined);
    assert.equal(await smartLink(app, 'risk-svc.icu.svc.cluster.local:8080'), undefined);
    assert.equal(await smartLink(app, '127.0.0.1:8080'), 'http://127.0.0.1:8080/app/launch');
    assert.equal(await smartLink(app, '[::1]:8080'), 'http://[::1]:8080/app/launch');
  });

  test('the indicator follows the configured thresholds', async (t) => {
    const { app } = await appWith(t, { RISK_MODERATE_THRESHOLD: '0.000001', RISK_HIGH_THRESHOLD: '0.000002' });
    const r = await stay(app);
    const res = await app.inject({
      method: 'POST',
      url: '/cds-services/icu-mortality',
      payload: hookRequest({ patient: r.patient, vitals: searchset(r.vitals), labs: searchset(r.labs) }),
    });
    assert.equal((res.json() as { cards: Card[] }).cards[0]?.indicator, 'critical');
  });

  test('without prefetch and without a FHIR server the answer is 412 with the reason, not an error', async (t) => {
    const { app, logs } = await appWith(t);
    const res = await app.inject({
      method: 'POST',
      url: '/cds-services/icu-mortality',
      payload: hookRequest(undefined),
    });
    assert.equal(res.statusCode, 412);
    const body = res.json() as { error: string; message: string };
    assert.equal(body.error, 'precondition_failed');
    assert.match(body.message, /prefetch lacks patient, vitals, labs and no fhirServer/);
    assert.ok(!logs.lines.some((l) => (JSON.parse(l) as { level: number }).level >= 50), 'nothing logged as an error');
  });

  test('a FHIR server that is not allow-listed is never contacted', async (t) => {
    const { app } = await appWith(t);
    const res = await app.inject({
      method: 'POST',
      url: '/cds-services/icu-mortality',
      payload: hookRequest(undefined, {
        fhirServer: 'http://169.254.169.254/fhir',
        fhirAuthorization: {
          access_token: 'secret-token',
          token_type: 'Bearer',
          expires_in: 300,
          scope: 'patient/*.read',
          subject: 'cds',
        },
      }),
    });
    assert.equal(res.statusCode, 412);
    assert.match((res.json() as { message: string }).message, /allow-list/);
  });

  test('missing prefetch is fetched from an allow-listed FHIR server with the access token, following next links', async (t) => {
    const requests: Array<{ url: string; auth: string | undefined }> = [];
    // Filled once the app (which needs the server's address) exists; read by the server's handler.
    const served: { resources?: StayResources } = {};
    const server: Server = createServer((req: IncomingMessage, res) => {
      requests.push({ url: req.url ?? '', auth: req.headers.authorization });
      const url = new URL(req.url ?? '/', 'http://x');
      const r = served.resources as StayResources;
      const send = (body: unknown): void => {
        res.writeHead(200, { 'content-type': 'application/fhir+json' });
        res.end(JSON.stringify(body));
      };
      if (url.pathname === '/fhir/Patient/p1') return send(r.patient);
      if (url.pathname === '/fhir/Observation' && url.searchParams.get('category') === 'vital-signs') {
        const page = Number(url.searchParams.get('page') ?? '0');
        const half = Math.ceil(r.vitals.length / 2);
        const bundle = searchset(page === 0 ? r.vitals.slice(0, half) : r.vitals.slice(half)) as Json;
        if (page === 0)
          bundle.link = [
            {
              relation: 'next',
              url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir/Observation?patient=p1&category=vital-signs&page=1`,
            },
          ];
        return send(bundle);
      }
      if (url.pathname === '/fhir/Observation' && url.searchParams.get('category') === 'laboratory')
        return send(searchset(r.labs));
      if (url.pathname === '/fhir/Encounter/e1') return send(r.encounter);
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const { app, logs } = await appWith(t, { CDS_FHIR_SERVERS: origin });
    const resources = await stay(app);
    served.resources = resources;
    const res = await app.inject({
      method: 'POST',
      url: '/cds-services/icu-mortality',
      payload: hookRequest(
        {},
        {
          context: { patientId: 'p1', encounterId: 'e1' },
          fhirServer: `${origin}/fhir`,
          fhirAuthorization: {
            access_token: 'transient-access-token',
            token_type: 'Bearer',
            expires_in: 300,
            scope: 'patient/*.read',
            subject: 'cds',
          },
        },
      ),
    });
    assert.equal(res.statusCode, 200, res.body);
    const card = (res.json() as { cards: Card[] }).cards[0] as Card;
    assert.ok(card.summary.startsWith(`ICU mortality risk ${percent(resources.expected)} (`), card.summary);
    assert.ok(requests.every((r) => r.auth === 'Bearer transient-access-token'));
    assert.ok(
      requests.some((r) => r.url.includes('page=1')),
      'the next link was followed',
    );
    assert.ok(requests.some((r) => r.url === '/fhir/Encounter/e1'));
    assert.ok(!logs.text().includes('transient-access-token'), 'the access token is never logged');
  });

  test('a null prefetch key means no such data: scored without it, never fetched, never a 412', async (t) => {
    const { app } = await appWith(t);
    const r = await stay(app);
    // No labs (null) and no fhirServer: the card comes from the vitals alone.
    const noLabs = await app.inject({
      method: 'POST',
      url: '/cds-services/icu-mortality',
      payload: hookRequest({ patient: r.patient, vitals: searchset(r.vitals), labs: null }),
    });
    assert.equal(noLabs.statusCode, 200, noLabs.body);
    assert.equal((noLabs.json() as { cards: Card[] }).cards.length, 1);
    assert.doesNotMatch(
      (noLabs.json() as { cards: Card[] }).cards[0]?.detail ?? '',
      /Laboratory results were not available/,
    );
    // No vital signs at all: nothing to score, so no card, rather than 412 (which means "fetch failed").
    const noVitals = await app.inject({
      method: 'POST',
      url: '/cds-services/icu-mortality',
      payload: hookRequest({ patient: r.patient, vitals: null, labs: null }),
    });
    assert.equal(noVitals.statusCode, 200, noVitals.body);
    assert.deepEqual(noVitals.json(), { cards: [] });
    // Omitted (the EHR could not prefetch it) and not fetchable is still the 412.
    const omitted = await app.inject({
      method: 'POST',
      url: '/cds-services/icu-mortality',
      payload: hookRequest({ patient: r.patient }),
    });
    assert.equal(omitted.statusCode, 412);
  });

  test('silent mode scores and audits but shows no card', async (t) => {
    const { app, logs } = await appWith(t, { CDS_SILENT: 'true' });
    const r = await stay(app);
    const res = await app.inject({
      method: 'POST',
      url: '/cds-services/icu-mortality',
      payload: hookRequest({ patient: r.patient, vitals: searchset(r.vitals), labs: searchset(r.labs) }),
    });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { cards: [] });
    const audit = logs.lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.audit === true && l.route === '/cds-services/icu-mortality');
    assert.equal(audit.length, 1);
    assert.equal(audit[0]?.patientCount, 1);
    assert.match(String(audit[0]?.model), /@/);
  });

  test('data the model cannot use give no cards rather than an error', async (t) => {
    const { app } = await appWith(t);
    const patient = { resourceType: 'Patient', id: 'p1', birthDate: '1950-01-01' };
    const res = await app.inject({
      method: 'POST',
      url: '/cds-services/icu-mortality',
      payload: hookRequest({ patient, vitals: searchset([]), labs: searchset([]) }),
    });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { cards: [] });
  });

  test('another hook, or a prefetch for another patient, is a 400', async (t) => {
    const { app } = await appWith(t);
    const other = await app.inject({
      method: 'POST',
      url: '/cds-services/icu-mortality',
      payload: { ...hookRequest({}), hook: 'order-select' },
    });
    assert.equal(other.statusCode, 400);
    const r = await stay(app);
    const mismatch = await app.inject({
      method: 'POST',
      url: '/cds-services/icu-mortality',
      payload: hookRequest({ patient: { ...r.patient, id: 'p2' }, vitals: searchset(r.vitals) }),
    });
    assert.equal(mismatch.statusCode, 400);
    assert.match((mismatch.json() as { message: string }).message, /context.patientId/);
  });

  test('a request without context.patientId is a 400 naming the field', async (t) => {
    const { app } = await appWith(t);
    const res = await app.inject({
      method: 'POST',
      url: '/cds-services/icu-mortality',
      payload: { hook: 'patient-view', hookInstance: 'x', context: {} },
    });
    assert.equal(res.statusCode, 400);
    assert.ok((res.json() as { details: Array<{ path: string }> }).details.some((d) => d.path === 'context.patientId'));
  });

  test('feedback as the CDS Hooks 2.0 "Feedback" section writes it is taken; each departure is a 400 naming the field', async (t) => {
    const { app } = await appWith(t);
    const card = (await issuedCard(app)).uuid;
    const send = (feedback: unknown[]) =>
      app.inject({ method: 'POST', url: '/cds-services/icu-mortality/feedback', payload: { feedback } });
    const at = NOW.toISOString();
    // The specification's own examples: an accepted suggestion; an override with a reason and a comment.
    const ok = await send([
      {
        card,
        outcome: 'accepted',
        acceptedSuggestions: [{ id: 'e56e1945-20b3-4393-8503-a1a20fd73152' }],
        outcomeTimestamp: at,
      },
      {
        card,
        outcome: 'overridden',
        overrideReason: {
          reason: {
            code: 'reason-code-provided-by-service',
            system: 'http://example.org/cds-services/fhir/CodeSystem/override-reasons',
            display: 'Patient refused',
          },
          userComment: 'Discussed with the family',
        },
        outcomeTimestamp: at,
      },
    ]);
    assert.equal(ok.statusCode, 200, ok.body);
    const cases: Array<[unknown, string]> = [
      [{ card, outcome: 'accepted', outcomeTimestamp: at }, 'feedback.0.acceptedSuggestions'],
      [{ card, outcome: 'accepted', acceptedSuggestions: [], outcomeTimestamp: at }, 'feedback.0.acceptedSuggestions'],
      [
        {
          card,
          outcome: 'accepted',
          acceptedSuggestions: [{ id: 'a' }],
          overrideReason: { userComment: 'x' },
          outcomeTimestamp: at,
        },
        'feedback.0.overrideReason',
      ],
      [
        { card, outcome: 'overridden', acceptedSuggestions: [{ id: 'a' }], outcomeTimestamp: at },
        'feedback.0.acceptedSuggestions',
      ],
      [{ card, outcome: 'declined', outcomeTimestamp: at }, 'feedback.0.outcome'],
      [{ card: 'c1', outcome: 'overridden', outcomeTimestamp: at }, 'feedback.0.card'],
      [{ card, outcome: 'overridden', outcomeTimestamp: 'yesterday' }, 'feedback.0.outcomeTimestamp'],
    ];
    for (const [entry, path] of cases) {
      const res = await send([entry]);
      assert.equal(res.statusCode, 400, JSON.stringify(entry));
      assert.ok(
        (res.json() as { details: Array<{ path: string }> }).details.some((d) => d.path === path),
        `${path} in ${res.body}`,
      );
    }
  });
});

describe('CORS for browser CDS clients', () => {
  test('a preflight from an allowed origin is answered without credentials; other routes send no CORS headers', async (t) => {
    const { app } = await buildTestApp(t, {
      env: { AUTH_DISABLED: 'false', CDS_CORS_ORIGINS: 'https://sandbox.cds-hooks.org' },
    });
    const preflight = await app.inject({
      method: 'OPTIONS',
      url: '/cds-services/icu-mortality',
      headers: {
        origin: 'https://sandbox.cds-hooks.org',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    });
    assert.equal(preflight.statusCode, 204, preflight.body);
    assert.equal(preflight.headers['access-control-allow-origin'], 'https://sandbox.cds-hooks.org');
    assert.match(String(preflight.headers['access-control-allow-methods']), /POST/);
    assert.match(String(preflight.headers['access-control-allow-headers']), /Authorization/);
    // The call itself still needs the EHR's token, and says so with CORS headers the browser can read.
    const call = await app.inject({
      method: 'GET',
      url: '/cds-services',
      headers: { origin: 'https://sandbox.cds-hooks.org' },
    });
    assert.equal(call.statusCode, 401);
    assert.equal(call.headers['access-control-allow-origin'], 'https://sandbox.cds-hooks.org');
    const other = await app.inject({
      method: 'OPTIONS',
      url: '/cds-services',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' },
    });
    assert.equal(other.headers['access-control-allow-origin'], undefined);
    const api = await app.inject({
      method: 'GET',
      url: '/health/live',
      headers: { origin: 'https://sandbox.cds-hooks.org' },
    });
    assert.equal(api.headers['access-control-allow-origin'], undefined);
  });

  test('without CDS_CORS_ORIGINS there is no CORS at all', async (t) => {
    const { app } = await buildTestApp(t, { env: { AUTH_DISABLED: 'false' } });
    const preflight = await app.inject({
      method: 'OPTIONS',
      url: '/cds-services',
      headers: { origin: 'https://sandbox.cds-hooks.org', 'access-control-request-method': 'GET' },
    });
    assert.equal(preflight.headers['access-control-allow-origin'], undefined);
  });
});

describe('CDS Hooks: only the context patient is scored; feedback only for issued cards', () => {
  /** Heart rates of another patient: copies of the stay's latest vitals with extreme values and other subjects. */
  function foreign(vitals: Json[], subject: Json | undefined, value: number, tag: string): Json[] {
    const hr = vitals.filter((o) =>
      (o.code as { coding: Array<{ code: string }> }).coding.some((c) => c.code === '8867-4'),
    );
    return hr.slice(-8).map((o, i) => {
      const copy: Json = {
        ...o,
        id: `${tag}${i}`,
        valueQuantity: { ...(o.valueQuantity as Json), value },
        // One minute later than this patient's own value: the last of its hour, so it would count.
        effectiveDateTime: new Date(Date.parse(o.effectiveDateTime as string) + 60_000).toISOString(),
      };
      if (subject === undefined) delete copy.subject;
      else copy.subject = subject;
      return copy;
    });
  }

  test("another server's Patient/p1 and subject-less Observations are not scored, and the card says so", async (t) => {
    const { app, logs } = await appWith(t);
    const r = await stay(app);
    const fhirServer = 'https://ehr.example.org/fhir';
    const mixed = [
      ...r.vitals,
      ...foreign(r.vitals, { reference: 'http://other.example/fhir/Patient/p1' }, 175, 'other'),
      ...foreign(r.vitals, undefined, 35, 'nosubject'),
      // This patient on the hook's own fhirServer, absolute: used (the same values as its own).
      ...r.vitals
        .slice(0, 3)
        .map((o) => ({ ...o, id: `abs-${String(o.id)}`, subject: { reference: `${fhirServer}/Patient/p1` } })),
    ];
    const res = await app.inject({
      method: 'POST',
      url: '/cds-services/icu-mortality',
      payload: hookRequest({ patient: r.patient, vitals: searchset(mixed), labs: searchset(r.labs) }, { fhirServer }),
    });
    assert.equal(res.statusCode, 200, res.body);
    const card = (res.json() as { cards: Card[] }).cards[0] as Card;
    // The same estimate as /v1/predict on this patient's own record.
    assert.ok(card.summary.startsWith(`ICU mortality risk ${percent(r.expected)} (`), card.summary);
    assert.match(card.detail, /\*\*16 Observation\(s\) were not used: their subject is not this patient\*\*/);
    const text = logs.text();
    assert.ok(!text.includes('other.example') && !text.includes('nosubject'), 'no references or ids in the log');
    assert.ok(logs.lines.some((l) => (JSON.parse(l) as { observations?: number }).observations === 16));
  });

  test("a fhirServer's trailing slashes, however many, do not hide this patient's absolute subjects", async (t) => {
    const { app } = await appWith(t);
    const r = await stay(app);
    const base = 'https://ehr.example.org/fhir';
    const absolute = r.vitals.map((o) => ({ ...o, subject: { reference: `${base}/Patient/p1` } }));
    for (const fhirServer of [`${base}//`, `${base}${'/'.repeat(100_000)}`]) {
      const res = await app.inject({
        method: 'POST',
        url: '/cds-services/icu-mortality',
        payload: hookRequest(
          { patient: r.patient, vitals: searchset(absolute), labs: searchset(r.labs) },
          { fhirServer },
        ),
      });
      assert.equal(res.statusCode, 200, res.body.slice(0, 500));
      const card = (res.json() as { cards: Card[] }).cards[0] as Card;
      assert.ok(card.summary.startsWith(`ICU mortality risk ${percent(r.expected)} (`), card.summary);
      assert.doesNotMatch(card.detail, /were not used: their subject is not this patient/);
    }
    // A long run of slashes inside the URL, not at its end: answered like any fhirServer (the
    // regex /\/+$/ took time quadratic in the run here; figures in the commit message).
    const inner = `https://ehr.example.org${'/'.repeat(100_000)}fhir`;
    const res = await app.inject({
      method: 'POST',
      url: '/cds-services/icu-mortality',
      payload: hookRequest(
        { patient: r.patient, vitals: searchset(r.vitals), labs: searchset(r.labs) },
        { fhirServer: inner },
      ),
    });
    assert.equal(res.statusCode, 200, res.body.slice(0, 500));
  });

  test('a prefetched Patient without id is refused with a 400 naming prefetch.patient.id', async (t) => {
    const { app } = await appWith(t);
    const r = await stay(app);
    const { id: _id, ...anonymous } = r.patient;
    const res = await app.inject({
      method: 'POST',
      url: '/cds-services/icu-mortality',
      payload: hookRequest({ patient: anonymous, vitals: searchset(r.vitals), labs: searchset(r.labs) }),
    });
    assert.equal(res.statusCode, 400, res.body);
    const body = res.json() as { error: string; details: Array<{ path: string }> };
    assert.equal(body.error, 'invalid_prefetch');
    assert.deepEqual(
      body.details.map((d) => d.path),
      ['prefetch.patient.id'],
    );
  });

  test('feedback naming a card this service never issued is refused; a replica with the same key accepts it', async (t) => {
    const key = 'k'.repeat(40);
    const { app } = await appWith(t, { CDS_CARD_KEY: key });
    const { app: replica } = await appWith(t, { CDS_CARD_KEY: key });
    const { app: stranger } = await appWith(t, { CDS_CARD_KEY: 's'.repeat(40) });
    const card = (await issuedCard(app)).uuid;
    const feedback = (uuid: string) => ({
      feedback: [{ card: uuid, outcome: 'overridden', outcomeTimestamp: NOW.toISOString() }],
    });
    const url = '/cds-services/icu-mortality/feedback';
    assert.equal((await replica.inject({ method: 'POST', url, payload: feedback(card) })).statusCode, 200);
    for (const [target, uuid] of [
      [app, '9f3c1f6e-4a1b-4c3d-9e2f-1a2b3c4d5e6f'],
      [stranger, card],
    ] as const) {
      const res = await target.inject({ method: 'POST', url, payload: feedback(uuid) });
      assert.equal(res.statusCode, 400, res.body);
      const body = res.json() as { error: string; details: Array<{ path: string }> };
      assert.equal(body.error, 'unknown_card');
      assert.deepEqual(
        body.details.map((d) => d.path),
        ['feedback.0.card'],
      );
    }
  });

  test('a feedback body over 64 KiB is refused with 413 before it is parsed', async (t) => {
    const { app } = await appWith(t);
    const card = (await issuedCard(app)).uuid;
    const entry = {
      card,
      outcome: 'overridden',
      overrideReason: { userComment: 'x'.repeat(9_000) },
      outcomeTimestamp: NOW.toISOString(),
    };
    const url = '/cds-services/icu-mortality/feedback';
    const small = await app.inject({ method: 'POST', url, payload: { feedback: [entry] } });
    assert.equal(small.statusCode, 200, small.body);
    // Eight valid entries: about 72 KB, each within the schema's own limits.
    const large = await app.inject({ method: 'POST', url, payload: { feedback: Array(8).fill(entry) } });
    assert.equal(large.statusCode, 413, large.body);
  });
});
