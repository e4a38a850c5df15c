import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { open, stat, truncate } from 'node:fs/promises';
import { once } from 'node:events';
import { parse } from 'csv-parse';
import { stringify } from 'csv-stringify/sync';
import type { PredictionResult } from '../clinical/types.js';
import { splitLines } from '../scoring/lines.js';

/**
 * The scores file, CSV or NDJSON. Every row carries the model's name and version, so outputs
 * of several versions can be told apart (and a resumed run that loaded another version is
 * refused rather than silently mixed).
 */

export type OutputFormat = 'csv' | 'ndjson';

export const CSV_COLUMNS = [
  'id',
  'probability',
  'model_name',
  'model_version',
  'hours_used',
  'truncated',
  'input_profile',
  'held_out_auroc',
] as const;

export interface ScoreRow {
  id: string;
  result: PredictionResult;
}

export function formatRows(format: OutputFormat, rows: readonly ScoreRow[]): string {
  if (rows.length === 0) return '';
  if (format === 'ndjson') {
    let text = '';
    for (const { id, result } of rows) text += `${JSON.stringify({ ...result, id })}\n`;
    return text;
  }
  let text = '';
  for (const { id: rawId, result } of rows) {
    const { probability, hoursUsed, truncated } = result;
    const id = neutraliseCell(rawId);
    const name = neutraliseCell(result.model.name);
    const version = neutraliseCell(result.model.version);
    const profile = neutraliseCell(result.inputProfile?.scenario ?? '');
    const auroc = result.inputProfile?.heldOutAuroc ?? '';
    if (isPlainField(id) && isPlainField(name) && isPlainField(version) && (profile === '' || isPlainField(profile))) {
      // What csv-stringify writes for fields that need no quoting (test/cli/output.test.ts compares).
      text += `${id},${probability},${name},${version},${hoursUsed},${truncated},${profile},${auroc}\n`;
    } else {
      text += stringify([[id, probability, name, version, hoursUsed, truncated, profile, auroc]], {
        cast: { boolean: (b) => String(b) },
      });
    }
  }
  return text;
}

/**
 * First characters that make a spreadsheet read a cell as a formula: OWASP's "CSV Injection" list (=, +, -, @, tab,
 * CR, LF; owasp.org/www-community/attacks/CSV_Injection) and the full-width forms csv-stringify's escape_formulas
 * adds for Apple Numbers. A leading quote is escaped too, so that one leading quote stripped reads any cell back.
 */
const FORMULA_START = /^[=+\-@\t\r\n\uFF1D\uFF0B\uFF0D\uFF20']/;

/** A text cell as OWASP recommends: a single quote before a formula trigger; RFC 4180 quoting is csv-stringify's. */
export function neutraliseCell(text: string): string {
  return FORMULA_START.test(text) ? `'${text}` : text;
}

/** The text neutraliseCell() was given (resume reads ids back through it). */
export function restoreCell(cell: string): string {
  return cell.startsWith("'") && FORMULA_START.test(cell.slice(1)) ? cell.slice(1) : cell;
}

/**
 * A field csv-stringify (default options) writes as it is: no delimiter, quote or line break;
 * empty fields go to csv-stringify too. Called once per batch it still showed 212 ms for
 * 30,000 rows in a CPU profile of the CLI (7 us a row, wall-clock samples with both cores busy).
 */
function isPlainField(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2c || c === 0x22 || c === 0x0a || c === 0x0d) return false;
  }
  return true;
}

export function csvHeader(): string {
  return stringify([[...CSV_COLUMNS]]);
}

/** A write stream that honours backpressure: write() resolves once the stream can take more. */
export class Sink {
  readonly #stream: WriteStream;
  #error: Error | undefined;

  constructor(path: string, append: boolean) {
    this.#stream = createWriteStream(path, { flags: append ? 'a' : 'w', highWaterMark: 1024 * 1024 });
    this.#stream.on('error', (e) => {
      this.#error = e;
    });
  }

  async write(text: string): Promise<void> {
    if (this.#error) throw this.#error;
    if (text === '') return;
    if (!this.#stream.write(text)) await once(this.#stream, 'drain');
  }

  async close(): Promise<void> {
    if (this.#error) throw this.#error;
    this.#stream.end();
    await once(this.#stream, 'finish');
  }
}

export interface ExistingOutput {
  ids: Set<string>;
  /** Model versions found in the file's rows. */
  versions: Set<string>;
  /** The file holds at least its header (CSV) or nothing needs writing before appending. */
  hasHeader: boolean;
}

/**
 * Reads the ids an earlier run already wrote, for --resume. A run killed mid-write leaves a
 * partial last line: it is cut off, so that record is scored again and written whole.
 */
export async function readExistingOutput(path: string, format: OutputFormat): Promise<ExistingOutput> {
  const ids = new Set<string>();
  const versions = new Set<string>();
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    return { ids, versions, hasHeader: false };
  }
  await cutPartialLine(path, size);
  if (format === 'ndjson') {
    for await (const line of splitLines(createReadStream(path), Number.MAX_SAFE_INTEGER)) {
      if (line.tooLong) continue;
      const row = JSON.parse(line.bytes.toString('utf8')) as { id?: unknown; model?: { version?: unknown } };
      if (typeof row.id === 'string') ids.add(row.id);
      if (typeof row.model?.version === 'string') versions.add(row.model.version);
    }
    return { ids, versions, hasHeader: true };
  }
  let header: string[] | undefined;
  const rows = createReadStream(path).pipe(parse({ relax_column_count: true, skip_empty_lines: true }));
  for await (const record of rows as AsyncIterable<string[]>) {
    if (!header) {
      header = record;
      if (header.join(',') !== CSV_COLUMNS.join(',')) {
        throw new Error(
          `${path} does not have the columns ${CSV_COLUMNS.join(',')}; it was not written by this command`,
        );
      }
      continue;
    }
    if (record[0] !== undefined) ids.add(restoreCell(record[0]));
    if (record[3] !== undefined) versions.add(restoreCell(record[3]));
  }
  return { ids, versions, hasHeader: header !== undefined };
}

async function cutPartialLine(path: string, size: number): Promise<void> {
  if (size === 0) return;
  const handle = await open(path, 'r');
  try {
    // Look back for the last newline in blocks; rows are short, so one block nearly always does.
    const block = 64 * 1024;
    let end = size;
    const last = Buffer.alloc(1);
    await handle.read(last, 0, 1, size - 1);
    if (last[0] === 0x0a) return;
    while (end > 0) {
      const start = Math.max(0, end - block);
      const buf = Buffer.alloc(end - start);
      await handle.read(buf, 0, buf.length, start);
      const nl = buf.lastIndexOf(0x0a);
      if (nl >= 0) {
        await truncate(path, start + nl + 1);
        return;
      }
      end = start;
    }
    await truncate(path, 0);
  } finally {
    await handle.close();
  }
}
