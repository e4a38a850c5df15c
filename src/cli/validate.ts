import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { developmentFigures, validationReport, type Grouping, type ValidationReport } from '../evaluation/report.js';
import type { Manifest } from '../model/manifest.js';
import { DEFAULT_WINDOW, scoreInOrder } from '../scoring/pipeline.js';
import { DEFAULT_MODEL_DIR, openModelRepository } from './model.js';
import { readOutcomes, OutcomeFileError, type OutcomeFileOptions } from './outcomes.js';
import { fixed, reportHtml } from './report-html.js';
import { DEFAULT_BATCH_SIZE, openSource, refuseUnclearIds, ScoreCommandError, type InputFormat } from './score.js';
import { ALL } from './shard.js';
import { readTrainingStays, trainingOverlapWarning } from './training-data.js';

/**
 * `icu-mortality validate`: scores a local cohort exactly as `score` does (same readers,
 * validation, pipeline, engine), joins each stay's observed outcome and writes the validation
 * report (report.json, report.html) with a summary on the terminal.
 */

/** `long-csv` is the issue's name for `score`'s `csv` format (long-form rows). */
export const COHORT_FORMATS = ['physionet2012', 'ndjson', 'long-csv', 'csv'] as const;
export type CohortFormat = (typeof COHORT_FORMATS)[number];

export interface CohortOptions extends OutcomeFileOptions {
  input: string;
  format: CohortFormat;
  outcomes: string;
  /** A model folder or one version folder (as `score`'s --model-dir). */
  modelDir?: string;
  /** A version inside the model folder (default: the highest). */
  modelVersion?: string;
  threads?: number;
  workers?: number;
  batchSize?: number;
  stderr?: NodeJS.WriteStream;
  quiet?: boolean;
}

/** The stays that were scored and have an outcome, in input order, with what the subgroups need. */
export interface ScoredCohort {
  model: { name: string; version: string };
  manifest: Manifest;
  modelDir: string;
  probabilities: Float64Array;
  outcomes: Uint8Array;
  groupings: Grouping[];
  unmatched: ValidationReport['unmatched'];
  /** Records that could not be scored, and records whose id came more than once. */
  failed: number;
  /** The warning when stays of the cohort are stays the model was trained or tuned on (./training-data.ts). */
  trainingOverlap?: string;
  duplicates: number;
  seconds: number;
}

const ICU_TYPES: Record<number, string> = {
  1: 'coronary care',
  2: 'cardiac surgery recovery',
  3: 'medical',
  4: 'surgical',
};
const AGE_BANDS = ['<45', '45-64', '65-79', '80+', 'unknown'];

function ageBand(age: number | null): string {
  if (age === null) return 'unknown';
  return age < 45 ? '<45' : age < 65 ? '45-64' : age < 80 ? '65-79' : '80+';
}

export function inputFormatOf(format: CohortFormat): InputFormat {
  return format === 'long-csv' ? 'csv' : format;
}

export function modelDirOf(opts: Pick<CohortOptions, 'modelDir' | 'modelVersion'>): string {
  const dir = opts.modelDir ?? DEFAULT_MODEL_DIR;
  return opts.modelVersion === undefined ? dir : join(dir, opts.modelVersion);
}

/** Scores the cohort through `score`'s reader and pipeline and joins the outcome file. */
export async function scoreCohort(opts: CohortOptions): Promise<ScoredCohort> {
  let outcomes: Map<string, 0 | 1>;
  try {
    outcomes = await readOutcomes(opts.outcomes, opts);
  } catch (error) {
    if (error instanceof OutcomeFileError) throw new ScoreCommandError(error.message);
    throw new ScoreCommandError(`outcomes ${opts.outcomes}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const stderr = opts.stderr ?? process.stderr;
  const batchSize = opts.batchSize ?? DEFAULT_BATCH_SIZE;
  const modelDir = modelDirOf(opts);
  const repository = await openModelRepository({
    modelDir,
    ...(opts.threads === undefined ? {} : { threads: opts.threads }),
    ...(opts.workers === undefined ? {} : { workers: opts.workers }),
    batchSize,
    queueSize: batchSize * (DEFAULT_WINDOW + 2),
    logger: {
      info() {},
      warn(_obj, msg) {
        if (!opts.quiet) stderr.write(`warning: ${msg}\n`);
      },
      error(_obj, msg) {
        stderr.write(`error: ${msg}\n`);
      },
    },
  }).catch((error: unknown) => {
    throw new ScoreCommandError(error instanceof Error ? error.message : String(error));
  });
  const lease = repository.acquire();
  const started = performance.now();
  try {
    const { model } = lease;
    const identity = { name: model.name, version: model.version };
    const training = await readTrainingStays(model.files);
    let overlap = 0;
    const source = await openSource({ input: opts.input, format: inputFormatOf(opts.format) }, model.validator, {
      shard: ALL,
    });
    const probabilities: number[] = [];
    const died: number[] = [];
    // Each stay's subgroup labels only: keeping its ValidPatient would hold every stay's values.
    const icuTypes: string[] = [];
    const ages: string[] = [];
    const sexes: string[] = [];
    const profiles: string[] = [];
    const seen = new Set<string>();
    let failed = 0;
    let duplicates = 0;
    let recordsWithoutOutcome = 0;
    const batches = scoreInOrder(refuseUnclearIds(source.records()), {
      validator: model.validator,
      model: identity,
      scoreBatch: (rows) => model.batcher.submit(rows),
      batchSize,
      window: DEFAULT_WINDOW,
      reportMissing: false,
    });
    for await (const batch of batches) {
      for (const outcome of batch) {
        const id = outcome.id ?? outcome.where.file;
        if (seen.has(id)) {
          duplicates++;
          continue;
        }
        seen.add(id);
        if (!outcome.ok) {
          failed++;
          continue;
        }
        const observed = outcomes.get(id);
        if (observed === undefined) {
          recordsWithoutOutcome++;
          continue;
        }
        if (training?.ids.has(id)) overlap++;
        probabilities.push(outcome.result.probability);
        died.push(observed);
        const { patient } = outcome;
        icuTypes.push(patient.icuType === null ? 'unknown' : (ICU_TYPES[patient.icuType] ?? 'unknown'));
        ages.push(ageBand(patient.age));
        sexes.push(patient.sex ?? 'unknown');
        profiles.push(outcome.result.inputProfile?.scenario ?? 'none');
      }
    }
    let outcomesWithoutRecord = 0;
    for (const id of outcomes.keys()) if (!seen.has(id)) outcomesWithoutRecord++;
    const scenarioOrder = [...(model.manifest.scenarios ?? []).map((s) => s.name), 'none'];
    return {
      model: identity,
      manifest: model.manifest,
      modelDir: model.files.dir,
      probabilities: Float64Array.from(probabilities),
      outcomes: Uint8Array.from(died),
      groupings: [
        { by: 'icuType', labels: icuTypes, order: [...Object.values(ICU_TYPES), 'unknown'] },
        { by: 'ageBand', labels: ages, order: AGE_BANDS },
        { by: 'sex', labels: sexes, order: ['female', 'male', 'unknown'] },
        { by: 'inputProfile', labels: profiles, order: scenarioOrder },
      ],
      unmatched: { recordsWithoutOutcome, outcomesWithoutRecord },
      failed,
      duplicates,
      ...(training && overlap > 0
        ? {
            trainingOverlap: trainingOverlapWarning(
              training,
              identity,
              overlap,
              probabilities.length,
              opts.format === 'physionet2012',
            ),
          }
        : {}),
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    lease.release();
    await repository.close();
  }
}

export function cohortReport(cohort: ScoredCohort): ValidationReport {
  if (cohort.probabilities.length === 0)
    throw new ScoreCommandError(
      `no stay has both a scored record and an outcome (${cohort.failed} records could not be scored; ${cohort.unmatched.recordsWithoutOutcome} scored records without outcome, ${cohort.unmatched.outcomesWithoutRecord} outcomes without record): check that the ids match`,
    );
  const warnings: string[] = cohort.trainingOverlap === undefined ? [] : [cohort.trainingOverlap];
  if (cohort.failed > 0)
    warnings.push(`${cohort.failed} records could not be scored (run \`icu-mortality score\` for the reasons)`);
  if (cohort.duplicates > 0) warnings.push(`${cohort.duplicates} records repeat an earlier record's id: left out`);
  const { recordsWithoutOutcome, outcomesWithoutRecord } = cohort.unmatched;
  if (recordsWithoutOutcome > 0) warnings.push(`${recordsWithoutOutcome} scored records have no outcome: left out`);
  if (outcomesWithoutRecord > 0) warnings.push(`${outcomesWithoutRecord} outcomes have no record: left out`);
  return validationReport({
    probabilities: cohort.probabilities,
    outcomes: cohort.outcomes,
    model: cohort.model,
    decisionThreshold: cohort.manifest.decisionThreshold,
    groupings: cohort.groupings,
    development: developmentFigures(cohort.manifest),
    unmatched: cohort.unmatched,
    warnings,
  });
}

/** report.json and report.html in `dir` (created if needed). */
export async function writeReport(dir: string, report: ValidationReport): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(join(dir, 'report.html'), await reportHtml(report));
}

export function summaryText(report: ValidationReport, dir: string): string {
  const ci = report.aurocCi95 ? ` (95% CI ${fixed(report.aurocCi95[0])}-${fixed(report.aurocCi95[1])})` : '';
  const dev = report.development ? `; development (held out) ${fixed(report.development.auroc)}` : '';
  const c = report.calibration;
  const decision = report.thresholds.find((t) => t.threshold === report.decisionThreshold);
  const lines = [
    `validated ${report.model.name} ${report.model.version} on ${report.n} stays, ${report.deaths} deaths`,
    `  AUROC ${fixed(report.auroc)}${ci}${dev}`,
    `  AUPRC ${fixed(report.auprc)}, Brier ${fixed(report.brier)}`,
    `  calibration: intercept-in-the-large ${fixed(c.interceptInTheLarge)}, slope ${fixed(c.slope)}, ECE ${fixed(c.ece)}`,
    ...(decision
      ? [
          `  at the decision threshold ${report.decisionThreshold}: ${(decision.flaggedShare * 100).toFixed(1)}% flagged, sensitivity ${fixed(decision.sensitivity)}, PPV ${fixed(decision.ppv)}`,
        ]
      : []),
    `  unmatched: ${report.unmatched.recordsWithoutOutcome} records without outcome, ${report.unmatched.outcomesWithoutRecord} outcomes without record`,
    ...report.warnings.map((w) => `warning: ${w}`),
    `report: ${join(dir, 'report.json')}, ${join(dir, 'report.html')}`,
  ];
  return `${lines.join('\n')}\n`;
}

export interface ValidateOptions extends CohortOptions {
  report: string;
}

export async function runValidate(opts: ValidateOptions): Promise<ValidationReport> {
  const cohort = await scoreCohort(opts);
  const report = cohortReport(cohort);
  await writeReport(opts.report, report);
  if (!opts.quiet) (opts.stderr ?? process.stderr).write(summaryText(report, opts.report));
  return report;
}
