import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { loadTinyManifest, ROOT, buildTestApp } from '../helper.js';
import { recordToBundle, type Json } from '../fixtures/fhir/physionet-to-fhir.js';

/** The alert policy and silent mode on the CDS Hooks route: which cards a sequence of calls gets. */

const ADMISSION = new Date('2026-03-13T06:30:00Z');
const T0 = new Date('2026-03-15T06:30:00Z');
const HOUR = 3_600_000;

type App = Awaited<ReturnType<typeof buildTestApp>>['app'];

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'icu-cds-policy-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** stay-b's resources as prefetch of a patient-view call for patient p1. */
async function hookRequest(): Promise<Json> {
  const manifest = await loadTinyManifest();
  const text = await readFile(join(ROOT, 'test', 'fixtures', 'fhir', 'records', 'stay-b.txt'), 'utf8');
  const resources = (
    recordToBundle(text, manifest, { admission: ADMISSION, predictionTime: T0 }) as { entry: Array<{ resource: Json }> }
  ).entry.map((e) => e.resource);
  const category = (r: Json): string =>
    (r.category as Array<{ coding: Array<{ code: string }> }> | undefined)?.[0]?.coding[0]?.code ?? '';
  const searchset = (list: Json[]): Json => ({
    resourceType: 'Bundle',
    type: 'searchset',
    total: list.length,
    entry: list.map((resource) => ({ resource, search: { mode: 'match' } })),
  });
  return {
    hook: 'patient-view',
    hookInstance: 'd1577c69-dfbe-44ad-ba6d-3e05e953b2ea',
    context: { userId: 'Practitioner/123', patientId: 'p1' },
    prefetch: {
      patient: resources.find((r) => r.resourceType === 'Patient'),
      vitals: searchset(resources.filter((r) => r.resourceType === 'Observation' && category(r) === 'vital-signs')),
      labs: searchset(resources.filter((r) => r.resourceType === 'Observation' && category(r) === 'laboratory')),
    },
  };
}

async function cards(app: App, request: Json): Promise<Array<{ indicator: string; summary: string }>> {
  const res = await app.inject({ method: 'POST', url: '/cds-services/icu-mortality', payload: request });
  assert.equal(res.statusCode, 200, res.body);
  return (res.json() as { cards: Array<{ indicator: string; summary: string }> }).cards;
}

function sample(metrics: string, name: string, labels: string): number | undefined {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

describe('CDS Hooks under the alert policy', () => {
  it('suppresses a repeat card within the hours, shows it again after them, and remembers across a restart', async (t) => {
    const dir = await tempDir(t);
    const policy = join(dir, 'policy.yaml');
    await writeFile(
      policy,
      [
        'tiers:',
        '  - { name: low, from: 0, indicator: info }',
        '  - { name: moderate, from: 0.15, indicator: warning }',
        '  - { name: high, from: 0.4, indicator: critical }',
        'suppression: { hours: 6, minRisePoints: 10 }',
      ].join('\n'),
    );
    let now = T0;
    const env = { DATA_DIR: dir, ALERT_POLICY: policy };
    const first = await buildTestApp(t, { env, deps: { now: () => now } });
    const request = await hookRequest();
    // The same patient and the same risk: a card, none an hour later, one again after 6 hours.
    assert.equal((await cards(first.app, request)).length, 1);
    now = new Date(T0.getTime() + HOUR);
    assert.deepEqual(await cards(first.app, request), []);
    now = new Date(T0.getTime() + 7 * HOUR);
    assert.equal((await cards(first.app, request)).length, 1);
    const metrics = (await first.app.inject({ method: 'GET', url: '/metrics' })).body;
    const shown = ['low', 'moderate', 'high'].map(
      (x) => sample(metrics, 'alerts_total', `tier="${x}",suppressed="false"`) ?? 0,
    );
    const held = ['low', 'moderate', 'high'].map(
      (x) => sample(metrics, 'alerts_total', `tier="${x}",suppressed="true"`) ?? 0,
    );
    assert.equal(
      shown.reduce((a, b) => a + b),
      2,
    );
    assert.equal(
      held.reduce((a, b) => a + b),
      1,
    );
    assert.deepEqual(
      shown.map((v) => v > 0),
      held.map((v) => v > 0),
      'shown and suppressed cards are of the same tier',
    );
    assert.ok(first.logs.lines.some((l) => /"cds":"suppressed"/.test(l)));
    await first.app.close();

    // A restart keeps the state: 8 h is within 6 h of the 7 h card.
    now = new Date(T0.getTime() + 8 * HOUR);
    const second = await buildTestApp(t, { env, deps: { now: () => now } });
    assert.deepEqual(await cards(second.app, request), []);
  });

  it('takes the card indicator from the policy tier', async (t) => {
    const dir = await tempDir(t);
    const policy = join(dir, 'policy.json');
    // Every probability from 0.000001 is "high" here, shown as critical.
    await writeFile(
      policy,
      JSON.stringify({
        tiers: [
          { name: 'low', from: 0, indicator: 'info' },
          { name: 'moderate', from: 0.0000005, indicator: 'info' },
          { name: 'high', from: 0.000001, indicator: 'critical' },
        ],
      }),
    );
    const { app } = await buildTestApp(t, { env: { DATA_DIR: dir, ALERT_POLICY: policy }, deps: { now: () => T0 } });
    const [card] = await cards(app, await hookRequest());
    assert.equal(card?.indicator, 'critical');
    assert.match(card?.summary ?? '', /\(high\)$/);
    // The store records the same tier.
    await app.recorder.flushed();
    const recorded = await app.store.client.all<{ tier: string }>("SELECT tier FROM predictions WHERE route = 'cds'");
    assert.deepEqual(
      recorded.map((r) => r.tier),
      ['high'],
    );
    const models = (await app.inject({ method: 'GET', url: '/v1/models' })).json() as {
      cds: { mode: string; alertPolicy: { tiers: Array<{ from: number }> } };
    };
    assert.equal(models.cds.mode, 'cards');
    assert.deepEqual(
      models.cds.alertPolicy.tiers.map((x) => x.from),
      [0, 0.0000005, 0.000001],
    );
  });

  it('in silent mode shows no card while every call is recorded in the store, and says so', async (t) => {
    const dir = await tempDir(t);
    const { app } = await buildTestApp(t, { env: { DATA_DIR: dir, CDS_SILENT: 'true' }, deps: { now: () => T0 } });
    const request = await hookRequest();
    const count = async () =>
      Number(
        (
          await app.store.client.get<{ n: number }>(
            "SELECT COUNT(*) AS n FROM predictions WHERE route = 'cds' AND silent = 1",
          )
        )?.n,
      );
    for (let i = 1; i <= 3; i++) {
      assert.deepEqual(await cards(app, request), []);
      await app.recorder.flushed();
      assert.equal(await count(), i);
    }
    const models = (await app.inject({ method: 'GET', url: '/v1/models' })).json() as { cds: { mode: string } };
    assert.equal(models.cds.mode, 'silent');
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    assert.equal(sample(metrics, 'cds_mode', 'mode="silent"'), 1);
    assert.equal(sample(metrics, 'cds_mode', 'mode="cards"'), 0);
  });
});
