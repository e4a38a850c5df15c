import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildTestApp, samplePatient } from '../helper.js';

/** The answer of POST /v1/predict for these patients: the reference the stream must match. */
async function predictViaApi(
  app: Awaited<ReturnType<typeof buildTestApp>>['app'],
  patients: unknown[],
): Promise<Map<string, number>> {
  const res = await app.inject({ method: 'POST', url: '/v1/predict', payload: { patients } });
  assert.equal(res.statusCode, 200, res.body);
  const out = new Map<string, number>();
  for (const r of res.json().results as Array<{ id: string; probability: number }>) out.set(r.id, r.probability);
  return out;
}

function ndjson(lines: unknown[]): string {
  return lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n');
}

function parseLines(body: string): Array<Record<string, unknown>> {
  return body
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('stream answers every line in input order, with an error object for a malformed or invalid line', async (t) => {
  const { app } = await buildTestApp(t);
  const a = samplePatient(5, 1, 'a');
  const b = samplePatient(30, 2, 'b');
  const c = samplePatient(1, 3, 'c');
  const bad = samplePatient(3, 4, 'bad');
  (bad.hours as Array<Record<string, number>>)[2]!.HR = 999;
  const body = ndjson([a, '{"id": "x", "hours": [', b, bad, '', c, '[1,2]']);
  const res = await app.inject({
    method: 'POST',
    url: '/v1/predict/stream',
    headers: { 'content-type': 'application/x-ndjson' },
    payload: body,
  });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^application\/x-ndjson/);
  const lines = parseLines(res.body);
  assert.deepEqual(
    lines.map((l) => l.line),
    [1, 2, 3, 4, 6, 7],
  );

  const reference = await predictViaApi(app, [a, b, c]);
  assert.equal(lines[0]!.id, 'a');
  assert.equal(lines[0]!.probability, reference.get('a'));
  assert.deepEqual(lines[0]!.model, { name: 'icu-mortality', version: '0.0.0-tiny' });
  assert.equal(lines[0]!.hoursUsed, 5);
  assert.deepEqual(lines[1], {
    line: 2,
    error: { error: 'invalid_json', message: 'line 2 is not valid JSON', details: [] },
  });
  assert.equal(lines[2]!.probability, reference.get('b'));
  const invalid = lines[3] as {
    line: number;
    id: string;
    error: { error: string; details: Array<{ path: string; message: string }> };
  };
  assert.equal(invalid.id, 'bad');
  assert.equal(invalid.error.error, 'validation_failed');
  assert.deepEqual(
    invalid.error.details.map((d) => d.path),
    ['hours.2.HR'],
  );
  assert.equal(lines[4]!.probability, reference.get('c'));
  const notObject = lines[5] as { error: { error: string; details: unknown[] } };
  assert.equal(notObject.error.error, 'validation_failed');
  assert.ok(notObject.error.details.length > 0);
});

test('stream keeps input order across many batches of mixed lengths', async (t) => {
  // MAX_BATCH_SIZE 64 in tests: 300 stays make several batches, which the batcher regroups by length.
  const { app } = await buildTestApp(t);
  const patients = Array.from({ length: 300 }, (_, i) => samplePatient(1 + ((i * 37) % 48), 100 + i, `p${i}`));
  const res = await app.inject({
    method: 'POST',
    url: '/v1/predict/stream',
    headers: { 'content-type': 'application/x-ndjson; charset=utf-8' },
    payload: ndjson(patients),
  });
  assert.equal(res.statusCode, 200);
  const lines = parseLines(res.body);
  assert.deepEqual(
    lines.map((l) => l.id),
    patients.map((p) => p.id),
  );
  assert.deepEqual(
    lines.map((l) => l.line),
    patients.map((_, i) => i + 1),
  );
  const reference = await predictViaApi(app, patients);
  for (const l of lines) assert.equal(l.probability, reference.get(l.id as string), `probability of ${String(l.id)}`);
});

test('stream refuses a body that is not NDJSON with 415', async (t) => {
  const { app } = await buildTestApp(t);
  const res = await app.inject({
    method: 'POST',
    url: '/v1/predict/stream',
    payload: { patients: [samplePatient(2)] },
  });
  assert.equal(res.statusCode, 415);
  assert.equal(res.json().error, 'unsupported_media_type');
});

test('stream of an empty body answers an empty stream', async (t) => {
  const { app } = await buildTestApp(t);
  const res = await app.inject({
    method: 'POST',
    url: '/v1/predict/stream',
    headers: { 'content-type': 'application/x-ndjson' },
    payload: '',
  });
  assert.equal(res.statusCode, 200);
  assert.equal(res.body, '');
});

test('stream answers 404 when the client asks for a version that is not served', async (t) => {
  const { app } = await buildTestApp(t);
  const res = await app.inject({
    method: 'POST',
    url: '/v1/predict/stream?version=9.9.9',
    headers: { 'content-type': 'application/x-ndjson' },
    payload: ndjson([samplePatient(2)]),
  });
  assert.equal(res.statusCode, 404);
  assert.equal(res.json().error, 'model_not_found');
});

test('a client that disconnects mid-stream stops the reading and leaves no queued work or model lease', async (t) => {
  const { request } = await import('node:http');
  const { Readable } = await import('node:stream');
  const { app } = await buildTestApp(t);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as import('node:net').AddressInfo;
  const model = app.models.active!;
  let generated = 0;
  // An endless cohort: only the server's reading (and the socket) can stop it.
  const body = new Readable({
    read() {
      let chunk = '';
      for (let k = 0; k < 50; k++)
        chunk += `${JSON.stringify(samplePatient(1 + (generated % 48), generated, `d${generated++}`))}\n`;
      this.push(chunk);
    },
  });
  await new Promise<void>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v1/predict/stream',
        headers: { 'content-type': 'application/x-ndjson' },
      },
      (res) => {
        res.once('data', () => {
          // First results are in: hang up.
          req.destroy();
          body.destroy();
          resolve();
        });
        res.on('error', () => undefined);
      },
    );
    req.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' ? undefined : reject(e)));
    body.pipe(req);
  });
  // The server notices the hang-up on its next turns of the event loop; no timer involved.
  for (let turn = 0; turn < 100_000 && (model.leases > 0 || model.batcher.depth > 0); turn++) {
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.equal(model.leases, 0, 'the stream released its model lease');
  assert.equal(model.batcher.depth, 0, 'no stays of the stream are left in the queue');
  // The service still answers.
  const res = await app.inject({
    method: 'POST',
    url: '/v1/predict/stream',
    headers: { 'content-type': 'application/x-ndjson' },
    payload: JSON.stringify(samplePatient(2, 1, 'after')),
  });
  assert.equal(JSON.parse(res.body).id, 'after');
});
