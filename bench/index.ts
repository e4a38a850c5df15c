/**
 * `npm run bench`: raw engine, both architectures, end-to-end HTTP against a server process on
 * 127.0.0.1, and cohort re-scoring, printed beside the targets. About 3 minutes (BENCH_SECONDS
 * per measurement, default 10).
 */
import { availableParallelism, cpus, loadavg } from 'node:os';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { measureEngineThroughput, modelPathsByArchitecture, probeRawEngine } from './engine.js';
import { measureHttp } from './http.js';
import { bracketed, formatCliStream, measureCliAndStream } from './cli-stream.js';
import { measureExplain } from './explain.js';
import { formatEncounters, measureEncounters } from './encounters.js';
import { formatValidate, measureValidate } from './validate.js';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const fmt = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

process.stdout.write(
  `machine: ${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown CPU'}), node ${process.version}, load average at start ${loadavg()[0]?.toFixed(1)}\n\n`,
);

const engine = await measureEngineThroughput({
  batchSizes: [1, 24, 32, 64, 512],
  hours: 48,
  minSeconds: Math.min(3, seconds),
});
// The reference must be the engine's honest best, whatever layout gives it: the default (one
// single-threaded session per core) and one session as wide as the machine, at the batch
// sizes that win.
const wide =
  availableParallelism() > 1
    ? await measureEngineThroughput({
        batchSizes: [32, 64],
        hours: 48,
        minSeconds: Math.min(3, seconds),
        workers: 1,
        intraOpThreads: availableParallelism(),
        latencyRuns: 1,
      })
    : undefined;
for (const r of [engine, ...(wide ? [wide] : [])]) {
  process.stdout.write(
    `raw engine (${r.modelPath}, ${r.provider}, ${r.workers} worker x ${r.intraOpThreads} threads, ${r.hours} h stays):\n`,
  );
  for (const row of r.throughput)
    process.stdout.write(
      `  batch ${String(row.batchSize).padStart(4)}: ${fmt(row.staysPerSecond).padStart(8)} stays/s  (${fmt(row.msPerBatch, 2)} ms/batch)\n`,
    );
}
// The shipped architecture beside the other one (LSTM / GRU), same layout and batch sizes.
const architectures = [];
for (const [architecture, { version, modelPath }] of modelPathsByArchitecture()) {
  const r = await measureEngineThroughput({
    modelPath,
    batchSizes: [1, 32, 64],
    hours: 48,
    minSeconds: Math.min(3, seconds),
    latencyRuns: 1,
  });
  architectures.push({
    architecture,
    version,
    throughput: r.throughput.map((t) => ({ batchSize: t.batchSize, staysPerSecond: Math.round(t.staysPerSecond) })),
  });
  process.stdout.write(
    `architecture ${architecture} (${version}, ${r.workers} worker x ${r.intraOpThreads} threads): ${r.throughput.map((t) => `batch ${t.batchSize} ${fmt(t.staysPerSecond)}`).join(', ')} stays/s\n`,
  );
}
// Read by training/model_card.py --bench for the card's "Architectures compared".
const machine = `${availableParallelism()} cores, ${cpus()[0]?.model ?? 'unknown CPU'}`;
await writeFile(
  join(import.meta.dirname, 'architectures.json'),
  `${JSON.stringify({ machine, date: new Date().toISOString().slice(0, 10), models: architectures }, null, 2)}\n`,
);

// Explanations cost a batch per stay: plain and explained scoring through the same core.
const explain = await measureExplain({ seconds: Math.min(5, seconds) });
process.stdout.write(
  `\nscoring core, ${explain.hours} h stays, 64 per call: plain ${fmt(explain.plainStaysPerSecond)} stays/s, explained ${fmt(explain.explainedStaysPerSecond)} stays/s one pass (${fmt(explain.rowsPerExplainedStay, 1)} engine rows per explained stay), ${fmt(explain.prefixRowsStaysPerSecond)} stays/s by prefix rows (${fmt(explain.rowsPerPrefixExplainedStay, 1)} rows)\n`,
);

// Encounters hour by hour: one step per new hour beside rescoring the whole stay, by hour since admission.
process.stdout.write(`\n${formatEncounters(await measureEncounters({ seconds: Math.min(5, seconds) }))}`);

const rawBest = Math.max(
  ...engine.throughput.map((r) => r.staysPerSecond),
  ...(wide?.throughput.map((r) => r.staysPerSecond) ?? []),
);
const rawBatch1 = engine.throughput.find((r) => r.batchSize === 1)?.staysPerSecond ?? Number.NaN;

const http = await measureHttp({ seconds, probe: () => probeRawEngine({ hours: 48 }) });
const line = (label: string, r: typeof http.batch): string =>
  `  ${label.padEnd(44)} ${fmt(r.staysPerSecond).padStart(8)} stays/s  p50 ${fmt(r.latencyMs.p50, 1)} ms  p99 ${fmt(r.latencyMs.p99, 1)} ms  (non-2xx ${r.non2xx}, errors ${r.errors})\n`;
process.stdout.write(`\nend-to-end HTTP (POST /v1/predict, ${seconds} s each, server on 127.0.0.1):\n`);
process.stdout.write(line('batch requests, 256 stays x 48 h, 2 clients', http.batch));
process.stdout.write(line('single stay, 1 client', http.single1));
process.stdout.write(line('single stay, 64 clients', http.single64));
process.stdout.write(line('single stay, 64 clients, maxBatchSize=1', http.single64NoBatching));
process.stdout.write(line('single stay, 64 clients, bare Fastify (ceiling)', http.single64Bare));

const ratio = http.batch.staysPerSecond / rawBest;
const speedup = http.single64.staysPerSecond / http.single64NoBatching.staysPerSecond;
const check = (ok: boolean): string => (ok ? 'PASS' : 'MISS');
process.stdout.write('\ntargets:\n');
process.stdout.write(
  `  [${check(ratio >= 0.7)}] end-to-end batch / best raw engine (${fmt(rawBest)} stays/s) = ${fmt(ratio * 100, 1)}% (>= 70%)\n`,
);
process.stdout.write(
  `  [${check(http.single64.latencyMs.p99 <= 15)}] single-stay p99 at 64 clients = ${fmt(http.single64.latencyMs.p99, 1)} ms (<= 15 ms)\n`,
);
process.stdout.write(
  `  [${check(speedup >= 5)}] dynamic batching speed-up at 64 clients = ${fmt(speedup, 1)}x over maxBatchSize=1 (>= 5x)\n`,
);
process.stdout.write(`  (raw engine batch 1: ${fmt(rawBatch1)} stays/s)\n`);
if (http.batchRaw) {
  process.stdout.write(
    `  (batch requests against the raw engine measured just before and just after them, for the drift: ${bracketed(http.batch.staysPerSecond, http.batchRaw.before, http.batchRaw.after)})\n`,
  );
}
process.stdout.write(
  `  (context: the service at 64 single-stay clients runs at ${fmt((100 * http.single64.staysPerSecond) / http.single64Bare.staysPerSecond, 0)}% of a bare Fastify server parsing the same body on this machine, load average ${loadavg()[0]?.toFixed(1)})\n`,
);

// Cohort re-scoring (each path also against the raw engine measured just before and after it): CLI and POST
// /v1/predict/stream over BENCH_COHORT_STAYS (default 100,000) 48-hour stays.
process.stdout.write(
  `\n${formatCliStream(await measureCliAndStream({ stays: Number(process.env.BENCH_COHORT_STAYS ?? 100_000) }), rawBest)}`,
);

// Site validation: validate beside score, whole runs on the same cohort (target: >= 80% of score's stays/s).
process.stdout.write(
  `\n${formatValidate(await measureValidate({ stays: Number(process.env.BENCH_COHORT_STAYS ?? 100_000) }))}`,
);
