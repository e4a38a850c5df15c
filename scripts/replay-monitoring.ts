/**
 * A replay of live monitoring (issue 30's closing note): the held-out test split of PhysioNet 2012
 * scored with ids through POST /v1/predict by the app in-process on a fresh SQLite DATA_DIR, its
 * outcomes posted to POST /v1/outcomes, then GET /v1/monitoring and the monitoring_* gauges of
 * /metrics printed beside an independent computation (scikit-learn, scipy, numpy) on the pairs
 * (probability, died) this script collected from the /v1/predict answers, never from the store.
 *
 *   npm run replay:monitoring -- [--versions 1.6.0,1.6.0-lstm] [--data ../shared/data/physionet2012]
 *
 * A request cannot name a version other than the active one, so each version is served in turn
 * (MODEL_VERSION, the app restarted on the same store, as a rollout would); with more than one,
 * ids are prefixed with the version so that each version's predictions have their own outcomes.
 */
import { spawnSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { Parser, type ReadEntry } from 'tar';
import { buildApp } from '../src/app.js';
import { physionetRecordToPatient } from '../src/clinical/physionet.js';
import { loadConfig } from '../src/config.js';
import { manifestSchema } from '../src/model/manifest.js';
import type { Figures as ServiceFigures } from '../src/evaluation/monitoring.js';
import { readOutcomes } from '../src/cli/outcomes.js';

const ROOT = resolve(import.meta.dirname, '..');
const MODELS = join(ROOT, 'models');
/** Patients a request: well under MAX_PATIENTS_PER_REQUEST and the body limit for 48-hour stays. */
const BATCH = 100;
/** The figures compared, as /v1/monitoring names them, with the gauge that carries each. */
const FIGURES = [
  ['n', 'monitoring_outcomes'],
  ['deaths', 'monitoring_deaths'],
  ['unlabelled', 'monitoring_unlabelled'],
  ['auroc', 'monitoring_auroc'],
  ['aurocLow', 'monitoring_auroc_ci95_lower'],
  ['aurocHigh', 'monitoring_auroc_ci95_upper'],
  ['intercept', 'monitoring_calibration_intercept'],
  ['slope', 'monitoring_calibration_slope'],
  ['observedExpected', 'monitoring_observed_expected'],
  ['flaggedShare', 'monitoring_flagged_share'],
  ['sensitivity', 'monitoring_sensitivity'],
  ['ppv', 'monitoring_ppv'],
] as const;
type FigureName = (typeof FIGURES)[number][0];
type Row = Partial<Record<FigureName, number | null>>;

interface Pair {
  probability: number;
  died: 0 | 1;
  version: string;
  profile: string;
}

/**
 * The independent figures: roc_auc_score; an unpenalised LogisticRegression of died on logit(p)
 * for the slope; scipy's brentq on the score equation of the offset model for the intercept;
 * observed/expected and the counts at the threshold by hand; a stratified percentile bootstrap
 * with numpy's own generator (a different random stream: its interval differs by Monte Carlo error).
 */
const PYTHON = String.raw`
import json, sys
import numpy as np
from scipy.optimize import brentq
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
job = json.load(sys.stdin); pairs = job["pairs"]; t = job["threshold"]
def figures(rows):
    p = np.array([r["probability"] for r in rows]); y = np.array([r["died"] for r in rows])
    out = {"n": int(len(y)), "deaths": int(y.sum()), "unlabelled": 0}
    flagged = p >= t
    out["flaggedShare"] = float(flagged.mean())
    if y.sum() < 100 or (1 - y).sum() < 100:
        return out
    z = np.log(p / (1 - p))
    fit = LogisticRegression(penalty=None, tol=1e-10, max_iter=10000).fit(z.reshape(-1, 1), y)
    rng = np.random.default_rng(2012); dead = np.flatnonzero(y == 1); alive = np.flatnonzero(y == 0)
    boot = [roc_auc_score(np.r_[np.ones(len(dead)), np.zeros(len(alive))],
                          np.r_[p[rng.choice(dead, len(dead))], p[rng.choice(alive, len(alive))]]) for _ in range(1000)]
    out.update({"auroc": float(roc_auc_score(y, p)),
        "aurocLow": float(np.percentile(boot, 2.5)), "aurocHigh": float(np.percentile(boot, 97.5)),
        "slope": float(fit.coef_[0][0]),
        "intercept": float(brentq(lambda a: np.sum(y - 1 / (1 + np.exp(-(a + z)))), -10, 10, xtol=1e-14)),
        "observedExpected": float(y.sum() / p.sum()),
        "sensitivity": float((flagged & (y == 1)).sum() / (y == 1).sum()),
        "ppv": float((flagged & (y == 1)).sum() / flagged.sum()) if flagged.any() else None})
    return out
out = {"overall": figures(pairs)}
for key in ("version", "profile"):
    for g in sorted(set(r[key] for r in pairs)):
        out[key + "=" + g] = figures([r for r in pairs if r[key] == g])
print(json.dumps(out))
`;

function independent(pairs: Pair[], threshold: number): Record<string, Row> {
  const run = spawnSync('/usr/bin/python3', ['-c', PYTHON], {
    input: JSON.stringify({ pairs, threshold }),
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  if (run.status !== 0) throw new Error(`python3 failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as Record<string, Row>;
}

/** The text of the records `wanted` in the .tar.gz archives, by RecordID. */
async function readArchives(archives: string[], wanted: Set<string>): Promise<Map<string, string>> {
  const texts = new Map<string, string>();
  for (const archive of archives) {
    const parser = new Parser();
    parser.on('entry', (entry: ReadEntry) => {
      const id = basename(entry.path).replace(/\.txt$/, '');
      if (entry.type !== 'File' || !entry.path.endsWith('.txt') || !wanted.has(id)) {
        entry.resume();
        return;
      }
      const chunks: Buffer[] = [];
      entry.on('data', (c: Buffer) => chunks.push(c));
      entry.on('end', () => texts.set(id, Buffer.concat(chunks).toString('utf8')));
    });
    await pipeline(createReadStream(archive), parser);
  }
  return texts;
}

async function inject(app: FastifyInstance, method: 'GET' | 'POST', url: string, payload?: unknown) {
  const res = await app.inject({ method, url, ...(payload === undefined ? {} : { payload: payload as object }) });
  if (res.statusCode !== 200) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
  return res;
}

function startApp(version: string, dataDir: string): Promise<FastifyInstance> {
  const config = loadConfig({
    MODEL_DIR: MODELS,
    MODEL_VERSION: version,
    AUTH_DISABLED: 'true',
    RATE_LIMIT_MAX: '0',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    // The gauges are refreshed by this script once the outcomes are in, not by the schedule.
    MONITORING_INTERVAL_S: '86400',
    REQUEST_TIMEOUT_MS: '600000',
    // A replay on a busy machine is not a test of load shedding: no 503 for event-loop delay.
    MAX_EVENT_LOOP_DELAY_MS: '0',
  });
  const logStream = new Writable({ write: (_chunk, _enc, done) => done() });
  return buildApp(config, { logStream });
}

/** monitoring_* samples of a /metrics text: "version|profile" -> figure -> value. */
function gauges(text: string): Map<string, Row> {
  const byGauge = new Map<string, FigureName>(FIGURES.map(([f, g]) => [g, f]));
  const rows = new Map<string, Row>();
  for (const m of text.matchAll(/^(monitoring_\w+)\{version="([^"]*)",profile="([^"]*)"\} (\S+)$/gm)) {
    const figure = byGauge.get(m[1] as string);
    if (figure === undefined) continue;
    const key = `${m[2]}|${m[3]}`;
    rows.set(key, { ...rows.get(key), [figure]: Number(m[4]) });
  }
  return rows;
}

function rowOf(f: ServiceFigures): Row {
  return {
    n: f.n,
    deaths: f.deaths,
    unlabelled: f.unlabelled,
    auroc: f.auroc,
    aurocLow: f.aurocCi95?.[0] ?? null,
    aurocHigh: f.aurocCi95?.[1] ?? null,
    intercept: f.calibration.interceptInTheLarge,
    slope: f.calibration.slope,
    observedExpected: f.observedExpected,
    flaggedShare: f.flaggedShare,
    sensitivity: f.sensitivity,
    ppv: f.ppv,
  };
}

const show = (v: number | null | undefined) =>
  v === null || v === undefined ? '-' : Number.isInteger(v) ? String(v) : v.toFixed(6);
const diff = (a: number | null | undefined, b: number | null | undefined) =>
  typeof a === 'number' && typeof b === 'number' ? Math.abs(a - b).toExponential(1) : '-';

function table(title: string, api: ServiceFigures | undefined, gauge: Row | undefined, ref: Row | undefined): string {
  const head = `${title}${api?.withheld ? ` (withheld: ${api.withheld})` : ''}`;
  const lines = [head, '  figure              /v1/monitoring    /metrics   independent  |api-ind|  |metrics-ind|'];
  const a = api ? rowOf(api) : {};
  // Withheld figures are null on both service sides: only the counts are compared.
  const shown = FIGURES.filter(([f]) => !api?.withheld || ['n', 'deaths', 'unlabelled', 'flaggedShare'].includes(f));
  for (const [figure] of shown) {
    const i = figure === 'unlabelled' ? undefined : ref?.[figure];
    lines.push(
      `  ${figure.padEnd(18)}${show(a[figure]).padStart(15)}${show(gauge?.[figure]).padStart(12)}${show(i).padStart(14)}${diff(a[figure], i).padStart(11)}${diff(gauge?.[figure], i).padStart(15)}`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      versions: { type: 'string', default: '1.6.0' },
      data: { type: 'string', default: join(ROOT, '..', 'shared', 'data', 'physionet2012') },
      split: { type: 'string' },
    },
  });
  const versions = values.versions.split(',').filter(Boolean);
  const splitFile = values.split ?? join(MODELS, 'icu-mortality', versions[0] as string, 'split.json');
  const testIds = (JSON.parse(await readFile(splitFile, 'utf8')) as { test: string[] }).test;
  const died = new Map<string, 0 | 1>();
  for (const set of ['a', 'c'])
    for (const [id, d] of await readOutcomes(join(values.data, `Outcomes-${set}.txt`), { idColumn: 'RecordID' }))
      died.set(id, d);
  const texts = await readArchives(
    ['a', 'c'].map((s) => join(values.data, `set-${s}.tar.gz`)),
    new Set(testIds),
  );
  const missing = testIds.filter((id) => !texts.has(id) || !died.has(id));
  if (missing.length > 0) throw new Error(`${missing.length} test records or outcomes not found, e.g. ${missing[0]}`);

  const dataDir = await mkdtemp(join(tmpdir(), 'icu-replay-'));
  const pairs: Pair[] = [];
  let app: FastifyInstance | undefined;
  try {
    for (const version of versions) {
      await app?.close();
      app = await startApp(version, dataDir);
      await app.ready();
      const manifest = manifestSchema.parse(
        JSON.parse(await readFile(join(MODELS, 'icu-mortality', version, 'manifest.json'), 'utf8')),
      );
      const idOf = (record: string) => (versions.length > 1 ? `${version}/${record}` : record);
      const scored: Array<{ id: string; died: 0 | 1 }> = [];
      for (let i = 0; i < testIds.length; i += BATCH) {
        const ids = testIds.slice(i, i + BATCH);
        const patients = ids.map((id) => ({
          ...physionetRecordToPatient(texts.get(id) as string, manifest, id),
          id: idOf(id),
        }));
        const res = await inject(app, 'POST', '/v1/predict', { patients });
        const body = res.json() as {
          model: { version: string };
          results: Array<{ index: number; probability?: number; inputProfile?: { scenario: string } }>;
        };
        for (const r of body.results) {
          const record = ids[r.index] as string;
          if (r.probability === undefined) throw new Error(`record ${record} was not scored: ${JSON.stringify(r)}`);
          const outcome = died.get(record) as 0 | 1;
          pairs.push({
            probability: r.probability,
            died: outcome,
            version: body.model.version,
            profile: r.inputProfile?.scenario ?? 'none',
          });
          scored.push({ id: idOf(record), died: outcome });
        }
      }
      await app.recorder.flushed();
      // Known after the predictions: one second on, within the route's tolerance for the future.
      const at = new Date(Date.now() + 1000).toISOString();
      const posted = await inject(app, 'POST', '/v1/outcomes', {
        outcomes: scored.map((s) => ({ id: s.id, died: s.died === 1, at })),
      });
      console.log(`${version}: ${scored.length} stays scored; outcomes ${posted.body}`);
    }
    if (app === undefined) throw new Error('no version given');
    await new Promise((r) => setTimeout(r, 1100));
    const monitoring = (await inject(app, 'GET', '/v1/monitoring?days=1')).json() as {
      alertThreshold: number;
      overall: ServiceFigures;
      byVersion: Array<ServiceFigures & { version: string }>;
      byProfile: Array<ServiceFigures & { profile: string }>;
    };
    await app.monitoring.refresh();
    const metrics = gauges((await inject(app, 'GET', '/metrics')).body);
    const ref = independent(pairs, monitoring.alertThreshold);

    console.log(`\nalert threshold ${monitoring.alertThreshold}; ${pairs.length} pairs collected from /v1/predict`);
    console.log(table('overall', monitoring.overall, metrics.get('all|all'), ref.overall));
    for (const v of monitoring.byVersion)
      console.log(table(`version ${v.version}`, v, metrics.get(`${v.version}|all`), ref[`version=${v.version}`]));
    for (const p of monitoring.byProfile)
      console.log(table(`profile ${p.profile}`, p, metrics.get(`all|${p.profile}`), ref[`profile=${p.profile}`]));
  } finally {
    await app?.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
