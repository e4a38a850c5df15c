import assert from 'node:assert/strict';
import { test } from 'node:test';
import { limitCsvRecords } from '../../../src/cli/sources/record-limit.js';

/** The CSV record limit in front of csv-parse: RFC 4180 records, whatever the chunk boundaries. */

async function run(text: string, chunkBytes: number, maxBytes: number): Promise<{ out: string; marker: string }> {
  const bytes = Buffer.from(text);
  async function* chunks(): AsyncGenerator<Buffer> {
    for (let i = 0; i < bytes.length; i += chunkBytes) yield bytes.subarray(i, i + chunkBytes);
  }
  const limited = limitCsvRecords(chunks(), maxBytes);
  const parts: Buffer[] = [];
  for await (const b of limited.bytes) parts.push(b);
  return { out: Buffer.concat(parts).toString(), marker: limited.marker };
}

const SMALL = 'id,time,variable,value\na,00:10,HR,80\nb,00:20,noteEmbedding,"0.1\n0.2 ""x"""\nc,01:00,HR,90';

test('records within the limit pass unchanged, for every chunk size, a quoted newline included', async () => {
  for (const size of [1, 2, 3, 7, 16, 1000])
    assert.equal((await run(SMALL, size, 1024)).out, SMALL, `chunks of ${size}`);
});

test('a record over the limit becomes one marker record with its first bytes; a newline in its quotes does not end it', async () => {
  const long = `b,00:20,HR,"${'x'.repeat(500)}\n${'y'.repeat(500)}"`;
  const text = `id,time,variable,value\na,00:10,HR,80\n${long}\nc,01:00,HR,90\n`;
  for (const size of [1, 5, 64, 4096]) {
    const { out, marker } = await run(text, size, 300);
    // The marker keeps the record's first 120 bytes.
    const excerpt = long.slice(0, 120).replace(/"/g, '""');
    assert.equal(
      out,
      `id,time,variable,value\na,00:10,HR,80\n${marker},"${excerpt}"\nc,01:00,HR,90\n`,
      `chunks of ${size}`,
    );
  }
});
