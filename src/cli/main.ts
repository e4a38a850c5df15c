import { Command, InvalidArgumentError, Option } from 'commander';
import { CSV_COLUMNS } from './output.js';
import { parseShard } from './shard.js';
import { addEvaluationCommands, positiveInt } from './evaluation-commands.js';
import { addOutcomeCommands } from './outcomes-import.js';
import {
  DEFAULT_BATCH_SIZE,
  DEFAULT_MAX_RECORD_BYTES,
  EXIT_FATAL,
  INPUT_FORMATS,
  ScoreCommandError,
  runScore,
  type InputFormat,
} from './score.js';

/**
 * The `icu-mortality` command line. Exit codes: 0 all scored, 1 some records failed, 2 nothing could be done, 130
 * interrupted.
 */

function shardArg(value: string) {
  try {
    return parseShard(value);
  } catch (error) {
    throw new InvalidArgumentError(error instanceof Error ? error.message : String(error));
  }
}

export function buildProgram(): Command {
  const program = new Command('icu-mortality')
    .description('ICU in-hospital mortality model: batch scoring, site validation and recalibration of cohorts')
    .showHelpAfterError()
    .exitOverride();
  program
    .command('score')
    .description(
      'score every record of a file or directory; writes one row per record (its columns: see --output) and reports the records it could not score (an id with whitespace at either end or a control character among them: ids are written as given)',
    )
    .addOption(new Option('-f, --format <format>', 'input format').choices([...INPUT_FORMATS]).makeOptionMandatory())
    .requiredOption(
      '-i, --input <path>',
      'physionet2012: a directory of <RecordID>.txt files or a .tar.gz of them; ndjson/csv: a file, or - for stdin',
    )
    .requiredOption(
      '-o, --output <file>',
      `scores file: CSV (${CSV_COLUMNS.join(',')}; a text cell that begins with = + - @ ' or a tab or line break gets a leading ', as OWASP advises against CSV injection), or NDJSON when it ends in .ndjson/.jsonl`,
    )
    .addOption(
      new Option('--output-format <format>', 'override the format guessed from the output name').choices([
        'csv',
        'ndjson',
      ]),
    )
    .option(
      '-e, --errors <file>',
      'report of the records that could not be scored, rewritten by each run (NDJSON; default <output>.errors.ndjson)',
    )
    .option('--resume', 'skip records whose id is already in the output and append the rest')
    .option('--overwrite', 'replace an existing output file')
    .option(
      '--shard <i/N>',
      'score only shard i of N (0-based, e.g. $JOB_COMPLETION_INDEX/4); shards together cover the input once',
      shardArg,
    )
    .option(
      '--model-dir <dir>',
      'a model folder with <version>/ folders (the highest is used) or one version folder; default: the bundled models/icu-mortality',
    )
    .option('--threads <n>', 'ONNX Runtime intra-op threads per session (default 1)', positiveInt)
    .option(
      '--workers <n>',
      'inference worker threads, one ONNX Runtime session each (default: one per core, at most 4)',
      positiveInt,
    )
    .option('--batch-size <n>', 'stays per inference batch', positiveInt, DEFAULT_BATCH_SIZE)
    .option(
      '--max-record-bytes <n>',
      'longest record read (an NDJSON line, a CSV row, a PhysioNet file); a longer one is reported in the errors file and skipped',
      positiveInt,
      DEFAULT_MAX_RECORD_BYTES,
    )
    .option(
      '--explain',
      "add each record's trajectory (risk after every hour) and contributions (each variable's effect); NDJSON output only",
    )
    .option('-q, --quiet', 'no progress bar and no summary')
    .action(
      async (options: {
        format: InputFormat;
        input: string;
        output: string;
        outputFormat?: 'csv' | 'ndjson';
        errors?: string;
        resume?: boolean;
        overwrite?: boolean;
        shard?: ReturnType<typeof parseShard>;
        modelDir?: string;
        threads?: number;
        workers?: number;
        batchSize: number;
        maxRecordBytes: number;
        explain?: boolean;
        quiet?: boolean;
      }) => {
        const abort = new AbortController();
        // First Ctrl-C: stop reading, write what is scored, exit 130 (resumable). Second: default handling.
        const onSigint = (): void => {
          abort.abort();
          process.off('SIGINT', onSigint);
        };
        process.on('SIGINT', onSigint);
        process.once('SIGTERM', onSigint);
        try {
          const summary = await runScore({ ...options, signal: abort.signal });
          process.exitCode = summary.exitCode;
        } finally {
          process.off('SIGINT', onSigint);
          process.off('SIGTERM', onSigint);
        }
      },
    );
  addEvaluationCommands(program);
  addOutcomeCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof Error && 'exitCode' in error && typeof error.exitCode === 'number' && 'code' in error) {
      // commander already printed its message (or help, exit code 0).
      return error.exitCode === 0 ? 0 : EXIT_FATAL;
    }
    const message = error instanceof ScoreCommandError || error instanceof Error ? error.message : String(error);
    process.stderr.write(`icu-mortality: ${message}\n`);
    return EXIT_FATAL;
  }
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'));
if (invokedDirectly) process.exitCode = await main(process.argv.slice(2));
