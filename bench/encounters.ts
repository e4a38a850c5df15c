/**
 * Encounters scored hour by hour (POST /v1/encounters/{id}/observations, through the service
 * behind it, with its SQLite store): each new hour as one step of the step graph, beside the
 * same deliveries rescoring the whole stay each hour. Latency by hour since admission: hour 1,
 * hour 48 (the window's last), hour 60 (past the window: the last 48 hours replayed).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openModelRepository } from '../src/cli/model.js';
import { EncounterService } from '../src/scoring/encounters.js';
import { openStore } from '../src/store/store.js';
import { syntheticPatient } from './payload.js';

export interface EncounterBenchRow {
  mode: 'step' | 'rescore';
  /** Deliveries answered per second, each one new hour. */
  stepsPerSecond: number;
  /** Milliseconds per delivery at these hours (1-based: hour 1 is the first). */
  latency: Array<{ hour: number; p50: number; p99: number }>;
}

export interface EncounterBenchResult {
  modelVersion: string;
  encounters: number;
  hours: number;
  rows: EncounterBenchRow[];
}

const silent = { info() {}, warn() {}, error() {} };
const REPORTED_HOURS = [1, 48, 60];

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

/** `encounters` at a time, each sent its hours one delivery per hour, for about `seconds` per mode. */
export async function measureEncounters(opts: {
  seconds: number;
  encounters?: number;
  hours?: number;
}): Promise<EncounterBenchResult> {
  const encounters = opts.encounters ?? 4;
  const hours = opts.hours ?? 60;
  const models = await openModelRepository({ batchSize: 64, queueSize: 1 << 16, logger: silent });
  const dataDir = await mkdtemp(join(tmpdir(), 'icu-bench-encounters-'));
  const store = openStore({
    dataDir,
    databaseUrl: undefined,
    siteIdKey: undefined,
    bufferRows: 1000,
    batchRows: 100,
    retentionDays: 365,
  });
  await store.ready();
  const stays = Array.from({ length: encounters }, (_, i) => syntheticPatient(hours, 100 + i));
  try {
    const rows: EncounterBenchRow[] = [];
    for (const mode of ['step', 'rescore'] as const) {
      const service = new EncounterService({
        models,
        sql: store.client,
        subjectKey: store.subjectKey,
        now: () => new Date(),
        idleTtlMs: 3_600_000,
        maxEncounters: 1_000_000,
        stepGraphs: mode === 'step',
      });
      let byHour = new Map<number, number[]>();
      let deliveries = 0;
      let round = -1;
      let t0 = performance.now();
      // Whole rounds (every encounter through every hour) until the time is up; round -1 warms up
      // (the step graph's worker starts at first use).
      while (round <= 0 || performance.now() - t0 < opts.seconds * 1000) {
        if (round === 0) {
          byHour = new Map(REPORTED_HOURS.map((h) => [h, []]));
          deliveries = 0;
          t0 = performance.now();
        }
        await Promise.all(
          stays.map(async (stay, i) => {
            const { hours: rowsOf, ...header } = stay as { hours: Array<Record<string, number>> };
            const id = `${mode}-${round}-${i}`;
            for (let h = 0; h < hours; h++) {
              const start = performance.now();
              await service.observe(id, { ...(h === 0 ? header : {}), rows: [{ hour: h, values: rowsOf[h] ?? {} }] });
              byHour.get(h + 1)?.push(performance.now() - start);
              deliveries++;
            }
            await service.end(id);
          }),
        );
        round++;
      }
      const elapsed = (performance.now() - t0) / 1000;
      await service.close();
      rows.push({
        mode,
        stepsPerSecond: deliveries / elapsed,
        latency: REPORTED_HOURS.map((hour) => {
          const sorted = (byHour.get(hour) ?? []).sort((a, b) => a - b);
          return { hour, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) };
        }),
      });
    }
    return { modelVersion: models.active?.version ?? '?', encounters, hours, rows };
  } finally {
    await store.close();
    await models.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

export function formatEncounters(r: EncounterBenchResult): string {
  const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  const lines = [
    `encounters (${r.modelVersion}, ${r.encounters} at a time, one delivery per hour to hour ${r.hours}, SQLite store):`,
  ];
  for (const row of r.rows) {
    const what = row.mode === 'step' ? 'one step per hour ' : 'rescore whole stay';
    const lat = row.latency.map((l) => `h${l.hour} p50 ${fmt(l.p50, 2)} / p99 ${fmt(l.p99, 2)} ms`).join(', ');
    lines.push(`  ${what}: ${fmt(row.stepsPerSecond).padStart(6)} hours/s; ${lat}`);
  }
  return `${lines.join('\n')}\n`;
}

// `node --import tsx bench/encounters.ts`: this measurement alone.
if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(formatEncounters(await measureEncounters({ seconds: Number(process.env.BENCH_SECONDS ?? 5) })));
}
