import { appendFile, cp, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { calibrationIntercept, logisticRecalibration } from '../evaluation/metrics.js';
import { EVENTS_SOURCE, MIN_EVENTS, type ValidationReport } from '../evaluation/report.js';
import { foldRecalibration, GraphFoldError } from '../model/recalibrate-graph.js';
import { isVersionName } from '../model/semver.js';
import { exists, ScoreCommandError } from './score.js';
import { fixed } from './report-html.js';
import { cohortReport, scoreCohort, writeReport, type CohortOptions } from './validate.js';

/**
 * `icu-mortality recalibrate`: fits logit p' = a + b logit p (or a alone) on a local cohort and
 * writes it, folded into the graph, as a new version beside its source, so the ranking stays.
 */

export const RECALIBRATION_METHODS = ['logistic', 'intercept'] as const;
export type RecalibrationMethod = (typeof RECALIBRATION_METHODS)[number];

export interface RecalibrateOptions extends CohortOptions {
  /** The new version's folder name. */
  version: string;
  /** The version it comes from (default: the highest in --model-dir). */
  from?: string;
  method?: RecalibrationMethod;
  /** The fit's time (tests). */
  now?: Date;
}

export interface Recalibration {
  method: RecalibrationMethod;
  intercept: number;
  slope: number;
  fittedOn: { n: number; deaths: number; at: string };
  from: string;
}

export interface RecalibrateResult {
  dir: string;
  recalibration: Recalibration;
  /** The cohort's report with the version it comes from. */
  report: ValidationReport;
}

/** Float32, as the graph stores them: the manifest records what the graph computes. */
const asFloat32 = (v: number): number => Math.fround(v);

function cardSection(r: Recalibration, version: string, report: ValidationReport): string {
  const c = report.calibration;
  return `

## Local recalibration: version ${version}

Version ${version} is version ${r.from} with its output recalibrated on a local cohort
(\`icu-mortality recalibrate\`, method \`${r.method}\`): p' = sigmoid(a + b * logit(p)) with
a = ${r.intercept.toPrecision(6)} and b = ${r.slope.toPrecision(6)}, folded into the graph. The
ranking of stays is unchanged (b > 0), so discrimination (AUROC) is that of ${r.from}; the
held-out figures above are those of ${r.from} on its development data, before recalibration.

Fitted on ${r.fittedOn.n} stays with ${r.fittedOn.deaths} deaths at ${r.fittedOn.at}. Before
recalibration, on that cohort: AUROC ${fixed(report.auroc)}, calibration intercept-in-the-large
${fixed(c.interceptInTheLarge)}, slope ${fixed(c.slope)}, ECE ${fixed(c.ece)} (fitting-cohort/report.json
and report.html in this folder). Figures after recalibration on the same stays are optimistic by
construction: measure this version on other stays of the site (\`icu-mortality validate\`). The
manifest's decision threshold is unchanged, a risk level: which stays reach it changes with the
recalibrated risks.
`;
}

export async function runRecalibrate(opts: RecalibrateOptions): Promise<RecalibrateResult> {
  const method = opts.method ?? 'logistic';
  if (!isVersionName(opts.version))
    throw new ScoreCommandError(`--version ${opts.version}: letters and digits joined by . + _ or -, at most 64`);
  const cohort = await scoreCohort({ ...opts, ...(opts.from === undefined ? {} : { modelVersion: opts.from }) });
  const n = cohort.probabilities.length;
  let deaths = 0;
  for (const y of cohort.outcomes) deaths += y;
  if (deaths < MIN_EVENTS || n - deaths < MIN_EVENTS)
    throw new ScoreCommandError(
      `the cohort has ${deaths} deaths and ${n - deaths} survivors with outcomes; recalibration needs at least ${MIN_EVENTS} of each (${EVENTS_SOURCE})`,
    );
  const target = join(dirname(cohort.modelDir), opts.version);
  if (await exists(target)) throw new ScoreCommandError(`${target} exists: choose another --version`);

  const data = { probabilities: cohort.probabilities, outcomes: cohort.outcomes };
  let intercept: number | null;
  let slope = 1;
  if (method === 'logistic') {
    const fit = logisticRecalibration(data);
    intercept = fit?.intercept ?? null;
    slope = fit?.slope ?? Number.NaN;
  } else intercept = calibrationIntercept(data);
  if (intercept === null || !(slope > 0))
    throw new ScoreCommandError(
      `the ${method} recalibration did not give a usable fit (intercept ${intercept}, slope ${slope}): a slope must be > 0 to keep the ranking`,
    );
  const recalibration: Recalibration = {
    method,
    intercept: asFloat32(intercept),
    slope: asFloat32(slope),
    fittedOn: { n, deaths, at: (opts.now ?? new Date()).toISOString() },
    from: cohort.model.version,
  };

  const manifest = cohort.manifest;
  let folded: Uint8Array;
  // The step graph (models/README.md) gives the same probability hour by hour: it is folded alike.
  const step = manifest.onnx.step;
  let foldedStep: Uint8Array | undefined;
  try {
    const graph = await readFile(join(cohort.modelDir, manifest.onnx.file));
    folded = foldRecalibration(graph, { ...recalibration, requiredOutput: manifest.onnx.output }).bytes;
    if (step !== undefined) {
      const stepGraph = await readFile(join(cohort.modelDir, step.file));
      foldedStep = foldRecalibration(stepGraph, { ...recalibration, requiredOutput: step.outputs.probability }).bytes;
    }
  } catch (error) {
    if (error instanceof GraphFoldError) throw new ScoreCommandError(error.message);
    throw error;
  }
  const report = cohortReport(cohort);
  try {
    await cp(cohort.modelDir, target, { recursive: true, dereference: true, errorOnExist: true, force: false });
    await writeFile(join(target, manifest.onnx.file), folded);
    if (step !== undefined && foldedStep !== undefined) await writeFile(join(target, step.file), foldedStep);
    const raw = JSON.parse(await readFile(join(cohort.modelDir, 'manifest.json'), 'utf8')) as Record<string, unknown>;
    const written = { ...raw, version: opts.version, createdAt: recalibration.fittedOn.at, recalibration };
    await writeFile(join(target, 'manifest.json'), `${JSON.stringify(written, null, 2)}\n`);
    const card = join(target, 'model-card.md');
    const section = cardSection(recalibration, opts.version, report);
    if (await exists(card)) await appendFile(card, section);
    else await writeFile(card, `# ${cohort.model.name} ${opts.version}${section}`);
    await writeReport(join(target, 'fitting-cohort'), report);
  } catch (error) {
    // Half a version folder must not be served: the repository would load whatever it finds.
    await rm(target, { recursive: true, force: true });
    throw error;
  }
  if (!opts.quiet)
    (opts.stderr ?? process.stderr).write(
      `recalibrated ${cohort.model.name} ${recalibration.from} on ${n} stays (${deaths} deaths): ${method}, a = ${recalibration.intercept.toFixed(4)}, b = ${recalibration.slope.toFixed(4)}\n` +
        `  before: calibration intercept ${report.calibration.interceptInTheLarge?.toFixed(3)}, slope ${report.calibration.slope?.toFixed(3)}\n` +
        `wrote ${target} (serve it with MODEL_VERSION=${opts.version} or --model-dir ${target})\n`,
    );
  return { dir: target, recalibration, report };
}
