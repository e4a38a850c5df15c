import type { Manifest } from '../model/manifest.js';
import { hourOf } from './binning.js';
import { MAX_HOURS_RECEIVED } from './schemas.js';
import { BuiltStay, StayBuilder } from './stay.js';
import type { FieldIssue } from './types.js';

/**
 * Long-form CSV, one measurement a row (`id,time,variable,value[,unit]`; README.md, "Long-form CSV").
 * An id's rows must be contiguous: that is what lets a file of any size be read in flat memory.
 */

export interface LongCsvPatient {
  id: string;
  /** 1-based CSV record number of the id's first data row (the header is record 1). */
  firstRow: number;
  /** Built and validated: the scoring core takes it as it is. */
  stay: BuiltStay;
}

export interface LongCsvFailure {
  id: string | undefined;
  firstRow: number;
  message: string;
  details: FieldIssue[];
}

export type LongCsvItem = ({ ok: true } & LongCsvPatient) | ({ ok: false } & LongCsvFailure);

/**
 * A record the byte reader found longer than its limit and skipped: `message` names the limit and
 * its setting, `excerpt` is the record's first bytes (an id is read from them when it is there whole).
 */
export interface OversizedRecord {
  oversized: true;
  message: string;
  excerpt: string;
}

/** At most `max` characters of `text`, quoted: a report never copies a whole field. */
export function excerptOf(text: string, max = 64): string {
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
}

/** The header is wrong: nothing in the file can be read. */
export class LongCsvHeaderError extends Error {
  override readonly name = 'LongCsvHeaderError';
}

const REQUIRED = ['id', 'time', 'variable', 'value'] as const;
const HHMM = /^(\d+):([0-5]\d)$/;
const HOURS = /^\d+(\.\d+)?$/;

/** Minutes since admission, or undefined when the text is not a time. */
export function parseElapsedTime(text: string): number | undefined {
  const t = text.trim();
  const hhmm = HHMM.exec(t);
  if (hhmm) return Number(hhmm[1]) * 60 + Number(hhmm[2]);
  if (HOURS.test(t)) return Number(t) * 60;
  return undefined;
}

interface Columns {
  id: number;
  time: number;
  variable: number;
  value: number;
  unit: number | undefined;
}

function readHeader(header: readonly string[]): Columns {
  const names = header.map((h) => h.trim().toLowerCase());
  const index = (name: string): number | undefined => {
    const i = names.indexOf(name);
    return i < 0 ? undefined : i;
  };
  const missing = REQUIRED.filter((name) => index(name) === undefined);
  if (missing.length > 0) {
    throw new LongCsvHeaderError(
      `the CSV header must name the columns id,time,variable,value[,unit]; missing: ${missing.join(', ')}`,
    );
  }
  return {
    id: index('id')!,
    time: index('time')!,
    variable: index('variable')!,
    value: index('value')!,
    unit: index('unit'),
  };
}

/** Only the first problems of an id are reported: one is enough to fix a record, thousands flood the report. */
const MAX_DETAILS = 5;

/** Feeds one id's rows to the stay builder as they come, problems located at `row <n>` and the column. */
class PatientRows {
  readonly stay: StayBuilder;

  constructor(
    readonly id: string,
    readonly firstRow: number,
    private readonly manifest: Manifest,
  ) {
    this.stay = new StayBuilder(manifest, {
      outOfRange: 'reject',
      maxIssues: MAX_DETAILS,
      locate: (row, column) => [`row ${row}`, column],
    });
    this.stay.header.id = id;
  }

  /** A problem found before the row could be read (a record over the size limit). */
  problem(row: number, message: string): void {
    this.stay.fail([`row ${row}`], message);
  }

  add(row: number, time: string, variable: string, valueText: string, unit: string | undefined): void {
    const stay = this.stay;
    if (stay.issueCount >= MAX_DETAILS) return;
    const fail = (column: string, message: string): void => stay.fail([`row ${row}`, column], message);
    const value = valueText.trim();
    const j = stay.column(variable);
    if (j < 0) {
      // Not a time series: a descriptor (the time is not read), a note embedding, or unknown.
      if (variable === 'noteEmbedding') {
        const numbers = parseNumberList(value);
        if (numbers === undefined)
          return fail('value', 'noteEmbedding must be numbers separated by spaces, or a JSON array of numbers');
        stay.header.noteEmbedding = numbers;
        return;
      }
      if (!stay.descriptor(variable, value, row)) fail('variable', `unknown variable ${excerptOf(variable)}`);
      return;
    }
    const minutes = parseElapsedTime(time);
    if (minutes === undefined)
      return fail('time', `time ${excerptOf(time)} is not hh:mm or a number of hours since admission`);
    const hour = hourOf(minutes, this.manifest);
    // Checked here to quote the time: the builder refuses the hour too.
    if (hour >= MAX_HOURS_RECEIVED)
      return fail('time', `time ${excerptOf(time)} is after the longest stay read, ${MAX_HOURS_RECEIVED} hours`);
    const n = Number(value);
    if (value === '' || !Number.isFinite(n))
      return fail('value', `value ${excerptOf(value)} of ${variable} is not a number`);
    if (unit !== undefined && unit.trim() !== '' && !stay.unit(variable, unit.trim(), row)) return;
    // "Last value of the hour" means the latest time, then file order.
    stay.addAt(hour, j, n, row, minutes);
  }

  finish(): LongCsvItem {
    const built = this.stay.build();
    if (!built.ok) {
      return {
        ok: false,
        id: this.id,
        firstRow: this.firstRow,
        message: 'the rows of this id cannot be read',
        details: built.issues,
      };
    }
    return { ok: true, id: this.id, firstRow: this.firstRow, stay: new BuiltStay(this.manifest, built.patient) };
  }
}

/** "0.1 -2 3e-4" or "[0.1, -2, 3e-4]" as numbers; undefined when any item is not a finite number. */
function parseNumberList(text: string): number[] | undefined {
  let items: unknown[];
  if (text.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (!Array.isArray(parsed)) return undefined;
      items = parsed;
    } catch {
      return undefined;
    }
  } else {
    items = text
      .split(/\s+/)
      .filter((t) => t !== '')
      .map(Number);
  }
  return items.length > 0 && items.every((n) => typeof n === 'number' && Number.isFinite(n))
    ? (items as number[])
    : undefined;
}

/**
 * Groups CSV records (arrays of fields, header first, as csv-parse yields them) into
 * patients, one at a time. Throws LongCsvHeaderError when the header is unusable; every
 * other problem becomes a failure item for its id, and reading goes on.
 */
export async function* readLongCsv(
  records: AsyncIterable<string[] | OversizedRecord>,
  manifest: Manifest,
): AsyncGenerator<LongCsvItem> {
  let columns: Columns | undefined;
  let current: PatientRows | undefined;
  // Ids already finished: a second block of rows for one of them means the file is not grouped.
  const finished = new Set<string>();
  // The id of a repeated block being skipped (reported once, at its first row).
  let skipping: string | undefined;
  let row = 0;
  for await (const record of records) {
    row++;
    const oversized = 'oversized' in record ? record : undefined;
    if (!columns) {
      if (oversized) throw new LongCsvHeaderError(`the CSV header: ${oversized.message}`);
      columns = readHeader(record as string[]);
      continue;
    }
    const fields = record as string[];
    if (!oversized && fields.length === 1 && fields[0]!.trim() === '') continue;
    // Not trimmed: ids that differ only at their edges ("\t=1" and "\r=1") stay two patients.
    const id = oversized ? idOfExcerpt(oversized.excerpt, columns.id) : (fields[columns.id] ?? '');
    if (id.trim() === '') {
      yield {
        ok: false,
        id: undefined,
        firstRow: row,
        message: oversized ? `row ${row} was not read` : 'a row has no id',
        details: [{ path: [`row ${row}`, oversized ? 'record' : 'id'], message: oversized?.message ?? 'id is empty' }],
      };
      continue;
    }
    if (id === skipping) continue;
    skipping = undefined;
    if (!current || current.id !== id) {
      if (current) {
        finished.add(current.id);
        yield current.finish();
      }
      if (finished.has(id)) {
        current = undefined;
        skipping = id;
        yield {
          ok: false,
          id,
          firstRow: row,
          message: `the rows of id ${excerptOf(id)} are not contiguous`,
          details: [
            {
              path: [`row ${row}`, 'id'],
              message: 'the file must be grouped by id (all rows of a patient together); sort it by id',
            },
          ],
        };
        continue;
      }
      current = new PatientRows(id, row, manifest);
    }
    if (oversized) {
      current.problem(row, oversized.message);
      continue;
    }
    const unit = columns.unit === undefined ? undefined : fields[columns.unit];
    current.add(
      row,
      fields[columns.time] ?? '',
      (fields[columns.variable] ?? '').trim(),
      fields[columns.value] ?? '',
      unit,
    );
  }
  if (current) yield current.finish();
}

/** The id of a skipped record when its first bytes hold it whole and unquoted (else '': reported on its own). */
function idOfExcerpt(excerpt: string, column: number): string {
  const fields = excerpt.split(',');
  if (fields.length <= column + 1 || fields.slice(0, column + 1).some((f) => f.includes('"'))) return '';
  return fields[column] as string;
}
