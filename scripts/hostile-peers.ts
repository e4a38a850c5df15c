/**
 * The hostile peers of `npm run soak`: what the outside attack used, bounded in time and count
 * and aimed only at 127.0.0.1. An endless FHIR server behind CDS Hooks calls, a flood of
 * invalid NDJSON lines, a burst of bad API keys; meanwhile /health/live is timed.
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

async function flood(base: string, apiKey: string, lines: number): Promise<boolean> {
  const r = await fetch(`${base}/v1/predict/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson', 'x-api-key': apiKey },
    body: '{}\n'.repeat(lines),
  });
  const text = await r.text();
  return r.status === 200 && text.includes('"reason":"error_limit"');
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
    if (await flood(base, apiKey, floodLines).catch(() => false)) figures.floodsCut++;
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
