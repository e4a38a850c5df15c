import { createReadStream } from 'node:fs';
import { parse } from 'csv-parse';

/**
 * Outcome CSV (id column, 0/1 or true/false death column), so PhysioNet 2012's Outcomes-a.txt
 * reads as it is. Bad values and repeated ids fail naming their line: validation is measured on them.
 */

export const DEFAULT_OUTCOME_COLUMN = 'In-hospital_death';

export interface OutcomeFileOptions {
  /** The id column's header (default: the first column). */
  idColumn?: string;
  /** The outcome column's header (default In-hospital_death). */
  outcomeColumn?: string;
  /** A column of times (ISO 8601 with offset) at which each outcome was known; read by readOutcomeRecords only. */
  atColumn?: string;
}

/** One line of an outcome file. */
export interface OutcomeRecord {
  id: string;
  died: 0 | 1;
  /** Epoch milliseconds, when the file has an `atColumn`. */
  at?: number;
}

/** ISO 8601 date-time with a UTC offset, as POST /v1/outcomes takes it. */
const ISO_WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

export class OutcomeFileError extends Error {
  override readonly name = 'OutcomeFileError';
}

const VALUES: Record<string, 0 | 1> = { '0': 0, '1': 1, false: 0, true: 1 };

/** Reads the whole file: id -> 1 (died in hospital) or 0. */
export async function readOutcomes(path: string, opts: OutcomeFileOptions = {}): Promise<Map<string, 0 | 1>> {
  const outcomes = new Map<string, 0 | 1>();
  for (const record of await readOutcomeRecords(path, opts)) outcomes.set(record.id, record.died);
  return outcomes;
}

/** Reads the whole file: one record per line, in file order, each id once. */
export async function readOutcomeRecords(path: string, opts: OutcomeFileOptions = {}): Promise<OutcomeRecord[]> {
  const outcomeColumn = opts.outcomeColumn ?? DEFAULT_OUTCOME_COLUMN;
  const rows = createReadStream(path).pipe(
    parse({ info: true, skip_empty_lines: true, relax_column_count: true, trim: true, bom: true }),
  );
  const outcomes: OutcomeRecord[] = [];
  const lineOf = new Map<string, number>();
  let idAt = -1;
  let outcomeAt = -1;
  let timeAt = -1;
  try {
    for await (const { record, info } of rows as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      const line = info.lines;
      if (idAt === -1) {
        idAt = opts.idColumn === undefined ? 0 : record.indexOf(opts.idColumn);
        outcomeAt = record.indexOf(outcomeColumn);
        if (idAt === -1) throw new OutcomeFileError(`${path}: no column ${opts.idColumn} in the header (line ${line})`);
        if (outcomeAt === -1)
          throw new OutcomeFileError(
            `${path}: no column ${outcomeColumn} in the header (line ${line}); name the outcome column with --outcome-column`,
          );
        if (opts.atColumn !== undefined) {
          timeAt = record.indexOf(opts.atColumn);
          if (timeAt === -1)
            throw new OutcomeFileError(`${path}: no column ${opts.atColumn} in the header (line ${line})`);
        }
        continue;
      }
      const id = record[idAt] ?? '';
      const raw = record[outcomeAt];
      if (id === '') throw new OutcomeFileError(`${path} line ${line}: no id`);
      const value = raw === undefined ? undefined : VALUES[raw.toLowerCase()];
      if (value === undefined)
        throw new OutcomeFileError(
          `${path} line ${line}: ${outcomeColumn} is ${raw === undefined ? 'missing' : JSON.stringify(raw)}, not 0, 1, true or false`,
        );
      const first = lineOf.get(id);
      if (first !== undefined) throw new OutcomeFileError(`${path} line ${line}: the same id as line ${first}`);
      lineOf.set(id, line);
      if (timeAt === -1) {
        outcomes.push({ id, died: value });
        continue;
      }
      const time = record[timeAt] ?? '';
      const at = ISO_WITH_OFFSET.test(time) ? Date.parse(time) : Number.NaN;
      if (!Number.isFinite(at))
        throw new OutcomeFileError(
          `${path} line ${line}: ${opts.atColumn} is ${JSON.stringify(time)}, not an ISO 8601 time with an offset (2026-03-02T10:00:00Z)`,
        );
      outcomes.push({ id, died: value, at });
    }
  } catch (error) {
    if (error instanceof OutcomeFileError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new OutcomeFileError(`${path}: ${message}`);
  }
  if (idAt === -1) throw new OutcomeFileError(`${path}: empty, no header`);
  return outcomes;
}
