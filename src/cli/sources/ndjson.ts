import type { PatientValidator } from '../../clinical/validate.js';
import { splitLines } from '../../scoring/lines.js';
import { parseNdjsonLine } from '../../scoring/ndjson.js';
import { inShard, type Shard } from '../shard.js';
import { countedInput } from './input.js';
import type { RecordSource } from './types.js';

/**
 * One patient per line, the same object as POST /v1/predict takes (ids optional: `line-<n>` stands in); with the
 * model's validator, lines are scanned (src/clinical/scan.ts).
 */
export async function ndjsonSource(
  path: string,
  shard: Shard,
  maxRecordBytes: number,
  validator?: PatientValidator,
): Promise<RecordSource> {
  const input = await countedInput(path);
  return {
    unit: 'bytes',
    total: input.total,
    position: input.position,
    async *records() {
      // A longer line is reported as an error for that line, without buffering it.
      for await (const line of splitLines(input.open(), maxRecordBytes)) {
        const parsed = parseNdjsonLine(line, maxRecordBytes, validator);
        if (parsed.failure?.error === 'line_too_long') parsed.failure.message += ' (--max-record-bytes)';
        const id = parsed.id ?? `line-${line.number}`;
        if (!inShard(shard, id)) continue;
        const where = { file: path, line: line.number };
        yield parsed.failure ? { where, id, failure: parsed.failure } : { where, id, input: parsed.input };
      }
    },
  };
}
