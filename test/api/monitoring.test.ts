import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import type { Pair } from '../../src/evaluation/monitoring.js';
import { MonitoringBusyError, StoreUnavailableError } from '../../src/store/errors.js';
import { buildTestApp, samplePatient } from '../helper.js';
import { BACKENDS, storeConfig, TEST_SITE_KEY } from '../store/backends.js';
import { assertFiguresMatch, sklearnFigures } from '../store/sklearn-figures.js';

/**
 * A replay: a cohort scored with ids through /v1/predict, its outcomes posted, the service
 * restarted on the same store; /v1/monitoring and /metrics beside scikit-learn on the same pairs.
 */

type App = Awaited<ReturnType<typeof buildTestApp>>['app'];

async function dataDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'icu-monitoring-api-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Scores `n` patients with ids; returns id -> probability. */
async function scoreCohort(app: App, n: number): Promise<Map<string, number>> {
  const patients = Array.from({ length: n }, (_, i) => samplePatient(3 + (i % 22), i + 1, `r${i}`));
  const res = await app.inject({ method: 'POST', url: '/v1/predict', payload: { patients } });
  assert.equal(res.statusCode, 200, res.body);
  await app.recorder.flushed();
  const results = (res.json() as { results: Array<{ index: number; probability: number }> }).results;
  return new Map(results.map((r) => [`r${r.index}`, r.probability]));
}

/** Deaths mostly above the median risk, with every fifth stay the other way round. */
function outcomesOf(scored: Map<string, number>): Map<string, 0 | 1> {
  const sorted = [...scored.values()].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] as number;
  return new Map([...scored].map(([id, p], i) => [id, p > median !== (i % 5 === 0) ? 1 : 0] as [string, 0 | 1]));
}

async function postOutcomes(app: App, outcomes: Map<string, 0 | 1>): Promise<void> {
  const at = new Date(Date.now() + 1000).toISOString();
  const res = await app.inject({
    method: 'POST',
    url: '/v1/outcomes',
    payload: { outcomes: [...outcomes].map(([id, died]) => ({ id, died: died === 1, at })) },
  });
  assert.equal(res.statusCode, 200, res.body);
  assert.equal((res.json() as { unmatched: number }).unmatched, 0);
}

/** The value of one sample of /metrics, or undefined when it is absent. */
function sample(metrics: string, name: string, labels: string): number | undefined {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

describe('GET /v1/monitoring', () => {
  for (const { backend, skip } of BACKENDS)
    it(
      `gives the figures of a replayed cohort as scikit-learn does, after a restart, and as gauges (${backend})`,
      { skip },
      async (t) => {
        const store = await storeConfig(t, backend);
        const storeEnv: Record<string, string> = { DATA_DIR: store.dataDir };
        if (store.databaseUrl !== undefined)
          Object.assign(storeEnv, { DATABASE_URL: store.databaseUrl, SITE_ID_KEY: TEST_SITE_KEY });
        const first = await buildTestApp(t, { env: storeEnv });
        const scored = await scoreCohort(first.app, 240);
        const outcomes = outcomesOf(scored);
        await postOutcomes(first.app, outcomes);
        await first.app.close();

        // The alert threshold between the cohort's quartiles, so that flagged figures have both kinds.
        const sorted = [...scored.values()].sort((a, b) => a - b);
        const threshold = sorted[Math.floor(sorted.length * 0.7)] as number;
        const { app, config } = await buildTestApp(t, {
          env: { ...storeEnv, RISK_MODERATE_THRESHOLD: String(threshold), RISK_HIGH_THRESHOLD: '0.99' },
        });
        const res = await app.inject({ method: 'GET', url: '/v1/monitoring?days=1' });
        assert.equal(res.statusCode, 200, res.body);
        const body = res.json() as Record<string, unknown> & {
          overall: Parameters<typeof assertFiguresMatch>[0];
          byVersion: Array<Parameters<typeof assertFiguresMatch>[0] & { version: string }>;
        };
        assert.equal(body.alertThreshold, threshold);
        assert.deepEqual(body.minimum, { deaths: 100, survivors: 100 });
        const version = app.models.active?.version as string;
        const pairs: Pair[] = [...scored].map(([id, probability]) => ({
          probability,
          died: outcomes.get(id) as 0 | 1,
          version,
          profile: 'any',
        }));
        const ref = sklearnFigures(pairs, threshold);
        assertFiguresMatch(body.overall, ref.overall as Record<string, number>, 'overall');
        assert.deepEqual(
          body.byVersion.map((v) => v.version),
          [version],
        );
        assertFiguresMatch(
          body.byVersion[0] as Parameters<typeof assertFiguresMatch>[0],
          ref.overall as Record<string, number>,
          version,
        );
        assert.equal(body.overall.unlabelled, 0);
        assert.ok(config.alerting.monitoringDays >= 1);

        await app.monitoring.refresh();
        const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
        const all = 'version="all",profile="all"';
        assert.equal(sample(metrics, 'monitoring_outcomes', all), 240);
        assert.equal(sample(metrics, 'monitoring_auroc', all), body.overall.auroc);
        assert.equal(sample(metrics, 'monitoring_auroc_ci95_upper', all), body.overall.aurocCi95?.[1]);
        assert.equal(sample(metrics, 'monitoring_observed_expected', all), body.overall.observedExpected);
        assert.equal(sample(metrics, 'monitoring_ppv', `version="${version}",profile="all"`), body.overall.ppv);
        // Labels are versions and profiles only: no id reaches /metrics.
        assert.doesNotMatch(metrics, /r1[0-9]{2}/);
      },
    );

  it('withholds the outcome-based figures below 100 deaths and 100 survivors, saying so', async (t) => {
    const { app } = await buildTestApp(t, { env: { DATA_DIR: await dataDir(t) } });
    const scored = await scoreCohort(app, 30);
    await postOutcomes(app, outcomesOf(scored));
    const res = await app.inject({ method: 'GET', url: '/v1/monitoring' });
    assert.equal(res.statusCode, 200, res.body);
    const overall = (res.json() as { overall: Record<string, unknown> }).overall;
    assert.equal(overall.n, 30);
    for (const key of ['auroc', 'aurocCi95', 'observedExpected', 'sensitivity', 'ppv'])
      assert.equal(overall[key], null, key);
    assert.deepEqual(overall.calibration, { interceptInTheLarge: null, slope: null });
    assert.match(String(overall.withheld), /at least 100 of each/);
    await app.monitoring.refresh();
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    assert.equal(sample(metrics, 'monitoring_outcomes', 'version="all",profile="all"'), 30);
    assert.equal(sample(metrics, 'monitoring_auroc', 'version="all",profile="all"'), undefined);
  });

  it('computes one window at a time and refuses a fifth waiting caller', async (t) => {
    const { app } = await buildTestApp(t, { env: { DATA_DIR: await dataDir(t) } });
    const settled = await Promise.allSettled(Array.from({ length: 5 }, () => app.monitoring.figures(30)));
    assert.deepEqual(
      settled.map((s) => s.status),
      ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'rejected'],
    );
    assert.match(String((settled[4] as PromiseRejectedResult).reason), /MonitoringBusyError/);
    // Over HTTP the refusal is a 503 to retry.
    app.monitoring.figures = () => Promise.reject(new MonitoringBusyError('4 computations of the figures are waiting'));
    const busy = await app.inject({ method: 'GET', url: '/v1/monitoring' });
    assert.equal(busy.statusCode, 503, busy.body);
    assert.equal(busy.json<{ error: string }>().error, 'monitoring_busy');
    assert.equal(busy.headers['retry-after'], '5');
  });

  it('answers 503 store_unavailable, with Retry-After and without the store’s own words, when the store does not answer', async (t) => {
    const { app } = await buildTestApp(t, { env: { DATA_DIR: await dataDir(t) } });
    app.monitoring.figures = () => Promise.reject(new StoreUnavailableError('connect ECONNREFUSED 10.1.2.3:5432'));
    const res = await app.inject({ method: 'GET', url: '/v1/monitoring' });
    assert.equal(res.statusCode, 503, res.body);
    assert.equal(res.json<{ error: string }>().error, 'store_unavailable');
    assert.equal(res.headers['retry-after'], '5');
    assert.ok(!res.body.includes('10.1.2.3'), res.body);
  });

  it('refuses a window outside 1-3650 days, naming the field', async (t) => {
    const { app } = await buildTestApp(t, { env: { DATA_DIR: await dataDir(t) } });
    const res = await app.inject({ method: 'GET', url: '/v1/monitoring?days=0' });
    assert.equal(res.statusCode, 400);
    assert.match(res.body, /days/);
  });
});
