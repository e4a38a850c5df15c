import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Parser, type ReadEntry } from 'tar';
import { UnreadableRecordError, physionetStay } from '../../clinical/physionet.js';
import type { Manifest } from '../../model/manifest.js';
import { inShard, type Shard } from '../shard.js';
import type { RecordSource, SourceRecord } from './types.js';

/**
 * PhysioNet/CinC 2012 records (`<RecordID>.txt`), from a directory (searched recursively,
 * files in code-point order of their relative paths so that every machine of a sharded run
 * sees the same order) or from a .tar.gz / .tar of them (in archive order).
 */

/** Files read ahead of the one being parsed: enough to hide disk latency, few enough to stay small. */
const READ_AHEAD = 16;

/** A record's id before it is read: its file name without .txt (the RecordID, in the challenge's files). */
function recordStem(file: string): string {
  return basename(file).replace(/\.txt$/i, '');
}

/** A file over the record limit: reported, never read. */
function tooLong(file: string, bytes: number, maxRecordBytes: number): SourceRecord {
  return {
    where: { file },
    id: recordStem(file),
    failure: {
      error: 'record_too_long',
      message: `the record is ${bytes} bytes, longer than ${maxRecordBytes} bytes (--max-record-bytes), and was not read`,
      details: [],
    },
  };
}

function toRecord(text: string, file: string, manifest: Manifest): SourceRecord {
  const stem = recordStem(file);
  try {
    // Built and validated here, once: the scoring core takes the stay as it is.
    const stay = physionetStay(text, manifest, stem);
    return { where: { file }, id: stay.id ?? stem, input: stay };
  } catch (error) {
    if (!(error instanceof UnreadableRecordError)) throw error;
    return { where: { file }, id: stem, failure: { error: 'unreadable_record', message: error.message, details: [] } };
  }
}

export async function physionetDirectorySource(
  dir: string,
  manifest: Manifest,
  shard: Shard,
  maxRecordBytes: number,
): Promise<RecordSource> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries
    .filter((e) => e.isFile() && e.name.toLowerCase().endsWith('.txt'))
    .map((e) =>
      join(e.parentPath ?? e.path, e.name)
        .slice(dir.length)
        .replace(/^[\\/]+/, ''),
    )
    .sort()
    .filter((file) => inShard(shard, recordStem(file)));
  let done = 0;
  return {
    unit: 'records',
    total: files.length,
    position: () => done,
    async *records() {
      const ahead: Array<Promise<string | number>> = [];
      let next = 0;
      // A file's size is checked before it is read: a number stands for one over the limit.
      const read = async (path: string): Promise<string | number> => {
        const { size } = await stat(path);
        return size > maxRecordBytes ? size : readFile(path, 'utf8');
      };
      const fill = (): void => {
        while (ahead.length < READ_AHEAD && next < files.length) {
          const p = read(join(dir, files[next++]!));
          p.catch(() => undefined); // awaited below; this only stops an early exit leaving it unhandled
          ahead.push(p);
        }
      };
      for (const file of files) {
        fill();
        const text = await ahead.shift()!;
        done++;
        yield typeof text === 'number' ? tooLong(file, text, maxRecordBytes) : toRecord(text, file, manifest);
      }
    },
  };
}

export async function physionetArchiveSource(
  archive: string,
  manifest: Manifest,
  shard: Shard,
  maxRecordBytes: number,
): Promise<RecordSource> {
  const size = (await stat(archive)).size;
  let bytes = 0;
  return {
    unit: 'bytes',
    total: size,
    position: () => bytes,
    async *records() {
      // The parser is synchronous: each write delivers the entries it completes before
      // returning, so reading the next chunk only after yielding them is the backpressure.
      const ready: Array<{ path: string; text: string } | { path: string; bytes: number }> = [];
      const parser = new Parser();
      parser.on('entry', (entry: ReadEntry) => {
        const isRecord =
          entry.type === 'File' && entry.path.toLowerCase().endsWith('.txt') && !basename(entry.path).startsWith('._');
        if (!isRecord || !inShard(shard, recordStem(entry.path))) {
          entry.resume();
          return;
        }
        if (entry.size > maxRecordBytes) {
          ready.push({ path: entry.path, bytes: entry.size });
          entry.resume();
          return;
        }
        const chunks: Buffer[] = [];
        entry.on('data', (c: Buffer) => chunks.push(c));
        entry.on('end', () => ready.push({ path: entry.path, text: Buffer.concat(chunks).toString('utf8') }));
      });
      let parseError: Error | undefined;
      parser.on('error', (e: Error) => {
        parseError = e;
      });
      parser.on('warn', (code: string, message: string) => {
        // TAR_BAD_ARCHIVE etc.: a damaged archive must not pass for a short one.
        if (code === 'TAR_BAD_ARCHIVE' || code === 'TAR_ABORT' || code === 'TAR_ENTRY_ERROR')
          parseError ??= new Error(`${archive}: ${message}`);
      });
      const input = createReadStream(archive, { highWaterMark: 256 * 1024 });
      try {
        for await (const chunk of input) {
          bytes += (chunk as Buffer).length;
          parser.write(chunk as Buffer);
          if (parseError) throw parseError;
          while (ready.length > 0) {
            const r = ready.shift()!;
            yield 'bytes' in r ? tooLong(r.path, r.bytes, maxRecordBytes) : toRecord(r.text, r.path, manifest);
          }
        }
        parser.end();
        if (parseError) throw parseError;
        while (ready.length > 0) {
          const r = ready.shift()!;
          yield 'bytes' in r ? tooLong(r.path, r.bytes, maxRecordBytes) : toRecord(r.text, r.path, manifest);
        }
      } finally {
        input.destroy();
      }
    },
  };
}
