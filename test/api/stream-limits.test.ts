import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { budgetedChunks, LineBudget, LONG_LINE_BYTES } from '../../src/api/stream-budget.js';
import { buildTestApp, samplePatient } from '../helper.js';

/** Per-line and total byte bounds of POST /v1/predict/stream (STREAM_MAX_LINE_BYTES, STREAM_MAX_BUFFERED_BYTES). */

function parseLines(body: string): Array<Record<string, unknown>> {
  return body
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A valid patient line of at least `bytes` bytes: JSON allows any run of spaces between tokens. */
function paddedLine(id: string, bytes: number): string {
  const json = JSON.stringify(samplePatient(3, 5, id));
  return `{${' '.repeat(Math.max(0, bytes - json.length))}${json.slice(1)}`;
}

describe('stream line limits', () => {
  test('a line over STREAM_MAX_LINE_BYTES is an error line naming the limit and the setting; the next lines are answered', async (t) => {
    const { app } = await buildTestApp(t, { env: { STREAM_MAX_LINE_BYTES: '4096' } });
    const body = [
      JSON.stringify(samplePatient(2, 1, 'a')),
      paddedLine('huge', 20_000),
      JSON.stringify(samplePatient(2, 2, 'b')),
    ].join('\n');
    const res = await app.inject({
      method: 'POST',
      url: '/v1/predict/stream',
      headers: { 'content-type': 'application/x-ndjson' },
      payload: body,
    });
    assert.equal(res.statusCode, 200, res.body);
    const lines = parseLines(res.body);
    assert.deepEqual(
      lines.map((l) => l.line),
      [1, 2, 3],
    );
    assert.deepEqual(lines[1], {
      line: 2,
      error: {
        error: 'line_too_long',
        message: 'line 2 is longer than 4096 bytes (STREAM_MAX_LINE_BYTES)',
        details: [],
      },
    });
    assert.equal(lines[0]!.id, 'a');
    assert.equal(typeof lines[0]!.probability, 'number');
    assert.equal(lines[2]!.id, 'b');
    assert.equal(typeof lines[2]!.probability, 'number');
  });

  test('two streams of long lines with room for one long line at a time are both answered in full', async (t) => {
    const limit = 2 * LONG_LINE_BYTES;
    const { app } = await buildTestApp(t, {
      env: { STREAM_MAX_LINE_BYTES: String(limit), STREAM_MAX_BUFFERED_BYTES: String(limit) },
    });
    const send = (id: string) =>
      app.inject({
        method: 'POST',
        url: '/v1/predict/stream',
        headers: { 'content-type': 'application/x-ndjson' },
        payload: `${paddedLine(`${id}-1`, LONG_LINE_BYTES + 10)}\n${paddedLine(`${id}-2`, LONG_LINE_BYTES + 10)}\n`,
      });
    const [x, y] = await Promise.all([send('x'), send('y')]);
    for (const [res, id] of [
      [x, 'x'],
      [y, 'y'],
    ] as const) {
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(
        parseLines(res.body).map((l) => [l.id, typeof l.probability]),
        [
          [`${id}-1`, 'number'],
          [`${id}-2`, 'number'],
        ],
      );
    }
  });

  test('STREAM_MAX_BUFFERED_BYTES below STREAM_MAX_LINE_BYTES is refused at start-up, naming both', async (t) => {
    await assert.rejects(
      buildTestApp(t, { env: { STREAM_MAX_LINE_BYTES: '8192', STREAM_MAX_BUFFERED_BYTES: '4096' } }),
      /STREAM_MAX_BUFFERED_BYTES: must be at least STREAM_MAX_LINE_BYTES/,
    );
  });
});

/** A source whose chunks the test hands over one at a time. */
function manualSource(): { chunks: AsyncGenerator<Buffer>; push(text: string | null): void } {
  const queue: Array<Buffer | null> = [];
  let wake: (() => void) | undefined;
  return {
    push(text) {
      queue.push(text === null ? null : Buffer.from(text));
      wake?.();
    },
    chunks: (async function* () {
      for (;;) {
        if (queue.length === 0) await new Promise<void>((r) => (wake = r));
        const next = queue.shift();
        if (next === null || next === undefined) return;
        yield next;
      }
    })(),
  };
}

describe('the shared line budget', () => {
  test('tickets beyond the budget wait, and are granted in arrival order as others are returned', async () => {
    const budget = new LineBudget(2, 1);
    const signal = new AbortController().signal;
    assert.equal(await budget.acquire(signal), true);
    assert.equal(await budget.acquire(signal), true);
    const order: string[] = [];
    const third = budget.acquire(signal).then(() => order.push('third'));
    const fourth = budget.acquire(signal).then(() => order.push('fourth'));
    assert.equal(budget.waiting, 2);
    budget.release();
    await third;
    assert.deepEqual(order, ['third']);
    assert.equal(budget.usedBytes, 2);
    budget.release();
    await fourth;
    assert.deepEqual(order, ['third', 'fourth']);
  });

  test('a waiting stream that is stopped gives up its place', async () => {
    const budget = new LineBudget(1, 1);
    await budget.acquire(new AbortController().signal);
    const stop = new AbortController();
    const waiting = budget.acquire(stop.signal);
    stop.abort();
    assert.equal(await waiting, false);
    assert.equal(budget.waiting, 0);
  });

  test('a second long line waits until the first one has ended, then proceeds', async () => {
    const budget = new LineBudget(2 * LONG_LINE_BYTES, 2 * LONG_LINE_BYTES);
    const signal = new AbortController().signal;
    const a = manualSource();
    const b = manualSource();
    const readA = budgetedChunks(a.chunks, budget, 2 * LONG_LINE_BYTES, signal);
    const readB = budgetedChunks(b.chunks, budget, 2 * LONG_LINE_BYTES, signal);
    const long = 'x'.repeat(LONG_LINE_BYTES + 1);
    a.push(long);
    assert.equal((await readA.next()).value?.length, long.length);
    assert.equal(budget.usedBytes, 2 * LONG_LINE_BYTES);
    b.push(long);
    let bGot = false;
    const nextB = readB.next().then((r) => {
      bGot = true;
      return r;
    });
    // A short line of A's (its newline) comes and is consumed: A's ticket is returned, B's line goes on.
    a.push('y\n');
    await readA.next();
    assert.equal(bGot, false);
    const pendingA = readA.next();
    assert.equal((await nextB).value?.length, long.length);
    assert.equal(bGot, true);
    a.push(null);
    assert.equal((await pendingA).done, true);
  });
});
