import { rm, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import type { PatientValidator } from '../clinical/validate.js';
import type { LogSink } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { metricsObserver, predictionCounts } from '../scoring/metrics-observer.js';
import { ScoringObservers } from '../scoring/observer.js';
import { DEFAULT_WINDOW, scoreInOrder, type ScoreOutcome } from '../scoring/pipeline.js';
import { batcherSink } from '../scoring/score-stays.js';
import type { LoadedModel } from '../model/repository.js';
import { openModelRepository, type CliModelOptions } from './model.js';
import { csvHeader, formatRows, readExistingOutput, Sink, type OutputFormat, type ScoreRow } from './output.js';
import { silentProgress, terminalProgress, type Progress } from './progress.js';
import { ALL, type Shard } from './shard.js';
import { readTrainingStays, trainingOverlapWarning } from './training-data.js';
import { longCsvSource } from './sources/long-csv.js';
import { ndjsonSource } from './sources/ndjson.js';
import { physionetArchiveSource, physionetDirectorySource } from './sources/physionet.js';
import type { RecordSource, RecordWhere, SourceRecord } from './sources/types.js';

/**
 * `icu-mortality score`: reads a cohort, scores it with the service's validation,
 * preprocessing, batcher and engine, and writes one row per record. Records that cannot be
 * scored go to a separate NDJSON report; the exit code says whether there were any.
 */

export const INPUT_FORMATS = ['physionet2012', 'ndjson', 'csv'] as const;
export type InputFormat = (typeof INPUT_FORMATS)[number];

export const EXIT_OK = 0;
export const EXIT_RECORDS_FAILED = 1;
export const EXIT_FATAL = 2;
export const EXIT_INTERRUPTED = 130;

export interface ScoreCommandOptions {
  format: InputFormat;
  input: string;
  output: string;
  outputFormat?: OutputFormat;
  /** Per-record error report (NDJSON); default `<output>.errors.ndjson`. */
  errors?: string;
  resume?: boolean;
  overwrite?: boolean;
  shard?: Shard;
  quiet?: boolean;
  /** Show the progress bar (default: when stderr is a terminal). */
  progress?: boolean;
  modelDir?: string;
  threads?: number;
  workers?: number;
  batchSize?: number;
  /** Batches in flight between the reader and the writer. */
  window?: number;
  /** Longest record read (an NDJSON line, a long-form CSV row, a PhysioNet file); longer ones are reported. */
  maxRecordBytes?: number;
  /** Add each record's trajectory and contributions (NDJSON output only). */
  explain?: boolean;
  /** Stops reading; what was scored is written, and --resume continues from there. */
  signal?: AbortSignal;
  stderr?: NodeJS.WriteStream;
  /** Replace the engine or batcher factory (tests). */
  factories?: CliModelOptions['factories'];
}

export interface ScoreSummary {
  exitCode: number;
  scored: number;
  failed: number;
  /** Already in the output (--resume). */
  skipped: number;
  /** Reading, scoring and writing, from the first record to the last (model loading excluded). */
  seconds: number;
  /** Loading and warming up the model. */
  loadSeconds: number;
  /** Peak resident memory of the process so far. */
  peakRssBytes: number;
  model?: { name: string; version: string };
  interrupted: boolean;
  /** Scored records whose ids are those of stays the model was trained or tuned on (./training-data.ts). */
  trainingOverlap: number;
}

/** A problem with the command itself (arguments, files, model): nothing was scored. */
export class ScoreCommandError extends Error {
  override readonly name = 'ScoreCommandError';
}

/**
 * Stays per engine batch: 24-64 run fastest per stay on the CPU, and 32 cost the CLI the least
 * CPU per stay (bench/RESULTS.md, "History").
 */
export const DEFAULT_BATCH_SIZE = 32;
/** Far above a year of hourly rows as one NDJSON line (about 5 MB); what memory one record may take is a multiple. */
export const DEFAULT_MAX_RECORD_BYTES = 16 * 1024 * 1024;
/** Rows one explained stay may need, with room for any manifest up to 96 hours and 100 variables. */
const EXPLAIN_ROWS_PER_STAY = 200;

export function outputFormatOf(path: string, explicit?: OutputFormat): OutputFormat {
  if (explicit) return explicit;
  const ext = extname(path).toLowerCase();
  return ext === '.ndjson' || ext === '.jsonl' ? 'ndjson' : 'csv';
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The reader of an input, as `score` reads it; validate and recalibrate read their cohort through it too. */
export async function openSource(
  opts: Pick<ScoreCommandOptions, 'input' | 'format'>,
  validator: PatientValidator,
  run: { shard: Shard; maxRecordBytes?: number },
): Promise<RecordSource> {
  const { input } = opts;
  const { manifest } = validator;
  const { shard } = run;
  const maxRecordBytes = run.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  if (opts.format === 'physionet2012') {
    let isDir: boolean;
    try {
      isDir = (await stat(input)).isDirectory();
    } catch {
      throw new ScoreCommandError(`input ${input} not found`);
    }
    if (isDir) return physionetDirectorySource(input, manifest, shard, maxRecordBytes);
    if (/\.(tar\.gz|tgz|tar)$/i.test(input)) return physionetArchiveSource(input, manifest, shard, maxRecordBytes);
    throw new ScoreCommandError(
      `--format physionet2012 reads a directory of <RecordID>.txt files or a .tar.gz of them; ${input} is neither`,
    );
  }
  if (input !== '-' && !(await exists(input))) throw new ScoreCommandError(`input ${input} not found`);
  return opts.format === 'ndjson'
    ? ndjsonSource(input, shard, maxRecordBytes, validator)
    : longCsvSource(input, manifest, shard, maxRecordBytes);
}

function stderrLogger(stderr: NodeJS.WriteStream, quiet: boolean): LogSink {
  return {
    info() {},
    warn(_obj, msg) {
      if (!quiet) stderr.write(`warning: ${msg}\n`);
    },
    error(obj, msg) {
      const reason = (obj as { reason?: unknown }).reason;
      stderr.write(`error: ${msg}${typeof reason === 'string' ? ` (${reason})` : ''}\n`);
    },
  };
}

function errorLine(outcome: ScoreOutcome<RecordWhere>): string {
  if (outcome.ok) return '';
  const { failure, where } = outcome;
  return `${JSON.stringify({
    id: outcome.id,
    file: where.file,
    ...(where.line === undefined ? {} : { line: where.line }),
    error: failure.error,
    message: failure.message,
    details: failure.details.map((d) => ({ path: d.path.map(String).join('.'), message: d.message })),
  })}\n`;
}

/**
 * Why an id is refused: whitespace at its edges or a control character would be lost or changed by the tools that
 * read the scores file (trimmed, two ids became one record), so the id written could not be the id given.
 */
export function idProblem(id: string): string | undefined {
  if (/\p{Cc}/u.test(id)) return 'the id holds a control character (tab, line break or other); remove it';
  if (id !== id.trim()) return 'the id begins or ends with whitespace; remove it, ids are written as given';
  return undefined;
}

export async function* refuseUnclearIds(records: AsyncIterable<SourceRecord>): AsyncGenerator<SourceRecord> {
  for await (const record of records) {
    const problem = idProblem(record.id);
    if (problem === undefined) yield record;
    else
      yield {
        where: record.where,
        id: record.id,
        failure: { error: 'invalid_id', message: problem, details: [{ path: ['id'], message: problem }] },
      };
  }
}

async function* skipDone(
  records: AsyncIterable<SourceRecord>,
  done: Set<string>,
  onSkip: () => void,
): AsyncGenerator<SourceRecord> {
  for await (const record of records) {
    if (done.has(record.id)) onSkip();
    else yield record;
  }
}

export async function runScore(opts: ScoreCommandOptions): Promise<ScoreSummary> {
  const loadStarted = performance.now();
  const run = await settle(opts);
  const repository = await openModel(opts, run);
  const lease = repository.acquire();
  const started = performance.now();
  let tally: Tally;
  try {
    tally = await scoreRecords(opts, run, lease.model);
  } finally {
    lease.release();
    await repository.close();
  }
  const { model } = lease;
  const summary = {
    exitCode: tally.interrupted ? EXIT_INTERRUPTED : tally.failed > 0 ? EXIT_RECORDS_FAILED : EXIT_OK,
    ...tally,
    seconds: (performance.now() - started) / 1000,
    loadSeconds: (started - loadStarted) / 1000,
    // resourceUsage().maxRSS is in kilobytes.
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    model: { name: model.name, version: model.version },
  };
  if (!run.quiet) run.stderr.write(summaryLine(summary, opts, run.errorsPath));
  return summary;
}

/** The options with their defaults, checked before anything is opened or written. */
interface RunSettings {
  stderr: NodeJS.WriteStream;
  quiet: boolean;
  shard: Shard;
  outputFormat: OutputFormat;
  errorsPath: string;
  batchSize: number;
  window: number;
  maxRecordBytes: number;
  /** An explained stay is scored as up to maxHours + variables + 4 rows: one stay per pipeline batch. */
  recordsPerBatch: number;
}

async function settle(opts: ScoreCommandOptions): Promise<RunSettings> {
  const outputFormat = outputFormatOf(opts.output, opts.outputFormat);
  const batchSize = opts.batchSize ?? DEFAULT_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new ScoreCommandError('--batch-size must be an integer >= 1');
  if (opts.threads !== undefined && (!Number.isInteger(opts.threads) || opts.threads < 1))
    throw new ScoreCommandError('--threads must be an integer >= 1');
  if (opts.workers !== undefined && (!Number.isInteger(opts.workers) || opts.workers < 1))
    throw new ScoreCommandError('--workers must be an integer >= 1');
  const maxRecordBytes = opts.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  if (!Number.isInteger(maxRecordBytes) || maxRecordBytes < 1024)
    throw new ScoreCommandError('--max-record-bytes must be an integer >= 1024');
  if (opts.explain && outputFormat !== 'ndjson')
    throw new ScoreCommandError(
      '--explain needs NDJSON output (an output ending in .ndjson, or --output-format ndjson)',
    );
  if ((await exists(opts.output)) && !opts.resume && !opts.overwrite) {
    throw new ScoreCommandError(
      `${opts.output} exists: use --resume to continue that run, or --overwrite to replace it`,
    );
  }
  if (opts.resume && opts.overwrite) throw new ScoreCommandError('--resume and --overwrite cannot be used together');
  return {
    stderr: opts.stderr ?? process.stderr,
    quiet: opts.quiet ?? false,
    shard: opts.shard ?? ALL,
    outputFormat,
    errorsPath: opts.errors ?? `${opts.output}.errors.ndjson`,
    batchSize,
    window: opts.window ?? DEFAULT_WINDOW,
    maxRecordBytes,
    recordsPerBatch: opts.explain ? 1 : batchSize,
  };
}

function openModel(opts: ScoreCommandOptions, run: RunSettings) {
  return openModelRepository({
    ...(opts.modelDir === undefined ? {} : { modelDir: opts.modelDir }),
    ...(opts.threads === undefined ? {} : { threads: opts.threads }),
    ...(opts.workers === undefined ? {} : { workers: opts.workers }),
    batchSize: run.batchSize,
    queueSize: opts.explain ? EXPLAIN_ROWS_PER_STAY * (run.window + 2) : run.batchSize * (run.window + 2),
    logger: stderrLogger(run.stderr, run.quiet),
    ...(opts.factories === undefined ? {} : { factories: opts.factories }),
  }).catch((error: unknown) => {
    throw new ScoreCommandError(error instanceof Error ? error.message : String(error));
  });
}

type Tally = Pick<ScoreSummary, 'scored' | 'failed' | 'skipped' | 'interrupted' | 'trainingOverlap'>;

/** Reads the source, skips what --resume finds done, scores in order and writes rows and errors as they come. */
async function scoreRecords(opts: ScoreCommandOptions, run: RunSettings, model: LoadedModel): Promise<Tally> {
  const tally: Tally = { scored: 0, failed: 0, skipped: 0, interrupted: false, trainingOverlap: 0 };
  const identity = { name: model.name, version: model.version };
  const training = await readTrainingStays(model.files);
  const existing = opts.resume
    ? await readExistingOutput(opts.output, run.outputFormat)
    : { ids: new Set<string>(), versions: new Set<string>(), hasHeader: false };
  const others = [...existing.versions].filter((v) => v !== identity.version);
  if (others.length > 0 && !run.quiet) {
    run.stderr.write(
      `warning: ${opts.output} holds rows of model version ${others.join(', ')}; this run uses ${identity.version} (the model_version column tells them apart)\n`,
    );
  }
  const source = await openSource(opts, model.validator, run);
  const sink = new Sink(opts.output, opts.resume === true);
  if (run.outputFormat === 'csv' && !existing.hasHeader) await sink.write(csvHeader());
  await rm(run.errorsPath, { force: true });
  let errorSink: Sink | undefined;
  const showProgress = opts.progress ?? (run.stderr.isTTY === true && !run.quiet);
  const progress: Progress = showProgress ? terminalProgress(source.total, source.unit, run.stderr) : silentProgress;

  // The summary counts what the metrics observer counted, as the service's /metrics would.
  const metrics = createMetrics({ defaultMetrics: false });
  const observers = new ScoringObservers((error) =>
    run.stderr.write(
      `warning: a scoring observer failed (${error instanceof Error ? error.message : String(error)})\n`,
    ),
  );
  observers.add(metricsObserver(metrics));
  const read = refuseUnclearIds(source.records());
  const records = existing.ids.size > 0 ? skipDone(read, existing.ids, () => tally.skipped++) : read;
  // The model's per-hour output, when it has one: explained trajectories in one pass (src/scoring/score-stays.ts).
  const perHour = batcherSink(model.batcher).submitPerHour;
  const outcomes = scoreInOrder(records, {
    validator: model.validator,
    model: identity,
    scoreBatch: (patients) => model.batcher.submit(patients),
    ...(perHour === undefined ? {} : { scoreBatchPerHour: perHour }),
    batchSize: run.recordsPerBatch,
    window: run.window,
    explain: opts.explain === true,
    reportMissing: run.outputFormat === 'ndjson',
    observe: { to: observers, route: 'cli' },
  });
  try {
    for await (const batch of outcomes) {
      const rows: ScoreRow[] = [];
      let errors = '';
      for (const outcome of batch) {
        if (outcome.ok) {
          const id = outcome.id ?? outcome.where.file;
          rows.push({ id, result: outcome.result });
          if (training?.ids.has(id)) tally.trainingOverlap++;
        } else errors += errorLine(outcome);
      }
      await sink.write(formatRows(run.outputFormat, rows));
      if (errors !== '') {
        errorSink ??= new Sink(run.errorsPath, false);
        await errorSink.write(errors);
      }
      const counts = await predictionCounts(metrics);
      tally.scored = counts.scored;
      tally.failed = counts.invalid + counts.failed;
      progress.update(source.position(), tally.scored, tally.failed);
      if (opts.signal?.aborted) {
        tally.interrupted = true;
        break;
      }
    }
  } finally {
    progress.update(source.position(), tally.scored, tally.failed);
    progress.stop();
    await sink.close();
    await errorSink?.close();
  }
  if (training && tally.trainingOverlap > 0 && !run.quiet)
    run.stderr.write(
      `warning: ${trainingOverlapWarning(training, identity, tally.trainingOverlap, tally.scored, opts.format === 'physionet2012')}\n`,
    );
  return tally;
}

function summaryLine(
  summary: ScoreSummary & { model: { name: string; version: string } },
  opts: ScoreCommandOptions,
  errorsPath: string,
): string {
  const { scored, failed, skipped, seconds, loadSeconds, peakRssBytes, model } = summary;
  const rate = seconds > 0 ? Math.round((scored + failed) / seconds) : 0;
  const parts = [
    `scored ${scored} record${scored === 1 ? '' : 's'} with ${model.name} ${model.version} in ${seconds.toFixed(1)} s (${rate} records/s; model loaded in ${loadSeconds.toFixed(1)} s; peak RSS ${Math.round(peakRssBytes / 2 ** 20)} MiB)`,
  ];
  if (failed > 0) parts.push(`${failed} failed: see ${errorsPath}`);
  if (skipped > 0) parts.push(`${skipped} already in ${opts.output}`);
  if (summary.interrupted) parts.push('interrupted: rerun with --resume to continue');
  return `${parts.join('; ')}\n`;
}
