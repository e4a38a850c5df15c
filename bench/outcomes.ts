/**
 * POST /v1/outcomes's store write on SQLite: 5000 outcomes (half of them with a prediction) stored
 * once, then repeated. Prints each call's milliseconds and the longest event-loop gap a 5 ms timer
 * saw while it ran (SQLite's statements run in a worker thread since c929d79: the gap should stay small).
 * Run: node --import tsx bench/outcomes.ts [entries]
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { upsertOutcomes } from '../src/store/outcomes.js';
import { insertPredictions } from '../src/store/predictions.js';
import { openStore } from '../src/store/store.js';

const entries = Number(process.argv[2] ?? 5000);
const dataDir = await mkdtemp(join(tmpdir(), 'icu-bench-outcomes-'));
const store = openStore({
  dataDir,
  databaseUrl: undefined,
  siteIdKey: 'a-bench-site-key-of-at-least-32-bytes!',
  bufferRows: 1,
  batchRows: 1,
  retentionDays: 365,
});
await store.ready();
const T0 = Date.UTC(2026, 0, 1);
const keys = Array.from({ length: entries }, (_, i) => store.subjectKey(`bench-${i}`));
await store.client.transaction((tx) =>
  insertPredictions(
    tx,
    keys
      .filter((_, i) => i % 2 === 0)
      .map((subjectKey) => ({
        id: randomUUID(),
        at: T0,
        subjectKey,
        route: 'predict',
        modelName: 'icu-mortality',
        modelVersion: 'bench',
        probability: 0.1,
        inputProfile: 'full',
        hoursUsed: 48,
        tier: 'low',
        silent: false,
      })),
  ),
);
const outcomes = keys.map((subjectKey, i) => ({ subjectKey, died: i % 7 === 0, at: T0 + 3_600_000 }));

async function timed(label: string): Promise<void> {
  let last = performance.now();
  let gap = 0;
  const sampler = setInterval(() => {
    const now = performance.now();
    gap = Math.max(gap, now - last);
    last = now;
  }, 5);
  await new Promise((resolve) => setTimeout(resolve, 20));
  const start = performance.now();
  last = start;
  await upsertOutcomes(store.client, outcomes, T0 + 7_200_000);
  const ms = performance.now() - start;
  await new Promise((resolve) => setTimeout(resolve, 20));
  clearInterval(sampler);
  console.log(`${label}: ${entries} outcomes in ${ms.toFixed(0)} ms, longest event-loop gap ${gap.toFixed(0)} ms`);
}

await timed('first');
await timed('repeat');
await store.close();
await rm(dataDir, { recursive: true, force: true });
