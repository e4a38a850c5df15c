import assert from 'node:assert/strict';
import { test } from 'node:test';
import { splitLines, type LineItem } from '../../src/scoring/lines.js';

type Line = { number: number; text: string } | { number: number; tooLong: true };

/** The lines, with their bytes decoded as UTF-8 for comparison. */
async function collect(chunks: Array<string | Buffer>, max = 1024): Promise<Line[]> {
  async function* source() {
    for (const c of chunks) yield c;
  }
  const out: Line[] = [];
  for await (const l of splitLines(source(), max))
    out.push(l.tooLong ? { number: l.number, tooLong: true } : { number: l.number, text: l.bytes.toString('utf8') });
  return out;
}

test('lines are split across chunk boundaries, counted from 1 with blank lines counted', async () => {
  const lines = await collect(['{"a":', '1}\n\n{"b"', ':2}\r\n', '{"c":3}']);
  assert.deepEqual(lines, [
    { number: 1, text: '{"a":1}' },
    { number: 3, text: '{"b":2}' },
    { number: 4, text: '{"c":3}' },
  ]);
});

test('a multi-byte character split between chunks is decoded whole', async () => {
  const bytes = Buffer.from('{"id":"Zoë"}\n', 'utf8');
  const at = bytes.indexOf(0xc3) + 1;
  const lines = await collect([bytes.subarray(0, at), bytes.subarray(at)]);
  assert.deepEqual(lines[0], { number: 1, text: '{"id":"Zoë"}' });
});

test('a line over the limit is reported as too long and reading goes on', async () => {
  const long = 'x'.repeat(50);
  const lines = await collect([`ok\n${long.slice(0, 20)}`, long.slice(20), '\nnext\n', long, '\n'], 16);
  assert.deepEqual(lines, [
    { number: 1, text: 'ok' },
    { number: 2, tooLong: true },
    { number: 3, text: 'next' },
    { number: 4, tooLong: true },
  ]);
});

test('lines of whitespace are skipped as String.prototype.trim() sees whitespace, Unicode spaces included', async () => {
  const lines = await collect([' \t\n\u00a0\u2028 \n\u000b\f\n{"a":1} \n\u00a0x\n']);
  assert.deepEqual(lines, [
    { number: 4, text: '{"a":1} ' },
    { number: 5, text: '\u00a0x' },
  ]);
});

test('a line keeps its bytes when the source writes over its chunk afterwards', async () => {
  const chunk = Buffer.from('{"a":1}\n{"b":2}\n');
  async function* source() {
    yield chunk;
  }
  const out: LineItem[] = [];
  for await (const l of splitLines(source(), 1024)) out.push(l);
  chunk.fill(0x20);
  assert.deepEqual(
    out.map((l) => l.bytes?.toString('utf8')),
    ['{"a":1}', '{"b":2}'],
  );
});
