import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { freePort, startServer } from '../../scripts/server-process.js';
import { samplePatient } from '../helper.js';
import { dashboardExpressions, readJson, readYaml, repoPath } from './files.js';

/**
 * The dashboard against a live Prometheus (Debian's), as an operator's would run: Prometheus
 * scrapes the running service every second with deploy/prometheus/alerts.yml loaded, a short
 * load goes through the service, with a scored cohort and its outcomes for the live-performance
 * row, and then every expression of the dashboard (panels and variables) must return data. A
 * healthy service must not leave panels empty. .ci/run installs prometheus; without it the test
 * is skipped.
 */

const PROMETHEUS = '/usr/bin/prometheus';

async function waitFor<T>(what: string, read: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

test(
  'every dashboard expression returns data from a live Prometheus scraping the service',
  { skip: existsSync(PROMETHEUS) ? false : 'no prometheus (apt-get install prometheus)', timeout: 120_000 },
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'prometheus-live-'));
    t.after(() => rm(dir, { recursive: true, force: true }));

    // The tiny fixture is untrained, so its manifest has no held-out figures, which every trained
    // model's card has (training writes metrics.heldOut); without them the development lower bound
    // (model_development_auroc_ci95_lower) is rightly absent. Serve it with a card's figures.
    const tiny = repoPath('test', 'fixtures', 'tiny-model');
    const modelDir = join(dir, 'models', 'icu-mortality', '0.0.0-tiny');
    await mkdir(modelDir, { recursive: true });
    for (const file of await readdir(tiny))
      if (file !== 'manifest.json') await symlink(join(tiny, file), join(modelDir, file));
    const manifest = readJson<{ metrics: Record<string, unknown> }>('test', 'fixtures', 'tiny-model', 'manifest.json');
    manifest.metrics.heldOut = { n: 1200, deaths: 170, auroc: 0.86, aurocCi95: [0.84, 0.89] };
    await writeFile(join(modelDir, 'manifest.json'), JSON.stringify(manifest));

    // The store in the test's own directory; the gauges recomputed every 10 s (the least allowed).
    const server = await startServer({
      env: {
        RATE_LIMIT_MAX: '30',
        RATE_LIMIT_WINDOW_MS: '60000',
        DATA_DIR: join(dir, 'store'),
        MONITORING_INTERVAL_S: '10',
      },
      modelDir: join(dir, 'models'),
      scopes: 'predict models:read outcomes:write',
    });
    t.after(() => server.dispose());

    // The shipped configuration, pointed at this server and scraped every second.
    const shipped = readYaml<{ rule_files: string[]; scrape_configs: Array<Record<string, unknown>> }>(
      'deploy',
      'prometheus',
      'prometheus.yml',
    );
    const job = shipped.scrape_configs[0] as {
      job_name: string;
      static_configs: Array<{ labels?: Record<string, string> }>;
    };
    await writeFile(join(dir, 'alerts.yml'), await readFile(repoPath('deploy', 'prometheus', 'alerts.yml'), 'utf8'));
    const config = {
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      rule_files: shipped.rule_files,
      scrape_configs: [
        {
          ...job,
          scrape_interval: '1s',
          static_configs: [{ targets: [`127.0.0.1:${server.port}`], labels: job.static_configs[0]?.labels ?? {} }],
        },
      ],
    };
    await writeFile(join(dir, 'prometheus.yml'), stringify(config));
    const port = await freePort();
    const prometheus = spawn(
      PROMETHEUS,
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let log = '';
    prometheus.stderr.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
    t.after(() => prometheus.kill('SIGKILL'));
    const api = `http://127.0.0.1:${port}/api/v1`;
    await waitFor(
      'the first scrape',
      async () => {
        const r = (await (await fetch(`${api}/query?query=up`)).json()) as {
          data: { result: Array<{ value: [number, string] }> };
        };
        return r.data.result.some((s) => s.value[1] === '1') ? true : undefined;
      },
      30_000,
    );

    const headers = { 'content-type': 'application/json', 'x-api-key': server.apiKey };

    // A cohort scored with ids and its outcomes, as a site's replay would post them (see
    // test/api/monitoring.test.ts): 120 deaths and 120 survivors, over the minimum of 100 each below
    // which the live figures are withheld. Deaths mostly above the median risk, every fifth the other way.
    const scored = new Map<string, number>();
    for (let batch = 0; batch < 4; batch++) {
      const patients = Array.from({ length: 60 }, (_, j) => {
        const i = batch * 60 + j;
        return samplePatient(3 + (i % 22), i + 1, `r${i}`);
      });
      const res = await fetch(`${server.base}/v1/predict`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ patients }),
      });
      assert.equal(res.status, 200, await res.clone().text());
      const { results } = (await res.json()) as { results: Array<{ index: number; probability: number }> };
      for (const r of results) scored.set(`r${batch * 60 + r.index}`, r.probability);
    }
    const median = [...scored.values()].sort((a, b) => a - b)[scored.size / 2] as number;
    const at = new Date(Date.now() + 1000).toISOString();
    const posted = await fetch(`${server.base}/v1/outcomes`, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        outcomes: [...scored].map(([id, p], i) => ({ id, died: p > median !== (i % 5 === 0), at })),
      }),
    });
    assert.equal(posted.status, 200, await posted.text());

    // A short load: valid and invalid patients, a stream, FHIR, and enough calls on one key to be rate limited.
    const patient = {
      age: 70,
      sex: 'male',
      icuType: 3,
      hours: [
        { HR: 100, MAP: 70 },
        { HR: 110, Lactate: 3 },
      ],
    };
    for (let round = 0; round < 6; round++) {
      await fetch(`${server.base}/v1/predict`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ patients: [patient, patient] }),
      });
      await fetch(`${server.base}/v1/predict`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ patients: [{ hours: [{ HR: 900 }] }] }),
      });
      await fetch(`${server.base}/v1/predict/stream`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/x-ndjson' },
        body: `${JSON.stringify(patient)}\n`,
      });
      await fetch(`${server.base}/v1/models`, { headers });
      await sleep(1000);
    }
    // 29 calls so far; this burst goes past RATE_LIMIT_MAX.
    await Promise.all(Array.from({ length: 12 }, () => fetch(`${server.base}/v1/models`, { headers })));
    await sleep(3000);
    // The scheduled recomputation after the outcomes, then one more scrape.
    await waitFor(
      'the live figures',
      async () => {
        const r = (await (
          await fetch(`${api}/query?query=${encodeURIComponent('monitoring_auroc{version="all",profile="all"}')}`)
        ).json()) as { data: { result: unknown[] } };
        return r.data.result.length > 0 ? true : undefined;
      },
      30_000,
    );
    await sleep(1500);

    const empty: string[] = [];
    for (const { where, expr } of dashboardExpressions()) {
      const r = (await (await fetch(`${api}/query?query=${encodeURIComponent(expr)}`)).json()) as {
        status: string;
        error?: string;
        data?: { result: unknown[] };
      };
      assert.equal(r.status, 'success', `${where}: ${r.error ?? ''}\n${expr}`);
      if ((r.data?.result.length ?? 0) === 0) empty.push(`${where}: ${expr}`);
    }
    assert.deepEqual(empty, [], `expressions without data (prometheus log: ${log})`);
  },
);
