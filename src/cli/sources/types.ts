import type { ScoreInput } from '../../scoring/pipeline.js';

/** Where a record came from, for the error report: a file, and a line in it when it has lines. */
export interface RecordWhere {
  file: string;
  line?: number;
}

export type SourceRecord = ScoreInput<RecordWhere> & { id: string };

/**
 * A reader of one input format. `records()` yields this shard's records in the input's
 * order; every record has an id (its own, or one made from its position) so that `--resume`
 * can recognise it. Progress is reported in the reader's own unit: files for a directory,
 * bytes of the input file otherwise.
 */
export interface RecordSource {
  readonly unit: 'records' | 'bytes';
  /** Total in `unit`, when known before reading (not for stdin). */
  readonly total: number | undefined;
  /** How far reading has got, in `unit`. */
  position(): number;
  records(): AsyncGenerator<SourceRecord>;
}
