import assert from 'node:assert/strict';
import { test } from 'node:test';
import { splitLines, type LineItem } from '../../src/scoring/lines.js';

async function collect(chunks: Array<string | Buffer>, max = 1024): Promise<LineItem[]> {
  async function* source() {
    for (const c of chunks) yield c;
  }
  const out: LineItem[] = [];
  for await (const l of splitLines(source(), max)) out.push(l);
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
  assert.equal(lines[0]?.text, '{"id":"Zoë"}');
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
