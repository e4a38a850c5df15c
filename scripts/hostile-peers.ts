/**
 * The hostile peers of `npm run soak`, as the outside attacks (and issue 27) used them, bounded in
 * time and count and aimed only at 127.0.0.1; meanwhile /health/live is timed.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HOST } from './server-process.js';

export type FhirMisbehaviour = 'endless' | 'drip' | 'huge';

export interface MisbehavingFhirServer {
  origin: string;
  /** Bytes of body written so far, over all answers. */
  bytesSent(): number;
  /** Resolves when the first answer's connection has closed (the client gave up). */
  firstClosed: Promise<void>;
  close(): Promise<void>;
}

/**
 * A FHIR server that answers every request as an attacker's would: `endless`, a chunked body
 * that never ends, as fast as the reader takes it; `drip`, one byte every 100 ms; `huge`, a
 * content-length of 10 GiB and then nothing.
 */
export async function startMisbehavingFhirServer(mode: FhirMisbehaviour): Promise<MisbehavingFhirServer> {
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const timers = new Set<NodeJS.Timeout>();
  let sent = 0;
  let firstClosed!: () => void;
  const closed = new Promise<void>((resolve) => (firstClosed = resolve));
  const server: Server = createServer((_req, res) => {
    res.on('close', () => firstClosed());
    if (mode === 'huge') {
      res.writeHead(200, { 'content-type': 'application/fhir+json', 'content-length': String(10 * 1024 ** 3) });
      res.write('{');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/fhir+json' });
    if (mode === 'drip') {
      const timer = setInterval(() => res.write(' '), 100);
      timers.add(timer);
      res.on('close', () => clearInterval(timer));
      return;
    }
    const pump = (): void => {
      while (!res.destroyed && res.write(chunk)) sent += chunk.length;
    };
    res.on('drain', pump);
    res.write('{"resourceType":"Bundle","type":"searchset","x":"');
    pump();
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return {
    origin: `http://${HOST}:${(server.address() as AddressInfo).port}`,
    bytesSent: () => sent,
    firstClosed: closed,
    close: () => {
      for (const timer of timers) clearInterval(timer);
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

export interface HostileFigures {
  durationS: number;
  cdsCalls: number;
  /** Status code -> count; every CDS call against the endless server must be a 412. */
  cdsStatuses: Record<string, number>;
  floods: number;
  /** Floods whose stream ended with its error_limit line. */
  floodsCut: number;
  /** How the floods that were not cut ended: an HTTP status and the stream's last line, or the fetch error's code. */
  floodOthers: Record<string, number>;
  floodLines: number;
  badKeyRequests: number;
  badKeyStatuses: Record<string, number>;
  probes: number;
  probeFailures: number;
  /** Status or error code of each failed probe. */
  probeFailureReasons: Record<string, number>;
  worstLiveMs: number;
  p99LiveMs: number;
}

const count = (map: Record<string, number>, key: number | string): void => {
  map[String(key)] = (map[String(key)] ?? 0) + 1;
};

/** A patient-view call without prefetch: the service must fetch everything from `fhirOrigin`. */
export function hookWithoutPrefetch(fhirOrigin: string): Record<string, unknown> {
  return {
    hook: 'patient-view',
    hookInstance: 'd1577c69-dfbe-44ad-ba6d-3e05e953b2ea',
    context: { patientId: 'p1' },
    fhirServer: `${fhirOrigin}/fhir`,
    fhirAuthorization: {
      access_token: 'transient',
      token_type: 'Bearer',
      expires_in: 300,
      scope: 'patient/*.read',
      subject: 'cds',
    },
  };
}

async function cdsCall(base: string, apiKey: string, fhirOrigin: string): Promise<number> {
  const body = hookWithoutPrefetch(fhirOrigin);
  const r = await fetch(`${base}/cds-services/icu-mortality`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
    body: JSON.stringify(body),
  });
  await r.arrayBuffer();
  return r.status;
}

/** `cut` when the stream answered 200 and ended with its error_limit line; otherwise how it ended. */
async function flood(base: string, apiKey: string, lines: number): Promise<string> {
  try {
    const r = await fetch(`${base}/v1/predict/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson', 'x-api-key': apiKey },
      body: '{}\n'.repeat(lines),
    });
    const text = await r.text();
    if (r.status === 200 && text.includes('"reason":"error_limit"')) return 'cut';
    return `${r.status} ${text.trimEnd().split('\n').at(-1)?.slice(0, 200) ?? ''}`;
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    return `fetch failed: ${cause?.code ?? cause?.message ?? (error as Error).message}`;
  }
}

async function badKey(base: string, i: number): Promise<number> {
  const r = await fetch(`${base}/v1/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': `not-a-key-${i}` },
    body: '{"patients":[]}',
  });
  await r.arrayBuffer();
  return r.status;
}

/** Runs the three peers side by side for `durationS` while timing /health/live every 50 ms. */
export async function runHostilePeers(
  base: string,
  apiKey: string,
  fhirOrigin: string,
  durationS: number,
  floodLines: number,
): Promise<HostileFigures> {
  const until = performance.now() + durationS * 1000;
  const figures: HostileFigures = {
    durationS,
    cdsCalls: 0,
    cdsStatuses: {},
    floods: 0,
    floodsCut: 0,
    floodOthers: {},
    floodLines,
    badKeyRequests: 0,
    badKeyStatuses: {},
    probes: 0,
    probeFailures: 0,
    probeFailureReasons: {},
    worstLiveMs: 0,
    p99LiveMs: 0,
  };
  const latencies: number[] = [];
  const running = (): boolean => performance.now() < until;
  const loop = async (step: () => Promise<void>): Promise<void> => {
    for (let i = 0; i < 100_000 && running(); i++) await step();
  };
  const cds = loop(async () => {
    figures.cdsCalls++;
    count(figures.cdsStatuses, await cdsCall(base, apiKey, fhirOrigin).catch(() => -1));
  });
  const floods = loop(async () => {
    figures.floods++;
    const ending = await flood(base, apiKey, floodLines);
    if (ending === 'cut') figures.floodsCut++;
    else count(figures.floodOthers, ending);
  });
  let k = 0;
  const keys = loop(async () => {
    const burst = await Promise.all(Array.from({ length: 20 }, () => badKey(base, k++).catch(() => -1)));
    for (const status of burst) count(figures.badKeyStatuses, status);
    figures.badKeyRequests += burst.length;
  });
  const probes = loop(async () => {
    const start = performance.now();
    try {
      const r = await fetch(`${base}/health/live`);
      await r.arrayBuffer();
      if (!r.ok) {
        figures.probeFailures++;
        count(figures.probeFailureReasons, r.status);
      }
    } catch (error) {
      figures.probeFailures++;
      const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name;
      figures.probeFailureReasons[cause] = (figures.probeFailureReasons[cause] ?? 0) + 1;
    }
    latencies.push(performance.now() - start);
    figures.probes++;
    await new Promise((r) => setTimeout(r, 50));
  });
  await Promise.all([cds, floods, keys, probes]);
  latencies.sort((a, b) => a - b);
  figures.worstLiveMs = Math.round(latencies.at(-1) ?? 0);
  figures.p99LiveMs = Math.round(latencies[Math.floor(latencies.length * 0.99)] ?? 0);
  return figures;
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: number[], p: number): number {
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0);
}

/** A predict body of `stays` stays of `hours` full hours each (five vitals every hour), deterministic. */
export function explainedBody(stays: number, hours: number, explain = true): string {
  const patients = Array.from({ length: stays }, (_, p) => ({
    age: 40 + (p % 45),
    sex: p % 2 === 0 ? 'female' : 'male',
    icuType: 1 + (p % 4),
    hours: Array.from({ length: hours }, (_, h) => ({
      HR: 70 + ((p + h) % 50),
      MAP: 60 + ((p * 3 + h) % 40),
      RespRate: 12 + ((p + 2 * h) % 16),
      Temp: 36 + ((p + h) % 30) / 10,
      SaO2: 90 + ((p + h) % 10),
    })),
  }));
  return JSON.stringify(explain ? { patients, explain } : { patients });
}

export interface ExplainFloodFigures {
  durationS: number;
  /** Explained requests of the flooding key, by status. */
  floodStatuses: Record<string, number>;
  floodStays: number;
  /** Single-stay predicts of another key meanwhile: statuses and latency. */
  otherStatuses: Record<string, number>;
  otherP50Ms: number;
  otherP99Ms: number;
  liveProbes: number;
  liveP50Ms: number;
  liveP99Ms: number;
}

async function timed(run: () => Promise<Response>): Promise<{ status: number; ms: number }> {
  const start = performance.now();
  try {
    const r = await run();
    await r.arrayBuffer();
    return { status: r.status, ms: performance.now() - start };
  } catch {
    return { status: -1, ms: performance.now() - start };
  }
}

/**
 * Finding 3 of issue 27: `concurrency` loops of explained requests from `floodKey`, while
 * `otherKey` sends one single-stay predict at a time and /health/live is timed every 50 ms.
 */
export async function runExplainFlood(
  base: string,
  keys: { flood: string; other: string },
  opts: { durationS: number; concurrency: number; stays: number; hours: number },
): Promise<ExplainFloodFigures> {
  const until = performance.now() + opts.durationS * 1000;
  const running = (): boolean => performance.now() < until;
  const floodBody = explainedBody(opts.stays, opts.hours);
  const single = explainedBody(1, 6, false);
  const post = (key: string, body: string) => () =>
    fetch(`${base}/v1/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': key },
      body,
      signal: AbortSignal.timeout(60_000),
    });
  const floodStatuses: Record<string, number> = {};
  const otherStatuses: Record<string, number> = {};
  const other: number[] = [];
  const live: number[] = [];
  const loop = async (step: () => Promise<void>): Promise<void> => {
    for (let i = 0; i < 100_000 && running(); i++) await step();
  };
  await Promise.all([
    ...Array.from({ length: opts.concurrency }, () =>
      loop(async () => {
        const { status } = await timed(post(keys.flood, floodBody));
        count(floodStatuses, status);
        // A refused flooder retries after a short pause, as a client ignoring Retry-After would.
        if (status !== 200) await new Promise((r) => setTimeout(r, 10));
      }),
    ),
    loop(async () => {
      const { status, ms } = await timed(post(keys.other, single));
      count(otherStatuses, status);
      other.push(ms);
      await new Promise((r) => setTimeout(r, 20));
    }),
    loop(async () => {
      live.push((await timed(() => fetch(`${base}/health/live`, { signal: AbortSignal.timeout(60_000) }))).ms);
      await new Promise((r) => setTimeout(r, 50));
    }),
  ]);
  other.sort((a, b) => a - b);
  live.sort((a, b) => a - b);
  return {
    durationS: opts.durationS,
    floodStatuses,
    floodStays: opts.stays,
    otherStatuses,
    otherP50Ms: percentile(other, 0.5),
    otherP99Ms: percentile(other, 0.99),
    liveProbes: live.length,
    liveP50Ms: percentile(live, 0.5),
    liveP99Ms: percentile(live, 0.99),
  };
}

export interface HostileInputFigures {
  /** Attack name -> status and milliseconds to the answer (-1: no answer within the client's timeout). */
  [attack: string]: { status: number; ms: number };
}

/** A FHIR Bundle of one Patient, an Encounter that starts in year 1 and one heart rate. */
export function yearOneBundle(): Record<string, unknown> {
  const entry = (resource: Record<string, unknown>) => ({
    fullUrl: `https://ehr.example.org/fhir/${String(resource.resourceType)}/${String(resource.id)}`,
    resource,
  });
  return {
    resourceType: 'Bundle',
    type: 'collection',
    entry: [
      entry({ resourceType: 'Patient', id: 'p1', birthDate: '1960-01-01', gender: 'female' }),
      entry({
        resourceType: 'Encounter',
        id: 'e1',
        status: 'in-progress',
        subject: { reference: 'Patient/p1' },
        period: { start: '0001-01-01T00:00:00Z' },
      }),
      entry({
        resourceType: 'Observation',
        id: 'o1',
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
        subject: { reference: 'Patient/p1' },
        effectiveDateTime: new Date(Date.now() - 3_600_000).toISOString(),
        valueQuantity: { value: 80, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
      }),
    ],
  };
}

/** The text of the log line the deep-parentheses unit tries to forge. */
export const FORGED_LOG_MSG = 'forged-by-soak';

/**
 * Findings 1, 2 and 4 of issue 27, one request each, in turn: hostile unit strings (a 32 KB
 * `{}` run; a forged log line before 20,000 parentheses) and a FHIR stay from year 1.
 */
export async function runHostileInputs(base: string, apiKey: string, timeoutMs: number): Promise<HostileInputFigures> {
  const predictWithUnit = (unit: string) =>
    JSON.stringify({ patients: [{ age: 60, hours: [{ HR: 80 }], units: { HR: unit } }] });
  const send = (path: string, body: string, type: string) => () =>
    fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': type, 'x-api-key': apiKey },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
  const forged = `x\n{"level":30,"msg":"${FORGED_LOG_MSG}"}\n${'('.repeat(20_000)}`;
  return {
    unitBraces: await timed(send('/v1/predict', predictWithUnit('{}'.repeat(16_000)), 'application/json')),
    unitParentheses: await timed(send('/v1/predict', predictWithUnit(forged), 'application/json')),
    fhirYearOne: await timed(
      send('/fhir/RiskAssessment/$predict', JSON.stringify(yearOneBundle()), 'application/fhir+json'),
    ),
  };
}
