import type { Command } from 'commander';
import { z } from 'zod';
import { storeEnvShape, toStoreConfig } from '../store/config.js';
import { upsertOutcomes, type OutcomeInput } from '../store/outcomes.js';
import { openStore } from '../store/store.js';
import { readOutcomeRecords, type OutcomeFileOptions } from './outcomes.js';
import { ScoreCommandError } from './score.js';

/**
 * `icu-mortality outcomes import`: an outcome file (the CSV `validate` reads) into the service's
 * store (DATA_DIR or DATABASE_URL, as the service reads them), as POST /v1/outcomes stores them.
 */

/** Rows per transaction: a large file commits in steps, each retried import leaves nothing half done. */
const ROWS_PER_TRANSACTION = 1000;
/** A store that does not answer within this is reported, not waited on forever. */
const READY_TIMEOUT_MS = 30_000;

export interface OutcomesImportOptions extends OutcomeFileOptions {
  input: string;
  quiet?: boolean;
}

export interface OutcomesImportSummary {
  stored: number;
  updated: number;
  unchanged: number;
  unmatched: number;
}

export async function runOutcomesImport(
  options: OutcomesImportOptions,
  env: Record<string, string | undefined> = process.env,
  now: Date = new Date(),
): Promise<OutcomesImportSummary> {
  const parsed = z.object(storeEnvShape).safeParse(env);
  if (!parsed.success)
    throw new ScoreCommandError(
      `invalid configuration:\n  ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n  ')}`,
    );
  const records = await readOutcomeRecords(options.input, options);
  const store = openStore(toStoreConfig(parsed.data));
  const summary: OutcomesImportSummary = { stored: 0, updated: 0, unchanged: 0, unmatched: 0 };
  try {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      store.ready(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new ScoreCommandError(`the ${store.backend} store did not answer within ${READY_TIMEOUT_MS / 1000} s`),
            ),
          READY_TIMEOUT_MS,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    // Without a time column an outcome is taken as known when first imported: it joins the id's
    // latest prediction then, and importing the file again changes nothing.
    const rows: OutcomeInput[] = records.map((r) => ({
      subjectKey: store.subjectKey(r.id),
      died: r.died === 1,
      ...(r.at === undefined ? {} : { at: r.at }),
    }));
    for (let start = 0; start < rows.length; start += ROWS_PER_TRANSACTION) {
      const written = await upsertOutcomes(
        store.client,
        rows.slice(start, start + ROWS_PER_TRANSACTION),
        now.getTime(),
      );
      for (const w of written) {
        summary[w.status]++;
        if (!w.matched) summary.unmatched++;
      }
    }
  } finally {
    await store.close();
  }
  if (!options.quiet)
    process.stderr.write(
      `outcomes: ${records.length} read; ${summary.stored} stored, ${summary.updated} updated, ${summary.unchanged} unchanged; ${summary.unmatched} without a prediction at or before their time\n`,
    );
  return summary;
}

export function addOutcomeCommands(program: Command): void {
  program
    .command('outcomes')
    .description("the service's outcome store")
    .command('import')
    .description(
      "load an outcome file into the service's store (SQLite in DATA_DIR, or DATABASE_URL with SITE_ID_KEY, as the service reads them), as POST /v1/outcomes does: idempotent, ids stored only as an HMAC",
    )
    .requiredOption(
      '-i, --input <file>',
      "CSV with a header: the stay's id in the first column, in-hospital death (0/1 or true/false) in In-hospital_death (the format validate reads)",
    )
    .option('--id-column <name>', 'the id column (default: the first column)')
    .option('--outcome-column <name>', 'the outcome column (default In-hospital_death)')
    .option(
      '--at-column <name>',
      'a column of the times each outcome was known (ISO 8601 with offset); without it, the time an outcome is first imported',
    )
    .option('-q, --quiet', 'no summary')
    .action(async (options: OutcomesImportOptions) => {
      await runOutcomesImport(options);
    });
}
