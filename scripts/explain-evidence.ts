/**
 * `npm run explain-evidence`: do the contributions mean something? On the test split of the
 * model's split.json, each stay is explained, then rescored (independent calls) without its top
 * contributors and without as many random present ones (seeded). Writes explanation-check.json into
 * the model folder; training/model_card.py renders it as the card's "Explanations checked" section.
 *
 * Usage: npm run explain-evidence [-- <model version folder>] (default: the highest version).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DEFAULT_MODEL_DIR, locateModel, openModelRepository } from '../src/cli/model.js';
import { physionetRecordToPatient } from '../src/clinical/physionet.js';
import type { PatientInput, PredictionResult } from '../src/clinical/types.js';
import { scorePatients } from '../src/scoring/score.js';

const ROOT = resolve(import.meta.dirname, '..');
const CACHE = join(ROOT, 'training/.cache');
const DATA = resolve(ROOT, '../shared/data/physionet2012');
const DESCRIPTORS = new Set(['age', 'sex', 'icuType', 'height']);
const CHUNK = 64;
const SEED = 2012;

const silent = { info() {}, warn() {}, error() {} };
const where = await locateModel(process.argv[2] ?? DEFAULT_MODEL_DIR);
const models = await openModelRepository({
  modelDir: process.argv[2],
  batchSize: 64,
  queueSize: 1 << 16,
  logger: silent,
});
const lease = models.acquire();
const { manifest, version } = lease.model;
lease.release();
const modelDir = join(where.root, where.name, version);

const split = JSON.parse(await readFile(join(modelDir, 'split.json'), 'utf8')) as { test: string[] };
const outcomes = await readOutcomes();
const patients: PatientInput[] = [];
for (const id of split.test) patients.push(physionetRecordToPatient(await readRecord(id), manifest, id));

/** Scores inputs in chunks; one result (or undefined for an invalid one) per input. */
async function score(inputs: PatientInput[], explain: boolean): Promise<Array<PredictionResult | undefined>> {
  const out: Array<PredictionResult | undefined> = [];
  for (let i = 0; i < inputs.length; i += CHUNK) {
    const { outcomes: scored } = await scorePatients(models, inputs.slice(i, i + CHUNK), { explain });
    for (const o of scored) out.push(o.ok ? o.result : undefined);
  }
  return out;
}

const explained = await score(patients, true);
const random = mulberry32(SEED);
const kept = patients.flatMap((p, i) =>
  (explained[i]?.contributions?.length ?? 0) >= 2
    ? [{ patient: p, result: explained[i] as PredictionResult, label: outcomes.get(String(p.id)) }]
    : [],
);
const single = await removalCheck(1);
const three = await removalCheck(3);
await models.close();

/** Removes each stay's top-k contributors, and k random present ones, scoring both alone. */
async function removalCheck(k: number) {
  const stays = kept.filter((s) => (s.result.contributions?.length ?? 0) > k);
  const top = stays.map((s) =>
    without(
      s.patient,
      (s.result.contributions ?? []).slice(0, k).map((c) => c.variable),
    ),
  );
  const rand = stays.map((s) =>
    without(
      s.patient,
      sample(
        (s.result.contributions ?? []).map((c) => c.variable),
        k,
      ),
    ),
  );
  const [afterTop, afterRandom] = [await score(top, false), await score(rand, false)];
  const moveTop = stays.map((s, i) => Math.abs(s.result.probability - (afterTop[i]?.probability ?? Number.NaN)));
  const moveRandom = stays.map((s, i) => Math.abs(s.result.probability - (afterRandom[i]?.probability ?? Number.NaN)));
  const labels = stays.map((s) => s.label ?? 0);
  return {
    removed: k,
    stays: stays.length,
    shareTopMovesMore: moveTop.filter((m, i) => m > (moveRandom[i] as number)).length / stays.length,
    medianMoveTop: median(moveTop),
    medianMoveRandom: median(moveRandom),
    auroc: {
      asIs: auroc(
        stays.map((s) => s.result.probability),
        labels,
      ),
      withoutTop: auroc(
        afterTop.map((r) => r?.probability ?? Number.NaN),
        labels,
      ),
      withoutRandom: auroc(
        afterRandom.map((r) => r?.probability ?? Number.NaN),
        labels,
      ),
    },
  };
}

/** The patient without the named variables (hour keys, Weight included) and descriptors. */
function without(p: PatientInput, variables: string[]): PatientInput {
  const drop = new Set(variables);
  const copy: Record<string, unknown> = { ...p };
  for (const d of DESCRIPTORS) if (drop.has(d)) copy[d] = null;
  copy.hours = (p.hours as Array<Record<string, unknown>>).map((row) =>
    Object.fromEntries(Object.entries(row).filter(([name]) => !drop.has(name))),
  );
  return copy as unknown as PatientInput;
}

function sample<T>(items: T[], k: number): T[] {
  const pool = [...items];
  for (let i = pool.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [pool[i], pool[j]] = [pool[j] as T, pool[i] as T];
  }
  return pool.slice(0, k);
}

/** A small seeded generator (Mulberry32), so the random removals are the same on every run. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Mann-Whitney AUROC, ties counted half. */
function auroc(scores: number[], labels: number[]): number {
  let pairs = 0;
  let wins = 0;
  for (let i = 0; i < scores.length; i++) {
    if (labels[i] !== 1) continue;
    for (let j = 0; j < scores.length; j++) {
      if (labels[j] !== 0) continue;
      pairs++;
      const d = (scores[i] as number) - (scores[j] as number);
      wins += d > 0 ? 1 : d === 0 ? 0.5 : 0;
    }
  }
  return wins / pairs;
}

async function readRecord(id: string): Promise<string> {
  for (const set of ['set-a', 'set-c']) {
    try {
      return await readFile(join(CACHE, set, `${id}.txt`), 'utf8');
    } catch {
      /* the other set */
    }
  }
  throw new Error(`record ${id} is not in ${CACHE}/set-a or set-c: run npm run train (it extracts ${DATA})`);
}

async function readOutcomes(): Promise<Map<string, number>> {
  const map = new Map<string, number>();
  for (const set of ['a', 'c']) {
    const lines = (await readFile(join(DATA, `Outcomes-${set}.txt`), 'utf8')).trim().split('\n').slice(1);
    for (const line of lines) {
      const cells = line.split(',');
      map.set(cells[0] as string, Number(cells[5]));
    }
  }
  return map;
}

const report = {
  model: { name: manifest.name, version },
  split: 'test',
  seed: SEED,
  explainedStays: kept.length,
  topOne: single,
  topThree: three,
};
await writeFile(join(modelDir, 'explanation-check.json'), `${JSON.stringify(report, null, 2)}\n`);

process.stdout.write(
  `${JSON.stringify(report, null, 2)}\nwrote ${join(modelDir, 'explanation-check.json')}; the model card renders it ` +
    `(npm run train does; alone: /usr/bin/python3 -m training.model_card ${modelDir} [--compare <the other architecture>])\n`,
);
