import { randomUUID } from 'node:crypto';

/**
 * Holds back CSV bytes one record at a time (RFC 4180: a newline inside double quotes does not end
 * a record) so that a record longer than `maxBytes` is never buffered whole: its bytes are dropped
 * as they come and a one-line marker record takes its place, carrying its first bytes as an excerpt.
 */

const QUOTE = 0x22;
const NEWLINE = 0x0a;
/** Bytes of a skipped record kept for the report: enough to show its id and where it went wrong. */
export const EXCERPT_BYTES = 120;

export interface RecordLimit {
  /** The bytes, each record over the limit replaced by `<marker>,"<excerpt>"`. */
  bytes: AsyncGenerator<Buffer>;
  /** First field of a marker record: random per run, so no data can pass for it. */
  marker: string;
}

function quoted(excerpt: Buffer): Buffer {
  return Buffer.from(`"${excerpt.toString('utf8').replace(/"/g, '""')}"`);
}

export function limitCsvRecords(source: AsyncIterable<Buffer>, maxBytes: number): RecordLimit {
  const marker = `oversized-${randomUUID()}`;
  async function* bytes(): AsyncGenerator<Buffer> {
    let inQuotes = false;
    // The current record's bytes from earlier chunks (while it is within the limit).
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let skipping = false;
    let excerpt = Buffer.alloc(0);
    const markerLine = (): Buffer => Buffer.concat([Buffer.from(`${marker},`), quoted(excerpt), Buffer.from('\n')]);
    const startExcerpt = (parts: Buffer[]): void => {
      excerpt = Buffer.concat(parts).subarray(0, EXCERPT_BYTES);
      excerpt = Buffer.from(excerpt);
    };
    for await (const chunk of source) {
      const out: Buffer[] = [];
      let recordStart = 0;
      let pos = 0;
      // The next quote at or after pos (-1: none left): searched again only once passed, so a chunk
      // of many unquoted records is scanned once, not once per record.
      let quote = chunk.indexOf(QUOTE);
      const nextQuote = (): number => {
        if (quote >= 0 && quote < pos) quote = chunk.indexOf(QUOTE, pos);
        return quote;
      };
      for (;;) {
        if (inQuotes) {
          const q = nextQuote();
          if (q < 0) break;
          inQuotes = false;
          pos = q + 1;
          continue;
        }
        const q = nextQuote();
        const n = chunk.indexOf(NEWLINE, pos);
        if (q >= 0 && (n < 0 || q < n)) {
          inQuotes = true;
          pos = q + 1;
          continue;
        }
        if (n < 0) break;
        const tail = chunk.subarray(recordStart, n + 1);
        if (!skipping && pendingBytes + tail.length > maxBytes + 1) {
          startExcerpt([...pending, tail]);
          skipping = true;
        }
        if (skipping) out.push(markerLine());
        else out.push(...pending, tail);
        pending = [];
        pendingBytes = 0;
        skipping = false;
        recordStart = n + 1;
        pos = n + 1;
      }
      const rest = chunk.subarray(recordStart);
      if (!skipping && rest.length > 0) {
        if (pendingBytes + rest.length > maxBytes + 1) {
          startExcerpt([...pending, rest]);
          skipping = true;
          pending = [];
          pendingBytes = 0;
        } else {
          // Copied: the source may reuse its chunk once the next one is asked for.
          pending.push(Buffer.from(rest));
          pendingBytes += rest.length;
        }
      }
      if (out.length > 0) yield Buffer.concat(out);
    }
    if (skipping) yield markerLine();
    else if (pendingBytes > 0) yield Buffer.concat(pending);
  }
  return { bytes: bytes(), marker };
}
