import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildTestApp, samplePatient } from '../helper.js';

/**
 * What a healthy service shows a dashboard: every rejection reason as a series from start-up,
 * and batch-size buckets whose quantiles read true batch sizes.
 */

/** Prometheus's histogram_quantile for one series: linear within the bucket holding the rank (its docs' algorithm). */
function histogramQuantile(q: number, buckets: Array<[number, number]>): number {
  const total = buckets.at(-1)?.[1] ?? 0;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) return lower + ((le - lower) * (rank - below)) / (count - below);
    lower = le;
    below = count;
  }
  return Number.NaN;
}

test('rejection reasons are exported at 0 before anything is rejected', async (t) => {
  const { app } = await buildTestApp(t);
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  for (const reason of ['queue_full', 'draining', 'under_pressure', 'timeout']) {
    assert.match(text, new RegExp(`^rejected_requests_total\\{reason="${reason}"\\} 0$`, 'm'), reason);
  }
});

test('batches of one stay read as batch size 1 at the median and the 99th percentile', async (t) => {
  const { app } = await buildTestApp(t);
  for (let i = 0; i < 5; i++)
    assert.equal(
      (await app.inject({ method: 'POST', url: '/v1/predict', payload: { patients: [samplePatient(3, i + 1)] } }))
        .statusCode,
      200,
    );
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  const buckets = [...text.matchAll(/^engine_batch_size_bucket\{le="([^"]+)",[^}]*\} (\d+)$/gm)]
    .filter((m) => m[1] !== '+Inf')
    .map((m): [number, number] => [Number(m[1]), Number(m[2])]);
  assert.ok(buckets.length > 0, text);
  // The warm-up batch is one stay too: every batch so far held exactly one.
  assert.ok(Math.abs(histogramQuantile(0.5, buckets) - 1) < 1e-9);
  assert.ok(Math.abs(histogramQuantile(0.99, buckets) - 1) < 0.5);
});
