import { parse } from 'csv-parse';
import { Readable } from 'node:stream';
import { LongCsvHeaderError, readLongCsv } from '../../clinical/long-csv.js';
import type { Manifest } from '../../model/manifest.js';
import { inShard, type Shard } from '../shard.js';
import { countedInput } from './input.js';
import type { RecordSource } from './types.js';

export { LongCsvHeaderError };

/** Long-form CSV (`id,time,variable,value[,unit]`), grouped into one patient per id. */
export async function longCsvSource(path: string, manifest: Manifest, shard: Shard): Promise<RecordSource> {
  const input = await countedInput(path);
  return {
    unit: 'bytes',
    total: input.total,
    position: input.position,
    async *records() {
      const rows = Readable.from(input.open()).pipe(
        parse({ relax_column_count: true, skip_empty_lines: true, bom: true }),
      );
      try {
        for await (const item of readLongCsv(rows as AsyncIterable<string[]>, manifest)) {
          const where = { file: path, line: item.firstRow };
          const id = item.id ?? `row-${item.firstRow}`;
          if (!inShard(shard, id)) continue;
          if (item.ok) yield { where, id, input: item.patient };
          else
            yield { where, id, failure: { error: 'unreadable_record', message: item.message, details: item.details } };
        }
      } finally {
        rows.destroy();
      }
    },
  };
}
