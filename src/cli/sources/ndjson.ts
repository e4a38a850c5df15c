import type { PatientValidator } from '../../clinical/validate.js';
import { splitLines } from '../../scoring/lines.js';
import { parseNdjsonLine } from '../../scoring/ndjson.js';
import { inShard, type Shard } from '../shard.js';
import { countedInput } from './input.js';
import type { RecordSource } from './types.js';

/** Longest line read; a longer one is reported as an error for that line, without buffering it. */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;

/**
 * One patient per line, the same object as POST /v1/predict takes (ids optional: `line-<n>` stands in); with the
 * model's validator, lines are scanned (src/clinical/scan.ts).
 */
export async function ndjsonSource(path: string, shard: Shard, validator?: PatientValidator): Promise<RecordSource> {
  const input = await countedInput(path);
  return {
    unit: 'bytes',
    total: input.total,
    position: input.position,
    async *records() {
      for await (const line of splitLines(input.open(), MAX_LINE_BYTES)) {
        const parsed = parseNdjsonLine(line, MAX_LINE_BYTES, validator);
        const id = parsed.id ?? `line-${line.number}`;
        if (!inShard(shard, id)) continue;
        const where = { file: path, line: line.number };
        yield parsed.failure ? { where, id, failure: parsed.failure } : { where, id, input: parsed.input };
      }
    },
  };
}
