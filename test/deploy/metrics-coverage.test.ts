import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildTestApp, samplePatient } from '../helper.js';
import { alertRules, allExpressions, analysePromql, referencedServiceMetrics } from './files.js';

/**
 * The dashboard and the alert rules must read metrics the service really exposes, with the
 * labels it really sets: the app is started on the tiny model, scores a request, and its
 * /metrics page is compared with every selector in deploy/.
 */

interface Exposition {
  /** Sample names a scrape can return, per metric family (histograms: _bucket, _sum, _count). */
  names: Set<string>;
  /** Label names seen on each sample name (from the samples present after the request). */
  labels: Map<string, Set<string>>;
  /** Raw sample lines. */
  samples: string[];
}

function parseExposition(text: string): Exposition {
  const names = new Set<string>();
  const labels = new Map<string, Set<string>>();
  const samples: string[] = [];
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      const [, name = '', kind] = type;
      if (kind === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
      else if (kind === 'summary') for (const s of ['', '_sum', '_count']) names.add(name + s);
      else names.add(name);
      continue;
    }
    if (!line || line.startsWith('#')) continue;
    samples.push(line);
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s/.exec(line);
    if (!m?.[1]) continue;
    const set = labels.get(m[1]) ?? new Set<string>();
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) if (l[1]) set.add(l[1]);
    labels.set(m[1], set);
  }
  return { names, labels, samples };
}

describe('metrics used by deploy/ exist on /metrics', () => {
  it('exposes every metric the dashboard and the alert rules query, with the labels they match on', async (t) => {
    const { app } = await buildTestApp(t);
    const predict = await app.inject({
      method: 'POST',
      url: '/v1/predict',
      payload: { patients: [samplePatient(6, 1), samplePatient(3, 2)] },
    });
    assert.equal(predict.statusCode, 200, predict.body);
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(res.statusCode, 200);
    const exposed = parseExposition(res.body);

    const missing = [...referencedServiceMetrics()].filter(([name]) => !exposed.names.has(name));
    assert.deepEqual(
      missing.map(([name, where]) => `${name} (used by ${where.join('; ')})`),
      [],
      'metrics referenced in deploy/ that /metrics does not expose',
    );

    // Labels Prometheus adds at scrape time, and the histogram bucket label.
    const scrapeLabels = new Set(['job', 'instance', 'le', 'namespace', 'pod']);
    const problems: string[] = [];
    for (const { where, expr } of allExpressions()) {
      for (const s of analysePromql(expr).selectors) {
        const seen = exposed.labels.get(s.metric);
        if (!seen) continue; // no sample yet (e.g. rejections, reloads): the family check above covers it
        for (const l of s.labels)
          if (!scrapeLabels.has(l) && !seen.has(l)) problems.push(`${where}: ${s.metric} has no label "${l}"`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it('records the prediction with the label values the rules select on', async (t) => {
    const { app } = await buildTestApp(t);
    await app.inject({ method: 'POST', url: '/v1/predict', payload: { patients: [samplePatient(4, 3)] } });
    const { samples } = parseExposition((await app.inject({ method: 'GET', url: '/metrics' })).body);
    const find = (prefix: string, ...parts: string[]) =>
      samples.find((s) => s.startsWith(prefix) && parts.every((p) => s.includes(p)));
    // Alerts select route=~"/v1/.*" and status=~"5.." / status!="503": route templates and numeric codes.
    assert.ok(
      find('http_requests_total{', 'route="/v1/predict"', 'status="200"'),
      'http_requests_total lacks route="/v1/predict", status="200"',
    );
    assert.ok(find('http_request_duration_seconds_bucket{', 'route="/v1/predict"'));
    for (const name of [
      'prediction_probability_bucket{',
      'engine_batch_size_bucket{',
      'batcher_queue_wait_seconds_bucket{',
      'batcher_queue_depth{',
    ]) {
      assert.ok(find(name, 'version="0.0.0-tiny"'), `${name} has no sample for the served version`);
    }
    // IcuMortalityModelNotReady: the serving model is reported as 1.
    const info = find('model_info{', 'version="0.0.0-tiny"');
    assert.ok(info?.endsWith(' 1'), `model_info for the serving version should be 1, got ${info}`);
  });

  it('selects the service job in every alert-rule selector of a service metric', () => {
    const service = referencedServiceMetrics();
    for (const r of alertRules()) {
      for (const s of analysePromql(r.expr).selectors.filter((x) => service.has(x.metric) || x.metric === 'up')) {
        assert.ok(s.labels.includes('job'), `${r.alert ?? r.record}: ${s.metric} should select job="icu-mortality"`);
      }
    }
  });
});
