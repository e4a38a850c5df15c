import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { alertRules, analysePromql, readYaml, repoPath } from './files.js';

/**
 * The alert rules and the Prometheus config. Parsing uses Prometheus' own PromQL grammar;
 * `promtool` (Debian package `prometheus`) additionally type-checks the rules and runs the
 * unit tests in deploy/prometheus/alerts.test.yml when it is installed.
 */

function promtool(): string | undefined {
  const r = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? 'promtool' : undefined;
}

describe('deploy/prometheus/alerts.yml', () => {
  const rules = alertRules();

  it('has the alerts the runbook names: error rate, p99 latency, queue saturation, model not ready, drift, store drops', () => {
    const names = rules.flatMap((r) => (r.alert ? [r.alert] : []));
    for (const required of [
      'IcuMortalityHighErrorRate',
      'IcuMortalityHighLatencyP99',
      'IcuMortalityQueueSaturated',
      'IcuMortalityModelNotReady',
      'IcuMortalityPredictionDrift',
      'IcuMortalityLiveAurocBelowDevelopment',
      'IcuMortalityLiveCalibrationOff',
      'IcuMortalityPredictionsDropped',
    ]) {
      assert.ok(names.includes(required), `missing alert ${required}`);
    }
  });

  it('writes every expression in valid PromQL', () => {
    for (const r of rules) {
      const { errors } = analysePromql(r.expr);
      assert.deepEqual(errors, [], `rule ${r.alert ?? r.record} does not parse`);
    }
  });

  it('gives every alert a severity, a summary and a description', () => {
    for (const r of rules.filter((x) => x.alert)) {
      assert.match(r.labels?.severity ?? '', /^(critical|warning|info)$/, `${r.alert} severity`);
      assert.ok(r.annotations?.summary, `${r.alert} summary`);
      assert.ok(r.annotations?.description, `${r.alert} description`);
    }
  });

  it('uses only recording rules that are defined in the file', () => {
    const recorded = new Set(rules.flatMap((r) => (r.record ? [r.record] : [])));
    for (const r of rules) {
      for (const m of analysePromql(r.expr).metrics.filter((x) => x.includes(':'))) {
        assert.ok(recorded.has(m), `${r.alert ?? r.record} reads ${m}, which no rule records`);
      }
    }
  });

  it('leaves 503 load shedding out of the server error rate', () => {
    const r = rules.find((x) => x.alert === 'IcuMortalityHighErrorRate');
    assert.ok(r);
    assert.match(r.expr, /status!="503"/);
  });

  it('passes promtool check rules and its unit tests', (t) => {
    const tool = promtool();
    if (!tool) {
      t.skip('promtool not installed (apt-get install prometheus)');
      return;
    }
    const check = spawnSync(tool, ['check', 'rules', repoPath('deploy', 'prometheus', 'alerts.yml')], {
      encoding: 'utf8',
    });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    const unit = spawnSync(
      tool,
      ['test', 'rules', 'alerts.test.yml', 'alerts-drift.test.yml', 'alerts-monitoring.test.yml'],
      {
        cwd: repoPath('deploy', 'prometheus'),
        encoding: 'utf8',
      },
    );
    assert.equal(unit.status, 0, unit.stdout + unit.stderr);
  });
});

describe('deploy/prometheus/prometheus.yml', () => {
  interface PromConfig {
    rule_files: string[];
    scrape_configs: Array<{ job_name: string; metrics_path?: string; static_configs: Array<{ targets: string[] }> }>;
  }
  const config = readYaml<PromConfig>('deploy', 'prometheus', 'prometheus.yml');

  it('loads the alert rules file', () => {
    assert.deepEqual(config.rule_files, ['alerts.yml']);
  });

  it('scrapes the service under the job name the rules and dashboard select', () => {
    const job = config.scrape_configs.find((s) => s.job_name === 'icu-mortality');
    assert.ok(job, 'no icu-mortality scrape job');
    assert.equal(job.metrics_path ?? '/metrics', '/metrics');
    for (const r of alertRules()) {
      for (const m of r.expr.matchAll(/job="([^"]+)"/g)) assert.equal(m[1], 'icu-mortality', `${r.alert ?? r.record}`);
    }
  });

  it('passes promtool check config', (t) => {
    const tool = promtool();
    if (!tool) {
      t.skip('promtool not installed (apt-get install prometheus)');
      return;
    }
    const r = spawnSync(tool, ['check', 'config', repoPath('deploy', 'prometheus', 'prometheus.yml')], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });
});
