import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { holdRequest } from '../../scripts/server-process.js';
import { buildTestApp, samplePatient, type TestApp } from '../helper.js';

/**
 * Slow and disconnecting clients, over real loopback sockets: a client that sends its body
 * slowly (or never) does not hold up anyone else, and a client that goes away mid-request
 * leaves no error and no queued work behind.
 */

async function listening(
  t: Parameters<typeof buildTestApp>[0],
  env: Record<string, string> = {},
): Promise<TestApp & { base: string }> {
  const test = await buildTestApp(t, { env });
  const address = await test.app.listen({ port: 0, host: '127.0.0.1' });
  return { ...test, base: address };
}

function body(patients: number, hours: number, seed: number): string {
  return JSON.stringify({
    patients: Array.from({ length: patients }, (_, i) =>
      samplePatient(1 + ((hours + i) % hours), seed + i, `s${seed}-${i}`),
    ),
  });
}

async function predict(base: string, payload: string): Promise<number> {
  const r = await fetch(`${base}/v1/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: payload,
  });
  await r.arrayBuffer();
  return r.status;
}

async function queueDepth(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return [...text.matchAll(/^batcher_queue_depth\{[^}]*\} (\S+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

describe('slow and disconnecting clients', { timeout: 120_000 }, () => {
  it('serves other clients while slow clients hold requests open mid-body', async (t) => {
    const { base } = await listening(t);
    const agent = new Agent({ keepAlive: false });
    t.after(() => agent.destroy());
    const slowBody = body(4, 24, 100);
    // Three requests the server has received and routed, whose bodies are still to come; one
    // has sent half of its body already.
    const slow = await Promise.all([0, 1, 2].map(() => holdRequest(base, '/v1/predict', slowBody, {}, agent)));
    slow[0]?.request.write(slowBody.slice(0, slowBody.length >> 1));

    const others = await Promise.all(Array.from({ length: 20 }, (_, i) => predict(base, body(2, 12, i))));
    assert.deepEqual(others, Array(20).fill(200));

    // The slow clients are still served once they finish (the first one sends only the rest).
    const answers = await Promise.all(
      slow.map(async (h, i) => {
        if (i === 0) {
          h.request.end(slowBody.slice(slowBody.length >> 1));
          return (await h.answer).status;
        }
        return (await h.finish()).status;
      }),
    );
    assert.deepEqual(answers, [200, 200, 200]);
  });

  it('shrugs off clients that disconnect mid-body or before their answer, and keeps serving', async (t) => {
    const { base, logs } = await listening(t);
    const agent = new Agent({ keepAlive: false });
    t.after(() => agent.destroy());

    // Gone halfway through sending the body.
    const half = await holdRequest(base, '/v1/predict', body(8, 24, 200), {}, agent);
    half.request.write('{"patients": [');
    half.request.destroy();

    // Gone right after sending a large request: its stays may be queued or running.
    const big = body(300, 48, 300);
    const leaving = await holdRequest(base, '/v1/predict', big, {}, agent);
    leaving.request.end(big);
    await new Promise<void>((resolve) => leaving.request.once('finish', resolve));
    leaving.request.destroy();

    const after = await Promise.all(Array.from({ length: 10 }, (_, i) => predict(base, body(3, 10, 400 + i))));
    assert.deepEqual(after, Array(10).fill(200));
    // Once a later request has been answered, nothing of the departed clients waits in the queue.
    assert.equal(await queueDepth(base), 0);
    // Disconnects are not server errors.
    const errors = logs.lines.filter((l) => (JSON.parse(l) as { level: number }).level >= 50);
    assert.deepEqual(errors, []);
    const live = await fetch(`${base}/health/live`);
    assert.equal(live.status, 200);
  });

  it('closes a connection whose headers trickle in past HEADERS_TIMEOUT_MS, with a 408', async (t) => {
    const { base } = await listening(t, { HEADERS_TIMEOUT_MS: '400' });
    const { hostname, port } = new URL(base);
    const socket = connect(Number(port), hostname);
    let received = '';
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
    });
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    let open = true;
    void closed.then(() => {
      open = false;
    });
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write('GET /health/live HTTP/1.1\r\nHost: localhost\r\nX-Slow: ');
    // One header byte every 100 ms for up to 8 s, twenty times the limit: the server must cut it
    // well before (Node's default check interval alone is 30 s).
    for (let i = 0; i < 80 && open; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      if (open) socket.write('a');
    }
    const stillOpen = open;
    socket.destroy();
    await closed;
    assert.equal(stillOpen, false, 'the server still held the trickling connection after 8 s');
    assert.match(received, /^HTTP\/1\.1 408 /);
  });
});
