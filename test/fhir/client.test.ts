import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { startMisbehavingFhirServer, type FhirMisbehaviour } from '../../scripts/hostile-peers.js';
import { createFhirClient, FhirFetchError, originAllowed, withDeadline } from '../../src/fhir/client.js';

type FetchCall = { url: string; headers: Record<string, string> };

function fakeFetch(routes: Record<string, { status?: number; body: unknown }>, calls: FetchCall[]): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const url = String(input);
    calls.push({ url, headers: (init?.headers ?? {}) as Record<string, string> });
    const route = routes[url];
    if (!route) return new Response('not found', { status: 404 });
    return new Response(JSON.stringify(route.body), {
      status: route.status ?? 200,
      headers: { 'content-type': 'application/fhir+json' },
    });
  }) as typeof fetch;
}

const BASE = 'https://ehr.example.org/fhir';
const signal = new AbortController().signal;

describe('FHIR client for CDS Hooks fetches', () => {
  test('only allow-listed origins, by exact scheme, host and port', () => {
    assert.equal(originAllowed('https://ehr.example.org/fhir', ['https://ehr.example.org']), true);
    assert.equal(originAllowed('http://ehr.example.org/fhir', ['https://ehr.example.org']), false);
    assert.equal(originAllowed('https://ehr.example.org:8443/fhir', ['https://ehr.example.org']), false);
    assert.equal(originAllowed('https://ehr.example.org.evil.example/fhir', ['https://ehr.example.org']), false);
    assert.equal(originAllowed('file:///etc/passwd', ['https://ehr.example.org']), false);
    assert.throws(
      () =>
        createFhirClient({
          baseUrl: 'https://other.example/fhir',
          accessToken: 't',
          allowedOrigins: ['https://ehr.example.org'],
          signal,
        }),
      FhirFetchError,
    );
  });

  test('a search follows next links on the same server and sends the bearer token', async () => {
    const calls: FetchCall[] = [];
    const routes = {
      [`${BASE}/Observation?patient=p1`]: {
        body: {
          resourceType: 'Bundle',
          type: 'searchset',
          entry: [
            { resource: { id: 'a' } },
            { resource: { resourceType: 'OperationOutcome' }, search: { mode: 'outcome' } },
          ],
          link: [{ relation: 'next', url: `${BASE}/Observation?page=2` }],
        },
      },
      [`${BASE}/Observation?page=2`]: {
        body: { resourceType: 'Bundle', type: 'searchset', entry: [{ resource: { id: 'b' } }] },
      },
    };
    const client = createFhirClient({
      baseUrl: BASE,
      accessToken: 'tok',
      allowedOrigins: ['https://ehr.example.org'],
      signal,
      fetchImpl: fakeFetch(routes, calls),
    });
    const resources = await client.search('Observation?patient=p1');
    assert.deepEqual(resources, [{ id: 'a' }, { id: 'b' }]);
    assert.ok(calls.every((c) => c.headers.authorization === 'Bearer tok'));
  });

  test('a next link to another origin is refused rather than followed', async () => {
    const calls: FetchCall[] = [];
    const routes = {
      [`${BASE}/Observation?patient=p1`]: {
        body: {
          resourceType: 'Bundle',
          type: 'searchset',
          entry: [],
          link: [{ relation: 'next', url: 'http://169.254.169.254/latest/meta-data' }],
        },
      },
    };
    const client = createFhirClient({
      baseUrl: BASE,
      accessToken: 'tok',
      allowedOrigins: ['https://ehr.example.org'],
      signal,
      fetchImpl: fakeFetch(routes, calls),
    });
    await assert.rejects(
      client.search('Observation?patient=p1'),
      (e: unknown) => e instanceof FhirFetchError && /outside the FHIR server/.test(e.message),
    );
    assert.equal(calls.length, 1);
  });

  test('HTTP errors and non-JSON answers become FhirFetchError without the body', async () => {
    const calls: FetchCall[] = [];
    const client = createFhirClient({
      baseUrl: BASE,
      accessToken: 'tok',
      allowedOrigins: ['https://ehr.example.org'],
      signal,
      fetchImpl: fakeFetch({ [`${BASE}/Patient/p1`]: { status: 401, body: { secret: 'x' } } }, calls),
    });
    await assert.rejects(
      client.read('Patient/p1'),
      (e: unknown) => e instanceof FhirFetchError && e.message === 'the FHIR server answered HTTP 401',
    );
  });

  test('the page count is bounded', async () => {
    const calls: FetchCall[] = [];
    const loop = {
      resourceType: 'Bundle',
      type: 'searchset',
      entry: [{ resource: { id: 'x' } }],
      link: [{ relation: 'next', url: `${BASE}/loop` }],
    };
    const client = createFhirClient({
      baseUrl: BASE,
      accessToken: 'tok',
      allowedOrigins: ['https://ehr.example.org'],
      signal,
      maxPages: 3,
      fetchImpl: fakeFetch({ [`${BASE}/loop`]: { body: loop } }, calls),
    });
    assert.equal((await client.search('loop')).length, 3);
    assert.equal(calls.length, 3);
  });
});

async function misbehaving(t: TestContext, mode: FhirMisbehaviour) {
  const server = await startMisbehavingFhirServer(mode);
  t.after(() => server.close());
  return server;
}

describe('FHIR client against a misbehaving server', () => {
  test('an endless chunked body is cut at the byte cap and the connection is dropped', async (t) => {
    const server = await misbehaving(t, 'endless');
    const { origin } = server;
    const deadline = withDeadline(new AbortController().signal, 10_000);
    t.after(() => deadline.dispose());
    const client = createFhirClient({
      baseUrl: `${origin}/endless`,
      accessToken: 't',
      allowedOrigins: [origin],
      signal: deadline.signal,
      maxBytes: 1024 * 1024,
    });
    await assert.rejects(
      client.read('Patient/p1'),
      (e: unknown) => e instanceof FhirFetchError && e.message === 'the FHIR server answer is larger than allowed',
    );
    await server.firstClosed;
    // What the server managed to write is bounded by the cap plus the socket buffers, not by the server.
    assert.ok(server.bytesSent() < 32 * 1024 * 1024, `server wrote ${server.bytesSent()} bytes`);
  });

  test('a body dripped one byte at a time ends at the deadline', async (t) => {
    const { origin } = await misbehaving(t, 'drip');
    const deadline = withDeadline(new AbortController().signal, 300);
    t.after(() => deadline.dispose());
    const client = createFhirClient({
      baseUrl: `${origin}/drip`,
      accessToken: 't',
      allowedOrigins: [origin],
      signal: deadline.signal,
    });
    await assert.rejects(
      client.read('Patient/p1'),
      (e: unknown) => e instanceof FhirFetchError && e.message === 'the FHIR server did not answer in time',
    );
  });

  test('a content-length over the cap is refused before the body is read', async (t) => {
    const { origin } = await misbehaving(t, 'huge');
    const client = createFhirClient({ baseUrl: `${origin}/huge`, accessToken: 't', allowedOrigins: [origin], signal });
    await assert.rejects(
      client.read('Patient/p1'),
      (e: unknown) => e instanceof FhirFetchError && e.message === 'the FHIR server answer is larger than allowed',
    );
  });

  test('withDeadline aborts on its own timer and follows its parent', async () => {
    const timed = withDeadline(new AbortController().signal, 20);
    await new Promise((resolve) => timed.signal.addEventListener('abort', resolve, { once: true }));
    assert.equal((timed.signal.reason as DOMException).name, 'TimeoutError');
    const parent = new AbortController();
    const followed = withDeadline(parent.signal, 60_000);
    parent.abort(new Error('client gone'));
    assert.equal(followed.signal.aborted, true);
    followed.dispose();
  });
});
