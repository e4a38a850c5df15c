/**
 * Splits a byte stream into NDJSON lines without ever holding more than one line (plus one
 * read chunk) in memory: the request body of a streaming prediction, or a file the CLI reads,
 * can be of any size. Splitting happens on bytes (0x0A cannot occur inside a UTF-8 multi-byte
 * sequence), so a chunk boundary inside a character is harmless.
 */

export type LineItem =
  /**
   * `number` is 1-based and counts every line, blank ones included, as an editor does.
   * `bytes`: the line's UTF-8 bytes without the newline (and a `\r` before it), in a buffer
   * of its own that nothing else writes to.
   */
  | { number: number; bytes: Buffer; tooLong?: undefined }
  /** The line exceeded the limit; its bytes were skipped, not buffered. */
  | { number: number; bytes?: undefined; tooLong: true };

const NEWLINE = 0x0a;

/** Lines of `source`; blank lines are skipped (but counted), a trailing `\r` is dropped. */
export async function* splitLines(
  source: AsyncIterable<Buffer | Uint8Array | string>,
  maxLineBytes: number,
): AsyncGenerator<LineItem> {
  let parts: Buffer[] = [];
  let partBytes = 0;
  let skipping = false;
  let number = 0;

  const finish = (tail: Buffer): LineItem | undefined => {
    number++;
    if (skipping) {
      skipping = false;
      parts = [];
      partBytes = 0;
      return { number, tooLong: true };
    }
    // A line within one chunk is copied out of it (the source may reuse its chunks); one
    // joined from several parts is already a buffer of its own.
    const joined = parts.length > 0;
    const bytes = joined ? Buffer.concat([...parts, tail]) : tail;
    parts = [];
    partBytes = 0;
    let end = bytes.length;
    if (end > 0 && bytes[end - 1] === 0x0d) end--;
    if (end > maxLineBytes) return { number, tooLong: true };
    if (isBlank(bytes, end)) return undefined;
    return { number, bytes: joined ? bytes.subarray(0, end) : Buffer.from(bytes.subarray(0, end)) };
  };

  for await (const chunk of source) {
    const buf =
      typeof chunk === 'string'
        ? Buffer.from(chunk, 'utf8')
        : Buffer.isBuffer(chunk)
          ? chunk
          : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(NEWLINE, start);
      if (nl < 0) break;
      const item = finish(buf.subarray(start, nl));
      start = nl + 1;
      if (item) yield item;
    }
    if (start < buf.length && !skipping) {
      const rest = buf.subarray(start);
      partBytes += rest.length;
      // +1: a "\r" before the newline is not part of the line's limit.
      if (partBytes > maxLineBytes + 1) {
        skipping = true;
        parts = [];
        partBytes = 0;
      } else {
        // Copy: the source may reuse its chunk buffer once we ask for the next one.
        parts.push(Buffer.from(rest));
      }
    }
  }
  if (partBytes > 0 || skipping) {
    const item = finish(Buffer.alloc(0));
    if (item) yield item;
  }
}

/**
 * Nothing but whitespace, as String.prototype.trim() sees it (which also trims Unicode spaces, so a line with any non-
 * ASCII byte is decoded to ask it).
 */
function isBlank(bytes: Buffer, end: number): boolean {
  for (let i = 0; i < end; i++) {
    const c = bytes[i] as number;
    if (c >= 0x80) return bytes.toString('utf8', 0, end).trim() === '';
    // trim() removes ASCII tab, LF, VT, FF, CR and space.
    if (!(c === 0x20 || (c >= 0x09 && c <= 0x0d))) return false;
  }
  return true;
}
