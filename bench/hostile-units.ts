import { readFile } from 'node:fs/promises';
import { startServer } from './http.js';

/**
 * Issue 27, finding 1: one /v1/predict whose patient names a unit of '{}' repeated N times, against a
 * fresh server process each; meanwhile /health/live is asked one request after another. Prints the
 * predict's status and time, the slowest /health/live answer and the server's peak RSS (VmHWM).
 * Usage: node --import tsx bench/hostile-units.ts [characters,...] (default 18000,98000).
 */

const sizes = (process.argv[2] ?? '18000,98000').split(',').map(Number);

async function peakRssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
}

for (const chars of sizes) {
  const server = await startServer({ LOG_LEVEL: 'warn' });
  try {
    const headers = { authorization: `Bearer ${server.apiKey}`, 'content-type': 'application/json' };
    const patient = { hours: [{ HR: 80, Temp: 37 }], units: { Temp: '{}'.repeat(Math.round(chars / 2)) } };
    const before = await peakRssMiB(server.pid);
    let done = false;
    let slowestLive = 0;
    const pinger = (async () => {
      while (!done) {
        const t = performance.now();
        // A keep-alive socket the server closed while blocked resets; the wait until then counts.
        await fetch(`${server.url}/health/live`).catch(() => undefined);
        slowestLive = Math.max(slowestLive, performance.now() - t);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    const t = performance.now();
    const res = await fetch(`${server.url}/v1/predict`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ patients: [patient] }),
    });
    const body = await res.text();
    const ms = performance.now() - t;
    done = true;
    await pinger;
    const detail = (JSON.parse(body) as { details?: Array<{ message: string }> }).details?.[0]?.message ?? '';
    process.stdout.write(
      `RESULT unit ${chars} chars: ${res.status} in ${ms.toFixed(0)} ms ("${detail.slice(0, 60)}"); ` +
        `slowest /health/live ${slowestLive.toFixed(0)} ms; peak RSS ${before.toFixed(0)} -> ${(await peakRssMiB(server.pid)).toFixed(0)} MiB\n`,
    );
  } finally {
    await server.stop();
  }
}
