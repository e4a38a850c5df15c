import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { buildTestApp, gatedEngine, samplePatient } from '../helper.js';

test('over a real socket, a prediction request is answered (the request body being read does not abort it)', async (t) => {
  const { app } = await buildTestApp(t);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  const res = await fetch(`http://127.0.0.1:${port}/v1/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ patients: [samplePatient(48, 3), samplePatient(1, 4)] }),
  });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { results: Array<{ probability: number }> };
  assert.equal(body.results.length, 2);
});

test('a client that disconnects leaves no work behind in the queue', { timeout: 30_000 }, async (t) => {
  const gated = gatedEngine();
  const { app } = await buildTestApp(t, { env: { MAX_BATCH_SIZE: '1' }, deps: { factories: gated.factories } });
  t.after(() => gated.open());
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  const batcher = app.models.active!.batcher;
  const payload = JSON.stringify({ patients: [1, 2, 3, 4, 5].map((i) => samplePatient(4, i)) });
  const req = request({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: '/v1/predict',
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
  });
  req.on('error', () => {});
  req.end(payload);
  // Wait until the stays are queued behind the held batch, then hang up.
  while (batcher.depth === 0) await new Promise((resolve) => setImmediate(resolve));
  req.destroy();
  while (batcher.depth > 0) await new Promise((resolve) => setImmediate(resolve));
  assert.equal(batcher.depth, 0);
  gated.open();
});
