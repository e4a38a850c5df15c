import { InvalidArgumentError, Option, type Command } from 'commander';
import { RECALIBRATION_METHODS, runRecalibrate, type RecalibrationMethod } from './recalibrate.js';
import { COHORT_FORMATS, runValidate, type CohortFormat } from './validate.js';

/** `icu-mortality validate` and `recalibrate`: a site measures the model on its stays and refits its calibration. */

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be an integer >= 1');
  return n;
}

interface CohortFlags {
  format: CohortFormat;
  input: string;
  outcomes: string;
  idColumn?: string;
  outcomeColumn?: string;
  modelDir?: string;
  modelVersion?: string;
  threads?: number;
  workers?: number;
  quiet?: boolean;
}

function cohortOptions(command: Command): Command {
  return command
    .addOption(new Option('-f, --format <format>', 'input format').choices([...COHORT_FORMATS]).makeOptionMandatory())
    .requiredOption(
      '-i, --input <path>',
      'the cohort: physionet2012 a directory of <RecordID>.txt files or a .tar.gz of them; ndjson/long-csv a file',
    )
    .requiredOption(
      '--outcomes <file>',
      "CSV with a header: the stay's id in the first column, in-hospital death (0/1 or true/false) in In-hospital_death (PhysioNet's Outcomes-a.txt as it is)",
    )
    .option('--id-column <name>', 'the id column of the outcome file (default: its first column)')
    .option('--outcome-column <name>', 'the outcome column of the outcome file (default In-hospital_death)')
    .option(
      '--model-dir <dir>',
      'a model folder with <version>/ folders (the highest is used) or one version folder; default: the bundled models/icu-mortality',
    )
    .option('--model-version <version>', 'a version folder inside --model-dir (default: the highest)')
    .option('--threads <n>', 'ONNX Runtime intra-op threads per session (default 1)', positiveInt)
    .option('--workers <n>', 'inference worker threads (default: one per core, at most 4)', positiveInt)
    .option('-q, --quiet', 'no summary');
}

export function addEvaluationCommands(program: Command): void {
  cohortOptions(
    program
      .command('validate')
      .description(
        "score a local cohort, join its outcomes and write a validation report: DIR/report.json (AUROC with bootstrap CI, AUPRC, Brier, calibration intercept/slope/ECE/deciles, thresholds, subgroups, the model card's development figures) and DIR/report.html (charts, opens offline)",
      ),
  )
    .requiredOption('--report <dir>', 'folder for report.json and report.html (created if needed)')
    .action(async (options: CohortFlags & { report: string }) => {
      await runValidate(options);
    });
  cohortOptions(
    program
      .command('recalibrate')
      .description(
        "fit p' = sigmoid(a + b logit p) on a local cohort (at least 100 deaths and 100 survivors) and write a new model version beside the one it comes from: the graph with the fit folded in (same ranking), its manifest's recalibration, a model-card section and the cohort's report",
      ),
  )
    .requiredOption('--version <version>', 'the new version (a folder name beside the others, e.g. 1.6.0-site1)')
    .option('--from <version>', 'the version to recalibrate (default: the highest in --model-dir)')
    .addOption(
      new Option('--method <method>', 'logistic: intercept and slope; intercept: the intercept only (slope 1)')
        .choices([...RECALIBRATION_METHODS])
        .default('logistic'),
    )
    .action(async (options: CohortFlags & { version: string; from?: string; method: RecalibrationMethod }) => {
      await runRecalibrate(options);
    });
}
