import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { describe, test, type TestContext } from 'node:test';
import Fastify from 'fastify';
import { hookWithoutPrefetch, startMisbehavingFhirServer, type FhirMisbehaviour } from '../../scripts/hostile-peers.js';
import { errorHandler } from '../../src/http/errors.js';
import { buildTestApp, gatedEngine, samplePatient } from '../helper.js';

/**
 * Regression tests for the findings of the outside attack on the running service (each failed
 * on the code before the fix): error handling of any thrown value, reload path traversal,
 * stream error budgets and shutdown, audit lines of aborted calls, FHIR fetches from a
 * misbehaving server through CDS Hooks, connection limits, compressed bodies, FHIR ids.
 */

type LogLine = Record<string, unknown>;

/** Logs as parsed lines, with an event per line so tests await a line instead of sleeping. */
function observedLogs(): {
  stream: Writable;
  lines: LogLine[];
  next(match: (l: LogLine) => boolean): Promise<LogLine>;
} {
  const lines: LogLine[] = [];
  const events = new EventEmitter();
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const text of chunk.toString('utf8').split('\n')) {
        if (!text) continue;
        const line = JSON.parse(text) as LogLine;
        lines.push(line);
        events.emit('line', line);
      }
      done();
    },
  });
  const next = (match: (l: LogLine) => boolean): Promise<LogLine> => {
    const seen = lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => {
      const on = (line: LogLine): void => {
        if (!match(line)) return;
        events.off('line', on);
        resolve(line);
      };
      events.on('line', on);
    });
  };
  return { stream, lines, next };
}

const auditLines = (lines: LogLine[]): LogLine[] => lines.filter((l) => l.audit === true);

async function listen(app: Awaited<ReturnType<typeof buildTestApp>>['app']): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

/** The app listening on loopback, its logs observed line by line. */
async function listeningApp(t: TestContext, deps: Parameters<typeof buildTestApp>[1] = {}) {
  const logs = observedLogs();
  const { app } = await buildTestApp(t, { ...deps, deps: { logStream: logs.stream, ...deps.deps } });
  return { app, logs, base: await listen(app) };
}

/** Opens a streaming request; `lines()` resolves with the response's lines once it ends. */
function openStream(base: string): { req: ReturnType<typeof httpRequest>; response: Promise<IncomingMessage> } {
  const req = httpRequest(`${base}/v1/predict/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
  });
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.on('response', resolve);
    req.on('error', reject);
  });
  req.flushHeaders();
  return { req, response };
}

/** Reads NDJSON lines from a response, resolving `until(n)` once n lines have come. */
function lineReader(res: IncomingMessage): { lines: string[]; until(n: number): Promise<void>; ended: Promise<void> } {
  const lines: string[] = [];
  let buffer = '';
  const events = new EventEmitter();
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    buffer += chunk;
    let nl;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      lines.push(buffer.slice(0, nl));
      buffer = buffer.slice(nl + 1);
    }
    events.emit('lines');
  });
  const ended = new Promise<void>((resolve, reject) => {
    res.on('end', resolve);
    res.on('error', reject);
  });
  const until = (n: number): Promise<void> =>
    lines.length >= n
      ? Promise.resolve()
      : new Promise((resolve) => {
          const on = (): void => {
            if (lines.length < n) return;
            events.off('lines', on);
            resolve();
          };
          events.on('lines', on);
        });
  return { lines, until, ended };
}

describe('the error handler', () => {
  test('any thrown value gets the API error shape and is logged once', async (t) => {
    const logs = observedLogs();
    const app = Fastify({ logger: { level: 'info', stream: logs.stream } });
    t.after(() => app.close());
    app.setErrorHandler(errorHandler);
    const thrown: Record<string, () => unknown> = {
      timeout: () => new DOMException('The operation was aborted due to timeout', 'TimeoutError'),
      string: () => 'a bare string',
      numericCode: () => ({ code: 42, message: 'not an Error' }),
      numericCodeError: () => Object.assign(new Error('boom'), { code: 7 }),
      statusNotANumber: () => Object.assign(new Error('odd'), { statusCode: '500' }),
    };
    for (const [name, make] of Object.entries(thrown)) {
      app.get(`/${name}`, async () => {
        throw make();
      });
    }
    for (const name of Object.keys(thrown)) {
      const res = await app.inject({ method: 'GET', url: `/${name}` });
      assert.equal(res.statusCode, 500, name);
      assert.deepEqual(res.json(), { error: 'internal_error', message: 'internal server error', details: [] }, name);
    }
    const failures = logs.lines.filter((l) => l.msg === 'request failed');
    assert.equal(failures.length, Object.keys(thrown).length, 'one log line per failed request');
    assert.ok(!logs.lines.some((l) => l.msg === 'the error handler failed'));
  });
});

describe('model reload', () => {
  test('versions that are paths are refused; messages name no path', async (t) => {
    const { app, modelRoot } = await buildTestApp(t);
    for (const version of ['../../x', '/etc', '..', '0.0.0-tiny/../0.0.0-tiny', 'a//b']) {
      const res = await app.inject({ method: 'POST', url: '/admin/models/reload', payload: { version } });
      assert.equal(res.statusCode, 400, version);
      assert.equal((res.json() as { details: Array<{ path: string }> }).details[0]?.path, 'version', version);
    }
    const missing = await app.inject({ method: 'POST', url: '/admin/models/reload', payload: { version: '9.9.9' } });
    assert.equal(missing.statusCode, 404);
    assert.ok(!missing.body.includes(modelRoot) && !missing.body.includes('/'), missing.body);
    // The repository itself takes only folders it lists, whatever reaches it.
    await assert.rejects(app.models.reload({ version: '../icu-mortality/0.0.0-tiny' }), /is not in the model folder/);
    assert.equal(app.models.active?.version, '0.0.0-tiny');
  });
});

describe('NDJSON streams', () => {
  test('after STREAM_MAX_ERROR_LINES invalid lines the stream ends with one error_limit line', async (t) => {
    const { app, logs } = await buildTestApp(t, { env: { STREAM_MAX_ERROR_LINES: '100' } });
    const res = await app.inject({
      method: 'POST',
      url: '/v1/predict/stream',
      headers: { 'content-type': 'application/x-ndjson' },
      payload: '{}\n'.repeat(5000),
    });
    assert.equal(res.statusCode, 200);
    const lines = res.body
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, 101);
    assert.ok(
      lines
        .slice(0, 100)
        .every((l, i) => l.line === i + 1 && (l.error as { error: string }).error === 'validation_failed'),
    );
    assert.deepEqual(lines[100], {
      end: {
        reason: 'error_limit',
        afterLine: 100,
        message:
          'more than 100 lines were invalid: the stream was ended after line 100; check the input, then resubmit from line 101',
      },
    });
    const audit = auditLines(logs.lines.map((l) => JSON.parse(l) as LogLine));
    assert.equal(audit.length, 1);
    assert.equal(audit[0]?.cut, 'error_limit');
    assert.equal(audit[0]?.patientCount, 100);
  });

  test('a stream under the limit has no end line', async (t) => {
    const { app } = await buildTestApp(t, { env: { STREAM_MAX_ERROR_LINES: '100' } });
    const body = `${'{}\n'.repeat(100)}${JSON.stringify(samplePatient(3, 1))}\n`;
    const res = await app.inject({
      method: 'POST',
      url: '/v1/predict/stream',
      headers: { 'content-type': 'application/x-ndjson' },
      payload: body,
    });
    const lines = res.body
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, 101);
    assert.equal(typeof lines[100]?.probability, 'number');
  });

  test('shutting down ends an open stream with a shutting_down line after the last answered line', async (t) => {
    const { app, logs, base } = await listeningApp(t);
    const { req, response } = openStream(base);
    for (let i = 1; i <= 3; i++) req.write(`${JSON.stringify(samplePatient(2 + i, i, `p${i}`))}\n`);
    const reader = lineReader(await response);
    await reader.until(3);
    // The client keeps its request open: only the shutdown can end this stream.
    const closed = app.close();
    await reader.ended;
    await closed;
    assert.equal(reader.lines.length, 4);
    assert.deepEqual(JSON.parse(reader.lines[3] as string), {
      end: {
        reason: 'shutting_down',
        afterLine: 3,
        message: 'the service is shutting down: lines after 3 were not scored; resubmit them from line 4',
      },
    });
    const audit = auditLines(logs.lines);
    assert.equal(audit.length, 1);
    assert.equal(audit[0]?.cut, 'shutting_down');
    assert.equal(audit[0]?.outcome, 'success');
    req.destroy();
  });
});

describe('audit lines of calls whose client went away', () => {
  test('a stream closed by its client mid-answer is audited once as aborted', async (t) => {
    const { app, logs, base } = await listeningApp(t);
    const { req, response } = openStream(base);
    req.write(`${JSON.stringify(samplePatient(4, 1, 'p1'))}\n`);
    const reader = lineReader(await response);
    await reader.until(1);
    reader.ended.catch(() => undefined);
    req.on('error', () => undefined);
    req.destroy();
    const line = await logs.next((l) => l.audit === true);
    assert.equal(line.outcome, 'aborted');
    assert.equal(line.route, '/v1/predict/stream');
    await app.close();
    assert.equal(auditLines(logs.lines).length, 1);
  });

  test('a predict whose client disconnected while it was scored is audited once as aborted', async (t) => {
    const gated = gatedEngine();
    let started!: () => void;
    const runStarted = new Promise<void>((resolve) => (started = resolve));
    const createEngine = gated.factories.createEngine;
    assert.ok(createEngine);
    const { app, logs, base } = await listeningApp(t, {
      deps: {
        factories: {
          createEngine: async (files) => {
            const engine = await createEngine(files);
            return {
              provider: engine.provider,
              close: () => engine.close(),
              run: (batch) => {
                const answer = engine.run(batch);
                if (gated.runs() > 0) started();
                return answer;
              },
            };
          },
        },
      },
    });
    const req = httpRequest(`${base}/v1/predict`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    req.on('error', () => undefined);
    req.end(JSON.stringify({ patients: [samplePatient(5, 1, 'p1'), samplePatient(6, 2, 'p2')] }));
    await runStarted;
    req.destroy();
    const line = await logs.next((l) => l.audit === true);
    assert.equal(line.outcome, 'aborted');
    assert.equal(line.patientCount, 2);
    assert.equal(line.status, null);
    gated.open();
    await app.close();
    assert.equal(auditLines(logs.lines).length, 1);
  });
});

describe('CDS Hooks against a misbehaving FHIR server', () => {
  async function fhirServer(t: TestContext, mode: FhirMisbehaviour): Promise<string> {
    const server = await startMisbehavingFhirServer(mode);
    t.after(() => server.close());
    return server.origin;
  }

  for (const mode of ['endless', 'drip'] as const) {
    test(`a ${mode} FHIR answer ends in 412 within the fetch budget, memory bounded`, async (t) => {
      const origin = await fhirServer(t, mode);
      // Each bound on its own: an endless answer must hit the size cap long before a 30 s deadline
      // (whatever the machine's load), a drip one the 500 ms deadline long before the cap.
      const { app } = await buildTestApp(t, {
        env: { CDS_FHIR_SERVERS: origin, FHIR_FETCH_TIMEOUT_MS: mode === 'endless' ? '30000' : '500' },
      });
      const before = process.memoryUsage().rss;
      const res = await app.inject({
        method: 'POST',
        url: '/cds-services/icu-mortality',
        payload: hookWithoutPrefetch(origin),
      });
      assert.equal(res.statusCode, 412, res.body);
      assert.match(
        (res.json() as { message: string }).message,
        mode === 'endless' ? /larger than allowed/ : /did not answer in time/,
      );
      // The per-response cap is 16 MiB: far below the gigabytes an unbounded read reached.
      assert.ok(process.memoryUsage().rss - before < 256 * 1024 * 1024);
    });
  }
});

describe('connections and request envelopes', () => {
  test('MAX_CONNECTIONS caps open sockets; keep-alive and header timeouts come from config', async (t) => {
    const { app, base } = await listeningApp(t, {
      env: { MAX_CONNECTIONS: '2', KEEP_ALIVE_TIMEOUT_MS: '4000', HEADERS_TIMEOUT_MS: '7000' },
    });
    assert.equal(app.server.keepAliveTimeout, 4000);
    assert.equal(app.server.headersTimeout, 7000);
    const port = Number(new URL(base).port);
    const sockets: Socket[] = [];
    for (let i = 0; i < 2; i++) {
      const accepted = new Promise((resolve) => app.server.once('connection', resolve));
      sockets.push(connect(port, '127.0.0.1'));
      await accepted;
    }
    const third = connect(port, '127.0.0.1');
    sockets.push(third);
    third.on('error', () => undefined);
    await new Promise((resolve) => third.once('close', resolve));
    assert.equal(sockets[0]?.destroyed, false);
    assert.equal(sockets[1]?.destroyed, false);
    // Before the app closes (an after hook): it waits for sockets that never sent a request.
    for (const socket of sockets) socket.destroy();
  });

  test('a compressed request body is 415, not parsed as plain JSON', async (t) => {
    const { app } = await buildTestApp(t);
    const res = await app.inject({
      method: 'POST',
      url: '/v1/predict',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      payload: Buffer.from([0x1f, 0x8b, 8, 0]),
    });
    assert.equal(res.statusCode, 415);
    assert.equal((res.json() as { error: string }).error, 'unsupported_content_encoding');
    const identity = await app.inject({
      method: 'POST',
      url: '/v1/predict',
      headers: { 'content-encoding': 'identity' },
      payload: { patients: [samplePatient(2, 1)] },
    });
    assert.equal(identity.statusCode, 200);
  });

  test('CDS patientId and encounterId must be FHIR ids: ".." never becomes a request for the base URL', async (t) => {
    const { app } = await buildTestApp(t, { env: { CDS_FHIR_SERVERS: 'https://ehr.example.org' } });
    for (const [field, context] of [
      ['context.patientId', { patientId: '..' }],
      ['context.patientId', { patientId: 'a/b' }],
      ['context.encounterId', { patientId: 'p1', encounterId: '.' }],
    ] as const) {
      const res = await app.inject({
        method: 'POST',
        url: '/cds-services/icu-mortality',
        payload: {
          hook: 'patient-view',
          hookInstance: 'h1',
          context,
          fhirServer: 'https://ehr.example.org/fhir',
          fhirAuthorization: { access_token: 'tok' },
        },
      });
      assert.equal(res.statusCode, 400, JSON.stringify(context));
      assert.equal((res.json() as { details: Array<{ path: string }> }).details[0]?.path, field);
    }
  });
});
