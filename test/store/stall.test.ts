/**
 * A PostgreSQL that stops answering without closing its connections (a network partition), played
 * by a TCP proxy that drops what it would forward. Readiness must still answer, and the recorder's
 * writes must fail and be retried rather than wait forever. The bounds below are generous: they
 * can only fail on a hang.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { Registry } from 'prom-client';
import { PredictionRecorder, recorderMetrics } from '../../src/store/recorder.js';
import { openStore, type Store } from '../../src/store/store.js';
import { buildTestApp } from '../helper.js';
import { PG_SKIP, storeConfig } from './backends.js';

const HANG_MS = 20_000;

/** `promise`, or a rejection naming `what` if it has not settled within HANG_MS. */
async function unlessHung<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${HANG_MS} ms`)), HANG_MS);
  });
  try {
    return await Promise.race([promise, hung]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves once `check()` holds, polled every 20 ms; rejects after HANG_MS. */
async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = performance.now() + HANG_MS;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`${what}: not within ${HANG_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A TCP proxy to `target`'s host and port; while `stalled`, bytes are dropped in both directions. */
async function stallingProxy(t: TestContext, target: string) {
  const { hostname, port } = new URL(target);
  const sockets = new Set<net.Socket>();
  const state = { stalled: false };
  const server = net.createServer((downstream) => {
    const upstream = net.connect(Number(port || 5432), hostname);
    for (const [from, to] of [
      [downstream, upstream],
      [upstream, downstream],
    ] as const) {
      sockets.add(from);
      from.on('data', (chunk) => state.stalled || to.write(chunk));
      from.on('error', () => undefined);
      from.on('close', () => {
        sockets.delete(from);
        to.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  const url = new URL(target);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as net.AddressInfo).port);
  return { state, url: url.toString() };
}

async function stalledStore(t: TestContext): Promise<{ store: Store; state: { stalled: boolean } }> {
  const config = await storeConfig(t, 'postgres');
  const proxy = await stallingProxy(t, config.databaseUrl as string);
  const store = openStore(
    { ...config, databaseUrl: proxy.url },
    { probeTtlMs: 0, probeTimeoutMs: 500, postgres: { queryTimeoutMs: 3000, connectionTimeoutMs: 3000 } },
  );
  t.after(() => store.close());
  await store.ready();
  return { store, state: proxy.state };
}

test(
  'readiness answers while PostgreSQL stalls, and reports the store down',
  { skip: PG_SKIP, timeout: 3 * HANG_MS },
  async (t) => {
    const { store, state } = await stalledStore(t);
    const { app } = await buildTestApp(t, { deps: { store } });
    const ready = async () => {
      const response = await unlessHung(app.inject({ method: 'GET', url: '/health/ready' }), 'GET /health/ready');
      assert.equal(response.statusCode, 200);
      return (response.json() as { store: { status: string } }).store.status;
    };
    assert.equal(await ready(), 'up');
    state.stalled = true;
    await ready();
    await until(async () => (await ready()) === 'down', 'readiness saying the store is down');
    state.stalled = false;
    await until(async () => (await ready()) === 'up', 'readiness saying the store is up again');
  },
);

test(
  'a recorder write to a stalled PostgreSQL times out, is retried, and lands once it answers',
  { skip: PG_SKIP, timeout: 3 * HANG_MS },
  async (t) => {
    const { store, state } = await stalledStore(t);
    const registry = new Registry();
    const recorder = new PredictionRecorder({
      store,
      tierOf: () => 'low',
      bufferRows: 10,
      batchRows: 10,
      metrics: recorderMetrics(registry),
      retryMs: 10,
      maxRetryMs: 100,
    });
    const failures = async () =>
      (await registry.getSingleMetric('prediction_store_write_failures_total')?.get())?.values[0]?.value ?? 0;
    state.stalled = true;
    recorder.scored({
      route: 'predict',
      id: 'stall-1',
      result: {
        probability: 0.1,
        model: { name: 'icu-mortality', version: '0.0.0-tiny' },
        hoursUsed: 12,
        truncated: false,
        missingThroughout: [],
        inputProfile: { scenario: 'full', label: 'Full', heldOutAuroc: null },
      },
      model: { name: 'icu-mortality', version: '0.0.0-tiny' },
      at: new Date(Date.UTC(2026, 0, 1)),
    });
    await until(async () => (await failures()) >= 2, 'two failed write attempts');
    state.stalled = false;
    await unlessHung(recorder.flushed(), 'recorder flush');
    const row = await store.client.get<{ n: number }>('SELECT COUNT(*) AS n FROM predictions WHERE subject_key = $1', [
      store.subjectKey('stall-1'),
    ]);
    assert.equal(Number(row?.n), 1);
    await recorder.close(1000);
  },
);
