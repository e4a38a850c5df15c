import assert from 'node:assert/strict';
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import autocannon from 'autocannon';
import { holdRequest, startServer } from '../../scripts/server-process.js';
import { samplePatient } from '../helper.js';

/**
 * SIGTERM while the real server (a child process on loopback) is under load: requests it
 * had already received finish with 200, the process exits 0 well within its grace period,
 * and the load generator sees no 5xx other than 503.
 */

describe('SIGTERM under load', { timeout: 120_000 }, () => {
  it('answers the requests in flight at SIGTERM, then exits 0', async (t) => {
    const server = await startServer({
      env: { SHUTDOWN_GRACE_MS: '20000', MAX_BATCH_SIZE: '64', MAX_QUEUE_SIZE: '2048' },
    });
    t.after(() => server.dispose());
    const headers = { 'x-api-key': server.apiKey };
    const patients = Array.from({ length: 16 }, (_, i) => samplePatient(1 + ((i * 7) % 48), i + 1, `p${i}`));
    const heldBody = JSON.stringify({ patients });

    // Background load, bounded in time and count.
    const load = autocannon({
      url: server.base,
      connections: 16,
      amount: 20_000,
      duration: 30,
      requests: [
        {
          method: 'POST',
          path: '/v1/predict',
          headers: { ...headers, 'content-type': 'application/json' },
          body: JSON.stringify({ patients: patients.slice(0, 4) }),
        },
      ],
    });
    // Wait (on events, not time) until the load is really being served.
    await new Promise<void>((resolve) => {
      let n = 0;
      // autocannon emits (client, statusCode, bytes, latency), whatever its typings say.
      (load as unknown as NodeJS.EventEmitter).on('response', (_client: unknown, status: number) => {
        if (status === 200 && ++n === 50) resolve();
      });
    });

    // Requests whose headers the server has received and routed: in flight at SIGTERM.
    const agent = new Agent({ keepAlive: true });
    t.after(() => agent.destroy());
    const held = await Promise.all(
      Array.from({ length: 4 }, () => holdRequest(server.base, '/v1/predict', heldBody, headers, agent)),
    );

    server.child.kill('SIGTERM');
    const answers = await Promise.all(held.map((h) => h.finish()));
    const exit = await server.exited;
    // The listener is gone: stop the load generator instead of letting it retry until its duration.
    (load as unknown as { stop(): void }).stop();
    const loadResult = await load;

    for (const a of answers) {
      assert.equal(a.status, 200, a.body);
      const body = JSON.parse(a.body) as { results: Array<{ id?: string; probability?: number }> };
      assert.deepEqual(
        body.results.map((r) => r.id),
        patients.map((p) => p.id),
      );
      assert.ok(body.results.every((r) => typeof r.probability === 'number'));
    }
    assert.deepEqual(exit, { code: 0, signal: null }, server.output.join('\n'));
    const codes = loadResult.statusCodeStats as unknown as Record<string, { count: number }>;
    const bad = Object.keys(codes).filter((c) => Number(c) >= 500 && Number(c) !== 503);
    assert.deepEqual(bad, [], `load saw ${JSON.stringify(codes)}`);
    assert.ok((codes['200']?.count ?? 0) >= 50);
  });
});

describe('SIGTERM with an open NDJSON stream', { timeout: 120_000 }, () => {
  it('ends the stream with a shutting_down line after the last answered line, audits it, exits 0', async (t) => {
    const server = await startServer({ env: { SHUTDOWN_GRACE_MS: '20000', LOG_LEVEL: 'info' } });
    t.after(() => server.dispose());
    const req = httpRequest(`${server.base}/v1/predict/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson', 'x-api-key': server.apiKey },
    });
    req.on('error', () => undefined);
    const response = new Promise<IncomingMessage>((resolve) => req.on('response', resolve));
    for (let i = 1; i <= 2; i++) req.write(`${JSON.stringify(samplePatient(3 + i, i, `s${i}`))}\n`);
    const res = await response;
    res.setEncoding('utf8');
    let text = '';
    let sentSignal = false;
    await new Promise<void>((resolve) => {
      res.on('data', (chunk: string) => {
        text += chunk;
        // Both lines answered and the request still open: only the shutdown can end it now.
        if (!sentSignal && text.split('\n').length > 2) {
          sentSignal = true;
          server.child.kill('SIGTERM');
        }
      });
      res.on('end', resolve);
    });
    const lines = text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, 3);
    assert.deepEqual(lines[2], {
      end: {
        reason: 'shutting_down',
        afterLine: 2,
        message: 'the service is shutting down: lines after 2 were not scored; resubmit them from line 3',
      },
    });
    assert.deepEqual(await server.exited, { code: 0, signal: null }, server.output.join('\n'));
    const audit = server.output
      .filter((l) => l.includes('"audit":true'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(audit.length, 1, server.output.join('\n'));
    assert.equal(audit[0]?.cut, 'shutting_down');
    assert.equal(audit[0]?.patientCount, 2);
  });
});
