import { parse } from 'csv-parse';
import { Readable } from 'node:stream';
import { LongCsvHeaderError, readLongCsv, type OversizedRecord } from '../../clinical/long-csv.js';
import type { Manifest } from '../../model/manifest.js';
import { inShard, type Shard } from '../shard.js';
import { countedInput } from './input.js';
import { limitCsvRecords } from './record-limit.js';
import type { RecordSource } from './types.js';

export { LongCsvHeaderError };

/** csv-parse's records, each marker of a skipped record turned into an OversizedRecord. */
async function* withOversized(
  rows: AsyncIterable<string[]>,
  marker: string,
  maxRecordBytes: number,
): AsyncGenerator<string[] | OversizedRecord> {
  for await (const record of rows) {
    if (record[0] !== marker) {
      yield record;
      continue;
    }
    // The excerpt is the record's first bytes (limitCsvRecords): quoted, never the whole field.
    const excerpt = JSON.stringify(`${record[1] ?? ''}…`);
    yield {
      oversized: true,
      message: `the record is longer than ${maxRecordBytes} bytes (--max-record-bytes) and was not read; it starts ${excerpt}`,
      excerpt: record[1] ?? '',
    };
  }
}

/**
 * Long-form CSV (`id,time,variable,value[,unit]`), grouped into one patient per id; no record longer than
 * maxRecordBytes is held.
 */
export async function longCsvSource(
  path: string,
  manifest: Manifest,
  shard: Shard,
  maxRecordBytes: number,
): Promise<RecordSource> {
  const input = await countedInput(path);
  return {
    unit: 'bytes',
    total: input.total,
    position: input.position,
    async *records() {
      const limited = limitCsvRecords(input.open(), maxRecordBytes);
      const rows = Readable.from(limited.bytes).pipe(
        parse({ relax_column_count: true, skip_empty_lines: true, bom: true }),
      );
      try {
        const records = withOversized(rows as AsyncIterable<string[]>, limited.marker, maxRecordBytes);
        for await (const item of readLongCsv(records, manifest)) {
          const where = { file: path, line: item.firstRow };
          const id = item.id ?? `row-${item.firstRow}`;
          if (!inShard(shard, id)) continue;
          if (item.ok) yield { where, id, input: item.stay };
          else
            yield { where, id, failure: { error: 'unreadable_record', message: item.message, details: item.details } };
        }
      } finally {
        rows.destroy();
      }
    },
  };
}
