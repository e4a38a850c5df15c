import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analysePromql, dashboard, dashboardExpressions, readYaml } from './files.js';

/** The provisioned Grafana dashboard: structure, datasource wiring, and the panels issue 6 asks for. */

interface DatasourceProvisioning {
  datasources: Array<{ uid: string; type: string; url: string }>;
}
interface DashboardProvisioning {
  providers: Array<{ options: { path: string } }>;
}
interface Compose {
  services: Record<string, { volumes?: string[] }>;
}

describe('deploy/grafana', () => {
  const d = dashboard();
  const panels = d.panels.filter((p) => p.type !== 'row');

  it('gives each panel a unique id and a place inside the 24-column grid without overlaps', () => {
    const ids = d.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'duplicate panel ids');
    const cells = new Map<string, string>();
    for (const p of d.panels) {
      const g = p.gridPos;
      assert.ok(g.x >= 0 && g.w > 0 && g.x + g.w <= 24, `panel "${p.title}" is outside the grid`);
      for (let x = g.x; x < g.x + g.w; x++) {
        for (let y = g.y; y < g.y + g.h; y++) {
          const key = `${x},${y}`;
          assert.ok(!cells.has(key), `panels "${cells.get(key)}" and "${p.title}" overlap at ${key}`);
          cells.set(key, p.title);
        }
      }
    }
  });

  it('queries only the provisioned Prometheus datasource', () => {
    const provisioned = readYaml<DatasourceProvisioning>(
      'deploy',
      'grafana',
      'provisioning',
      'datasources',
      'prometheus.yml',
    );
    const uids = new Set(provisioned.datasources.map((s) => s.uid));
    for (const p of panels) {
      assert.ok(p.datasource && uids.has(p.datasource.uid), `panel "${p.title}" uses an unprovisioned datasource`);
      for (const t of p.targets ?? [])
        assert.ok(!t.datasource || uids.has(t.datasource.uid), `panel "${p.title}" ${t.refId}`);
    }
    assert.ok(
      provisioned.datasources.every((s) => s.url === 'http://prometheus:9090'),
      'datasource must point at the compose prometheus service',
    );
  });

  it('writes every query in valid PromQL once Grafana variables are substituted', () => {
    for (const { where, expr } of dashboardExpressions()) {
      assert.deepEqual(analysePromql(expr).errors, [], `${where} does not parse: ${expr}`);
    }
  });

  it('shows request rate, error rate, latency, batching, queue, rejections, drift and process health', () => {
    const uses = (metric: string) =>
      panels.filter((p) =>
        (p.targets ?? []).some((t) =>
          analysePromql(t.expr.replace(/\$__rate_interval/g, '5m').replace(/\$\{?\w+\}?/g, '.*')).metrics.includes(
            metric,
          ),
        ),
      );
    const required: Array<[string, string]> = [
      ['request rate', 'http_requests_total'],
      ['latency percentiles', 'http_request_duration_seconds_bucket'],
      ['batch size', 'engine_batch_size_bucket'],
      ['queue wait', 'batcher_queue_wait_seconds_bucket'],
      ['queue depth', 'batcher_queue_depth'],
      ['rejections', 'rejected_requests_total'],
      ['probability distribution', 'prediction_probability_bucket'],
      ['memory', 'process_resident_memory_bytes'],
      ['CPU', 'process_cpu_seconds_total'],
    ];
    for (const [what, metric] of required) assert.ok(uses(metric).length > 0, `no panel shows ${what} (${metric})`);
    const errorPanel = panels.find((p) => (p.targets ?? []).some((t) => /status=~"5\.\."/.test(t.expr)));
    assert.ok(errorPanel, 'no panel shows the 5xx error rate');
    const latency = panels.find(
      (p) => (p.targets ?? []).filter((t) => t.expr.includes('http_request_duration_seconds_bucket')).length >= 3,
    );
    assert.ok(latency, 'latency panel should show several percentiles');
  });

  it('splits the predicted-probability distribution by model version', () => {
    const heat = panels.find((p) => p.type === 'heatmap');
    assert.ok(heat, 'no heatmap panel');
    assert.equal(heat.repeat, 'version', 'the distribution heatmap should repeat per model version');
    assert.ok(d.templating.list.some((v) => v.name === 'version'));
    assert.ok((heat.targets ?? []).every((t) => t.expr.includes('version=~"$version"')));
  });

  it('is loaded from the folder docker-compose mounts the dashboards into', () => {
    const providers = readYaml<DashboardProvisioning>(
      'deploy',
      'grafana',
      'provisioning',
      'dashboards',
      'icu-mortality.yml',
    );
    const path = providers.providers[0]?.options.path;
    const compose = readYaml<Compose>('docker-compose.yml');
    const mounts = compose.services.grafana?.volumes ?? [];
    assert.ok(
      mounts.includes(`./deploy/grafana/dashboards:${path}:ro`),
      `grafana does not mount the dashboards at ${path}`,
    );
    assert.ok(mounts.includes('./deploy/grafana/provisioning:/etc/grafana/provisioning:ro'));
  });
});
