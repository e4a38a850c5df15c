import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { freePort, startServer } from '../../scripts/server-process.js';
import { dashboardExpressions, readYaml, repoPath } from './files.js';

/**
 * The dashboard against a live Prometheus (Debian's), as an operator's would run: Prometheus
 * scrapes the running service every second with deploy/prometheus/alerts.yml loaded, a short
 * load goes through the service, and then every expression of the dashboard (panels and
 * variables) must return data. A healthy service must not leave panels empty. .ci/run installs
 * prometheus; without it the test is skipped.
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
    const server = await startServer({
      env: { RATE_LIMIT_MAX: '30', RATE_LIMIT_WINDOW_MS: '60000' },
      scopes: 'predict models:read',
    });
    t.after(() => server.dispose());
    const dir = await mkdtemp(join(tmpdir(), 'prometheus-live-'));
    t.after(() => rm(dir, { recursive: true, force: true }));

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

    // A short load: valid and invalid patients, a stream, FHIR, and enough calls on one key to be rate limited.
    const headers = { 'content-type': 'application/json', 'x-api-key': server.apiKey };
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
    // 24 calls so far; this burst goes past RATE_LIMIT_MAX.
    await Promise.all(Array.from({ length: 12 }, () => fetch(`${server.base}/v1/models`, { headers })));
    await sleep(3000);

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
