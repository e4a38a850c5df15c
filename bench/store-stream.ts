/**
 * The prediction store under a cohort stream: 30,000 48-hour stays, each with an id (so each is
 * recorded), posted as NDJSON to /v1/predict/stream of a real server with a fresh DATA_DIR
 * (SQLite). Prints stays per second, and the latency of GET /health/live asked one at a time
 * meanwhile: a store write that blocks the server's event loop shows as a long probe. CPU seconds
 * of the server's main thread and of the whole process (/proc, Linux) are less disturbed than
 * throughput when other jobs share the machine.
 * Run: node --import tsx bench/store-stream.ts [stays]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from './http.js';
import { syntheticPatient } from './payload.js';

const stays = Number(process.argv[2] ?? 30_000);
const dir = await mkdtemp(join(tmpdir(), 'bench-store-stream-'));
const body = join(dir, 'cohort.ndjson');
const templates = Array.from({ length: 64 }, (_, i) => syntheticPatient(48, 1 + i));
await writeFile(
  body,
  Array.from({ length: stays }, (_, i) => `${JSON.stringify({ id: `stay-${i}`, ...templates[i % 64] })}\n`).join(''),
);

/** utime + stime in seconds from a /proc stat file (clock ticks of 10 ms). */
function cpuSeconds(statFile: string): number {
  const stat = readFileSync(statFile, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const server = await startServer();
const mainCpu = (): number => cpuSeconds(`/proc/${server.pid}/task/${server.pid}/stat`);
const processCpu = (): number => cpuSeconds(`/proc/${server.pid}/stat`);
try {
  // curl in its own process sends the body, so this one's event loop is free for the probes.
  const curl = spawn('curl', [
    '-sS',
    '-o',
    join(dir, 'out.ndjson'),
    '-w',
    '%{http_code}',
    '-H',
    'content-type: application/x-ndjson',
    '-H',
    `x-api-key: ${server.apiKey}`,
    '--data-binary',
    `@${body}`,
    `${server.url}/v1/predict/stream`,
  ]);
  let status = '';
  curl.stdout.on('data', (chunk: Buffer) => (status += chunk.toString()));
  const t0 = performance.now();
  const cpu0 = { main: mainCpu(), process: processCpu() };
  const done = once(curl, 'exit');
  let finished = false;
  void done.then(() => (finished = true));
  const probes: number[] = [];
  while (!finished) {
    const start = performance.now();
    await (await fetch(`${server.url}/health/live`)).arrayBuffer();
    probes.push(performance.now() - start);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = { main: mainCpu() - cpu0.main, process: processCpu() - cpu0.process };
  if (status !== '200') throw new Error(`stream answered ${status}`);
  probes.sort((a, b) => a - b);
  const at = (q: number): string =>
    (probes[Math.min(probes.length - 1, Math.floor(q * probes.length))] ?? NaN).toFixed(1);
  console.log(
    JSON.stringify({
      stays,
      seconds: Number(seconds.toFixed(2)),
      staysPerSecond: Math.round(stays / seconds),
      cpuSeconds: { main: Number(cpu.main.toFixed(2)), process: Number(cpu.process.toFixed(2)) },
      liveProbes: probes.length,
      liveMs: { p50: at(0.5), p99: at(0.99), max: at(1) },
    }),
  );
} finally {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
}
