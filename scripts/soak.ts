/**
 * Soak / overload run against the real server on loopback: capacity, 5x overload, recovery,
 * the hostile peers of the outside attack, with DATABASE_URL a PostgreSQL outage under the
 * prediction store, SIGTERM with requests in flight (phases and failure rules:
 * docs/operations.md, "Soak"). Every loop is bounded and targets 127.0.0.1 only.
 *
 *   npm run soak [-- --short] [--model-dir <dir>] [--factor <n>] [--max-rss-mb <n>] [--json <file>]
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { Agent, type IncomingHttpHeaders } from 'node:http';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import {
  FORGED_LOG_MSG,
  runExplainFlood,
  runHostileInputs,
  runHostilePeers,
  startMisbehavingFhirServer,
} from './hostile-peers.js';
import { holdRequest, ROOT, startServer } from './server-process.js';
import { runStoreOutage, type OutageResult } from './store-outage.js';

const { values: args } = parseArgs({
  options: {
    short: { type: 'boolean', default: false },
    'model-dir': { type: 'string' },
    factor: { type: 'string', default: '5' },
    'max-rss-mb': { type: 'string', default: '1024' },
    json: { type: 'string' },
  },
});

const SHORT = args.short ?? false;
const PLAN = SHORT
  ? {
      calibrateS: 3,
      overloadS: 10,
      recoveryS: 6,
      hostileS: 8,
      explainFloodS: 8,
      overloadConnections: 256,
      patientsPerRequest: 8,
      hours: 24,
    }
  : {
      calibrateS: 10,
      overloadS: 60,
      recoveryS: 30,
      hostileS: 20,
      explainFloodS: 20,
      overloadConnections: 256,
      patientsPerRequest: 8,
      hours: 48,
    };
/** Lines of `{}` per flood: the size that delayed probes by seconds before streams yielded on invalid lines. */
const FLOOD_LINES = 200_000;
const MAX_LIVE_MS = 1000;
/** Explained-request flood (issue 27, finding 3): 8 loops from one key, 4 full stays a request (within its share). */
const EXPLAIN_FLOOD = { concurrency: 8, stays: 4 };
/** Another caller's single-stay p99 while one key floods (bench/RESULTS.md, "Fair sharing"). */
const MAX_OTHER_P99_MS = 3000;
/** Hostile unit strings and a year-1 FHIR stay must be answered 4xx within this (bench/RESULTS.md, issue 27). */
const MAX_HOSTILE_INPUT_MS = 2000;
const FACTOR = Number(args.factor);
const MAX_RSS_MB = Number(args['max-rss-mb']);
/** Server settings: a small queue so that several times capacity fills it within seconds. */
const SERVER_ENV = {
  MODEL_NAME: 'icu-mortality',
  MAX_BATCH_SIZE: '64',
  MAX_QUEUE_DELAY_MS: '2',
  MAX_QUEUE_SIZE: '512',
  INTRA_OP_THREADS: '1',
  ENGINE_WORKERS: '1',
  REQUEST_TIMEOUT_MS: '10000',
  SHUTDOWN_GRACE_MS: '10000',
};
/** With DATABASE_URL (and SITE_ID_KEY) the store is PostgreSQL, stopped and started mid-run. */
const DATABASE_URL = process.env.DATABASE_URL;
const OUTAGE = SHORT
  ? { beforeS: 2, downS: 5, afterS: 3, patientsPerRequest: 4 }
  : { beforeS: 5, downS: 20, afterS: 10, patientsPerRequest: 8 };

function log(msg: string): void {
  process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/** The repository's default model for full runs when it has one; the tiny fixture otherwise (and in --short). */
function modelDir(): { dir?: string; label: string } {
  const given = args['model-dir'];
  if (given) return { dir: resolve(given), label: resolve(given) };
  const bundled = join(ROOT, 'models', 'icu-mortality');
  const hasBundled =
    existsSync(bundled) && readdirSync(bundled).some((v) => existsSync(join(bundled, v, 'model.onnx')));
  if (!SHORT && hasBundled) return { dir: join(ROOT, 'models'), label: 'models/ (default model)' };
  return { label: 'test/fixtures/tiny-model' };
}

/** Deterministic plausible stays (values inside the manifest bounds). */
function requestBody(patients: number, hours: number, seed: number): string {
  let s = seed >>> 0 || 1;
  const rand = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const list = Array.from({ length: patients }, (_, p) => ({
    age: 30 + Math.round(rand() * 55),
    sex: rand() < 0.5 ? 'female' : 'male',
    icuType: 1 + Math.floor(rand() * 4),
    hours: Array.from({ length: 1 + ((hours + p) % hours) }, () => ({
      HR: Math.round(60 + rand() * 70),
      MAP: Math.round(55 + rand() * 45),
      RespRate: Math.round(10 + rand() * 20),
      ...(rand() < 0.3 ? { Temp: Math.round((35.5 + rand() * 4) * 10) / 10 } : {}),
      ...(rand() < 0.2 ? { Lactate: Math.round((0.5 + rand() * 5) * 10) / 10 } : {}),
    })),
  }));
  return JSON.stringify({ patients: list });
}

interface RssSample {
  t: number;
  rssKb: number;
}

async function readRssKb(pid: number): Promise<{ rss: number; hwm: number } | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
    const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1]);
    return { rss, hwm };
  } catch {
    return undefined;
  }
}

interface PhaseCounts {
  sent: number;
  s2xx: number;
  s503: number;
  s4xx: number;
  s5xxOther: number;
  errors: number;
  missingRetryAfter: number;
  durationS: number;
  rps: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
}

async function cannon(
  url: string,
  body: string,
  headers: Record<string, string>,
  opts: { connections: number; durationS: number; overallRate?: number; amount?: number },
): Promise<PhaseCounts> {
  let missingRetryAfter = 0;
  const result = await autocannon({
    url,
    connections: opts.connections,
    duration: opts.durationS,
    ...(opts.amount ? { amount: opts.amount } : {}),
    ...(opts.overallRate ? { overallRate: opts.overallRate } : {}),
    timeout: 30,
    requests: [
      {
        method: 'POST',
        path: '/v1/predict',
        headers,
        body,
        onResponse: (status: number, _body: string, _ctx: object, headers: IncomingHttpHeaders | undefined) => {
          if (status === 503 && !headers?.['retry-after']) missingRetryAfter++;
        },
      },
    ],
  });
  const codes = result.statusCodeStats as unknown as Record<string, { count: number }>;
  const count = (pred: (c: number) => boolean) =>
    Object.entries(codes).reduce((n, [c, v]) => n + (pred(Number(c)) ? v.count : 0), 0);
  return {
    sent: result.requests.sent,
    s2xx: count((c) => c >= 200 && c < 300),
    s503: count((c) => c === 503),
    s4xx: count((c) => c >= 400 && c < 500),
    s5xxOther: count((c) => c >= 500 && c !== 503),
    errors: result.errors,
    missingRetryAfter,
    durationS: result.duration,
    rps: result.requests.average,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
  };
}

async function main(): Promise<number> {
  const model = modelDir();
  log(`model: ${model.label}; plan ${JSON.stringify(PLAN)}, overload x${FACTOR}`);
  const endlessFhir = await startMisbehavingFhirServer('endless');
  // Without DATABASE_URL the server's SQLite store lives in a temporary folder, not ./data.
  const dataDir = await mkdtemp(join(tmpdir(), 'icu-soak-data-'));
  log(`prediction store: ${DATABASE_URL ? 'PostgreSQL (DATABASE_URL)' : `SQLite in ${dataDir}`}`);
  const server = await startServer({
    env: { ...SERVER_ENV, CDS_FHIR_SERVERS: endlessFhir.origin, DATA_DIR: dataDir },
    scopes: 'predict cds',
    ...(model.dir ? { modelDir: model.dir } : {}),
  });
  const base = server.base;
  const headers = { 'content-type': 'application/json', 'x-api-key': server.apiKey };
  let exit: { code: number | null; signal: NodeJS.Signals | null; at: number } | undefined;
  void server.exited.then((e) => (exit = { ...e, at: performance.now() }));
  log(`server ${base} (pid ${server.pid}) ready`);

  const samples: RssSample[] = [];
  const t0 = performance.now();
  const sampler = setInterval(() => {
    void readRssKb(server.pid).then(
      (m) => m && Number.isFinite(m.rss) && samples.push({ t: performance.now() - t0, rssKb: m.rss }),
    );
  }, 200);
  const rssNow = async (): Promise<number> => (await readRssKb(server.pid))?.rss ?? samples.at(-1)?.rssKb ?? 0;

  const failures: string[] = [];
  try {
    const body = requestBody(PLAN.patientsPerRequest, PLAN.hours, 7);

    // 1. Capacity: a light closed loop (2 connections) close to the engine's throughput.
    const calibrate = await cannon(base, body, headers, { connections: 2, durationS: PLAN.calibrateS });
    const capacity = Math.max(1, calibrate.s2xx / calibrate.durationS);
    const rssBaselineKb = await rssNow();
    log(
      `capacity ~${capacity.toFixed(0)} req/s (${(capacity * PLAN.patientsPerRequest).toFixed(0)} stays/s), p50 ${calibrate.latencyP50Ms} ms`,
    );

    // 2. Overload: FACTOR x capacity from many connections, while /health/live is polled.
    const offered = Math.ceil(capacity * FACTOR);
    let liveOk = 0;
    let liveFail = 0;
    let probing = true;
    const prober = (async () => {
      while (probing && !exit) {
        try {
          const r = await fetch(`${base}/health/live`);
          if (r.ok) liveOk++;
          else liveFail++;
          await r.arrayBuffer();
        } catch {
          liveFail++;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    const overload = await cannon(base, body, headers, {
      connections: PLAN.overloadConnections,
      durationS: PLAN.overloadS,
      overallRate: offered,
    });
    probing = false;
    await prober;
    const overloadEnd = performance.now();
    const rssEndOverloadKb = await rssNow();
    log(`overload: offered ${offered} req/s, ${JSON.stringify(overload)}`);

    // 3. Recovery: sequential requests at a quarter of capacity; recovery time = from the end
    // of the overload to the first 2xx after which every answer is 2xx.
    const recovery: Array<{ at: number; status: number }> = [];
    const gapMs = Math.max(20, 1000 / Math.max(1, capacity * 0.25));
    const recoveryDeadline = performance.now() + PLAN.recoveryS * 1000;
    for (let i = 0; i < 10_000 && performance.now() < recoveryDeadline && !exit; i++) {
      let status = 0;
      try {
        const r = await fetch(`${base}/v1/predict`, { method: 'POST', headers, body });
        status = r.status;
        await r.arrayBuffer();
      } catch {
        status = -1;
      }
      recovery.push({ at: performance.now(), status });
      await new Promise((r) => setTimeout(r, gapMs));
    }
    // (findLastIndex is ES2023, above the project's TypeScript lib.)
    let lastBad = -1;
    recovery.forEach((r, i) => {
      if (r.status < 200 || r.status >= 300) lastBad = i;
    });
    const recovered = recovery.length >= 5 && lastBad < recovery.length - 5;
    const firstGood = recovery[lastBad + 1];
    const recoveryMs = recovered && firstGood ? firstGood.at - overloadEnd : Number.NaN;
    const rssEndRecoveryKb = await rssNow();
    const lowCounts = {
      sent: recovery.length,
      s2xx: recovery.filter((r) => r.status >= 200 && r.status < 300).length,
      s503: recovery.filter((r) => r.status === 503).length,
      s5xxOther: recovery.filter((r) => r.status >= 500 && r.status !== 503).length,
      errors: recovery.filter((r) => r.status === -1).length,
    };
    log(`recovery: ${JSON.stringify(lowCounts)}, recovered in ${recoveryMs.toFixed(0)} ms`);

    // 4. Hostile peers, side by side, with /health/live timed throughout.
    const hostileStart = samples.length;
    const hostile = await runHostilePeers(base, server.apiKey, endlessFhir.origin, PLAN.hostileS, FLOOD_LINES);
    const hostilePeakRssKb = Math.max(0, ...samples.slice(hostileStart).map((x) => x.rssKb));
    log(`hostile peers: ${JSON.stringify(hostile)}, peak RSS ${(hostilePeakRssKb / 1024).toFixed(1)} MB`);

    // 4b. Issue 27: one key floods explained requests while another sends single stays; then
    // hostile unit strings and a FHIR stay from year 1, one request each.
    const floodStart = samples.length;
    const explainFlood = await runExplainFlood(
      base,
      { flood: server.apiKey, other: server.otherApiKey },
      { durationS: PLAN.explainFloodS, ...EXPLAIN_FLOOD, hours: PLAN.hours },
    );
    const floodPeakRssKb = Math.max(0, ...samples.slice(floodStart).map((x) => x.rssKb));
    const hostileInputs = await runHostileInputs(base, server.apiKey, 15_000);
    const forgedLogLines = server.output.filter(
      (line) => line.trim() === `{"level":30,"msg":"${FORGED_LOG_MSG}"}`,
    ).length;
    log(
      `explain flood: ${JSON.stringify(explainFlood)}, peak RSS ${(floodPeakRssKb / 1024).toFixed(1)} MB; hostile inputs: ${JSON.stringify(hostileInputs)}, forged log lines ${forgedLogLines}`,
    );

    // 4c. The prediction store's PostgreSQL stopped and started while scoring goes on (issue 30).
    let outage: OutageResult | undefined;
    if (DATABASE_URL) {
      const template = JSON.parse(requestBody(OUTAGE.patientsPerRequest, PLAN.hours, 13)) as {
        patients: Array<Record<string, unknown>>;
      };
      outage = await runStoreOutage(base, server.apiKey, {
        databaseUrl: DATABASE_URL,
        siteKey: process.env.SITE_ID_KEY ?? '',
        plan: OUTAGE,
        body: (ids) => JSON.stringify({ patients: template.patients.map((p, i) => ({ ...p, id: ids[i] })) }),
        log,
      });
      log(`store outage: ${JSON.stringify(outage)}`);
    } else {
      log('store outage: skipped (DATABASE_URL unset: the embedded SQLite store has no server to stop)');
    }

    // 5. SIGTERM under load: background load at capacity, plus requests the server has
    // provably received (Expect: 100-continue answered) whose bodies are sent after the signal.
    const background = autocannon({
      url: base,
      connections: 8,
      duration: 10,
      amount: 50_000,
      overallRate: Math.ceil(capacity),
      requests: [{ method: 'POST', path: '/v1/predict', headers, body }],
    });
    const agent = new Agent({ keepAlive: true });
    const held = await Promise.all(
      Array.from({ length: 6 }, () =>
        holdRequest(base, '/v1/predict', requestBody(32, PLAN.hours, 11), { 'x-api-key': server.apiKey }, agent),
      ),
    );
    const termAt = performance.now();
    server.child.kill('SIGTERM');
    const drained = (await Promise.all(held.map((h) => h.finish().catch(() => ({ status: -1, body: '' }))))).map(
      (a) => a.status,
    );
    // unref: a timer left running would hold the process for its 30 s after the server has exited.
    const exitInfo = await Promise.race([
      server.exited,
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 30_000).unref()),
    ]);
    (background as unknown as { stop(): void }).stop();
    const bg = await background;
    agent.destroy();
    const bgCodes = bg.statusCodeStats as unknown as Record<string, { count: number }>;
    const bgOther5xx = Object.entries(bgCodes).reduce(
      (n, [c, v]) => n + (Number(c) >= 500 && Number(c) !== 503 ? v.count : 0),
      0,
    );
    const exitMs = exit ? exit.at - termAt : Number.NaN;
    log(
      `SIGTERM: in-flight answers ${JSON.stringify(drained)}, background ${JSON.stringify(bgCodes)}, exit ${JSON.stringify(exitInfo)} after ${exitMs.toFixed(0)} ms`,
    );

    clearInterval(sampler);
    const peakRssKb = Math.max(...samples.map((x) => x.rssKb));

    const total = {
      sent: calibrate.sent + overload.sent + lowCounts.sent + drained.length + bg.requests.sent,
      s2xx:
        calibrate.s2xx +
        overload.s2xx +
        lowCounts.s2xx +
        drained.filter((x) => x >= 200 && x < 300).length +
        (bg['2xx'] ?? 0),
      s503:
        calibrate.s503 +
        overload.s503 +
        lowCounts.s503 +
        drained.filter((x) => x === 503).length +
        (bgCodes['503']?.count ?? 0),
      s5xxOther:
        calibrate.s5xxOther +
        overload.s5xxOther +
        lowCounts.s5xxOther +
        drained.filter((x) => x >= 500 && x !== 503).length +
        bgOther5xx,
      errors: calibrate.errors + overload.errors + lowCounts.errors + drained.filter((x) => x === -1).length,
      /** Sent but never answered: in flight when a load phase ended, or sent after SIGTERM closed the listener. */
      unanswered: 0,
    };
    total.unanswered =
      total.sent -
      total.s2xx -
      total.s503 -
      total.s5xxOther -
      total.errors -
      calibrate.s4xx -
      overload.s4xx -
      (bg['4xx'] ?? 0);
    const summary = {
      mode: SHORT ? 'short' : 'full',
      model: model.label,
      capacityReqPerS: Math.round(capacity),
      offeredReqPerS: offered,
      calibrate,
      overload,
      healthLiveDuringOverload: { ok: liveOk, failed: liveFail },
      recovery: { ...lowCounts, recovered, recoveryMs: Math.round(recoveryMs) },
      hostile: { ...hostile, peakRssMb: +(hostilePeakRssKb / 1024).toFixed(1) },
      explainFlood: { ...explainFlood, peakRssMb: +(floodPeakRssKb / 1024).toFixed(1) },
      hostileInputs: { ...hostileInputs, forgedLogLines },
      storeOutage: outage ?? null,
      sigterm: {
        inflightStatuses: drained,
        background: {
          sent: bg.requests.sent,
          statusCodes: Object.fromEntries(Object.entries(bgCodes).map(([c, v]) => [c, v.count])),
          connectionErrorsAfterListenerClosed: bg.errors,
        },
        exitCode: exit?.code ?? null,
        exitSignal: exit?.signal ?? null,
        exitMs: Math.round(exitMs),
      },
      rssMb: {
        baseline: +(rssBaselineKb / 1024).toFixed(1),
        endOfOverload: +(rssEndOverloadKb / 1024).toFixed(1),
        endOfRecovery: +(rssEndRecoveryKb / 1024).toFixed(1),
        peak: +(peakRssKb / 1024).toFixed(1),
      },
      total,
    };

    if (total.s5xxOther > 0) failures.push(`${total.s5xxOther} 5xx answers other than 503`);
    if (total.errors > 0) failures.push(`${total.errors} connection errors while the server was listening`);
    if (overload.missingRetryAfter > 0) failures.push(`${overload.missingRetryAfter} 503s without Retry-After`);
    if (overload.s503 === 0) failures.push('the overload produced no 503: it did not exceed capacity');
    if (liveFail > 0) failures.push(`/health/live failed ${liveFail} times under overload`);
    if (!recovered) failures.push('the service did not recover (the last recovery requests were not all 2xx)');
    if (Object.keys(hostile.cdsStatuses).some((c) => c !== '412'))
      failures.push(
        `CDS calls against an endless FHIR server answered ${JSON.stringify(hostile.cdsStatuses)}, not 412 alone`,
      );
    if (hostile.floodsCut !== hostile.floods)
      failures.push(
        `${hostile.floods - hostile.floodsCut} of ${hostile.floods} invalid-line floods did not end with their error_limit line: ${JSON.stringify(hostile.floodOthers)}`,
      );
    if (Object.keys(hostile.badKeyStatuses).some((c) => c !== '401'))
      failures.push(`bad keys answered ${JSON.stringify(hostile.badKeyStatuses)}, not 401 alone`);
    if (hostile.probeFailures > 0 || hostile.worstLiveMs > MAX_LIVE_MS)
      failures.push(
        `/health/live during the hostile peers: ${hostile.probeFailures} failed, worst ${hostile.worstLiveMs} ms (limit ${MAX_LIVE_MS})`,
      );
    if (explainFlood.otherP99Ms > MAX_OTHER_P99_MS || Object.keys(explainFlood.otherStatuses).some((c) => c !== '200'))
      failures.push(
        `another caller during the explain flood: p99 ${explainFlood.otherP99Ms} ms (limit ${MAX_OTHER_P99_MS}), statuses ${JSON.stringify(explainFlood.otherStatuses)}`,
      );
    if (explainFlood.liveP99Ms > MAX_LIVE_MS)
      failures.push(`/health/live during the explain flood: p99 ${explainFlood.liveP99Ms} ms (limit ${MAX_LIVE_MS})`);
    if (Object.keys(explainFlood.floodStatuses).some((c) => c !== '200' && c !== '503'))
      failures.push(`the explain flood was answered ${JSON.stringify(explainFlood.floodStatuses)}, not 200/503 alone`);
    if (floodPeakRssKb / 1024 > MAX_RSS_MB)
      failures.push(
        `peak RSS during the explain flood ${(floodPeakRssKb / 1024).toFixed(0)} MB above ${MAX_RSS_MB} MB`,
      );
    for (const [attack, { status, ms }] of Object.entries(hostileInputs)) {
      if (status < 400 || status >= 500 || ms > MAX_HOSTILE_INPUT_MS)
        failures.push(
          `${attack}: answered ${status} after ${Math.round(ms)} ms (expected 4xx within ${MAX_HOSTILE_INPUT_MS} ms)`,
        );
    }
    if (outage) {
      if (Object.keys(outage.statuses).some((c) => c !== '200'))
        failures.push(`scoring during the store outage answered ${JSON.stringify(outage.statuses)}, not 200 alone`);
      if (Object.keys(outage.readyStatuses).some((c) => c !== '200'))
        failures.push(`/health/ready during the store outage: ${JSON.stringify(outage.readyStatuses)}, not 200 alone`);
      if (outage.lost !== 0)
        failures.push(`${outage.lost} of ${outage.scoredWithId} results scored around the store outage were lost`);
    }
    if (forgedLogLines > 0) failures.push(`a hostile unit string wrote ${forgedLogLines} forged line(s) into the log`);
    if (drained.some((x) => x !== 200))
      failures.push(`requests in flight at SIGTERM were not all answered 200: ${drained.join(',')}`);
    if (!exit || exit.code !== 0) failures.push(`server did not exit 0 after SIGTERM: ${JSON.stringify(exit)}`);
    if (peakRssKb / 1024 > MAX_RSS_MB)
      failures.push(`peak RSS ${(peakRssKb / 1024).toFixed(0)} MB above ${MAX_RSS_MB} MB`);

    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    process.stdout.write(
      `\nsoak (${summary.mode}): sent ${total.sent}, 2xx ${total.s2xx}, 503 ${total.s503}, other 5xx ${total.s5xxOther}, unanswered ${total.unanswered} (generator stopped / listener closed), ` +
        `connection errors ${total.errors}; capacity ~${summary.capacityReqPerS} req/s, offered ${offered} req/s; ` +
        `peak RSS ${summary.rssMb.peak} MB (baseline ${summary.rssMb.baseline}, end of overload ${summary.rssMb.endOfOverload}, after recovery ${summary.rssMb.endOfRecovery}); ` +
        `recovery ${summary.recovery.recoveryMs} ms; hostile peers: ${hostile.cdsCalls} CDS calls to an endless FHIR server (${JSON.stringify(hostile.cdsStatuses)}), ` +
        `${hostile.floods} floods of ${FLOOD_LINES} invalid lines (${hostile.floodsCut} cut), ${hostile.badKeyRequests} bad keys, /health/live worst ${hostile.worstLiveMs} ms p99 ${hostile.p99LiveMs} ms, peak RSS ${summary.hostile.peakRssMb} MB; ` +
        `explain flood (${EXPLAIN_FLOOD.concurrency} x ${EXPLAIN_FLOOD.stays} stays, one key, ${JSON.stringify(explainFlood.floodStatuses)}): other key single-stay p50 ${explainFlood.otherP50Ms} ms p99 ${explainFlood.otherP99Ms} ms ${JSON.stringify(explainFlood.otherStatuses)}, /health/live p99 ${explainFlood.liveP99Ms} ms, peak RSS ${summary.explainFlood.peakRssMb} MB; ` +
        `hostile inputs: ${Object.entries(hostileInputs)
          .map(([attack, { status, ms }]) => `${attack} ${status} in ${Math.round(ms)} ms`)
          .join(', ')}, forged log lines ${forgedLogLines}; ${
          outage
            ? `store outage: PostgreSQL down ${(outage.downMs / 1000).toFixed(1)} s, ${outage.requests} requests ${JSON.stringify(outage.statuses)}, /health/ready ${JSON.stringify(outage.readyStatuses)}, ${outage.scoredWithId} results with ids, ${outage.recorded} in the store after it, rows lost ${outage.lost} (dropped ${outage.droppedTotal}, failed writes retried ${outage.failedWrites}, drained in ${outage.drainMs} ms)`
            : 'store outage: skipped (no DATABASE_URL)'
        }; SIGTERM: ${drained.length} in-flight answered ${[...new Set(drained)].join('/')}, exit ${summary.sigterm.exitCode} in ${summary.sigterm.exitMs} ms\n`,
    );
    if (args.json) await writeFile(args.json, JSON.stringify({ ...summary, failures }, null, 2));
  } catch (error) {
    failures.push(error instanceof Error ? (error.stack ?? error.message) : String(error));
  } finally {
    clearInterval(sampler);
    await server.dispose();
    await endlessFhir.close();
    await rm(dataDir, { recursive: true, force: true });
  }
  if (exit?.signal === 'SIGKILL') failures.push('the server had to be killed');
  if (failures.length > 0) {
    process.stdout.write(
      `\nSOAK FAILED:\n  ${failures.join('\n  ')}\nserver output (last lines):\n${server.output.join('\n')}\n`,
    );
    return 1;
  }
  process.stdout.write('soak passed\n');
  return 0;
}

process.exitCode = await main();
