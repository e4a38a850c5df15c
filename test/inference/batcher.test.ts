import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  Batcher,
  type BatcherObserver,
  BatcherDrainingError,
  EngineRunError,
  QueueFullError,
  RequestExceedsQueueError,
} from '../../src/inference/batcher.js';
import type { Engine } from '../../src/inference/engine.js';
import { ScriptedEngine, type Stay, buildBatch, maxAbsDiff, reference, tinyEngine } from './helpers.js';

const HOUR_MS = 3_600_000;

let real: Engine;
before(async () => {
  real = await tinyEngine({ intraOpThreads: 1 });
});
after(() => real.close());

function setup(
  opts: Partial<{
    maxBatchSize: number;
    maxQueueDelayMs: number;
    maxQueueSize: number;
    maxQueuePerCaller: number;
    buildBatch: (s: Stay[]) => ReturnType<typeof buildBatch>;
  }> = {},
): { engine: ScriptedEngine; batcher: Batcher<Stay>; events: Required<Record<keyof BatcherObserver, unknown[][]>> } {
  const engine = new ScriptedEngine(real);
  const events: Required<Record<keyof BatcherObserver, unknown[][]>> = {
    batchRun: [],
    queueWait: [],
    depthChanged: [],
    rejected: [],
  };
  const observer: BatcherObserver = {
    batchRun: (...args) => events.batchRun.push(args),
    queueWait: (...args) => events.queueWait.push(args),
    depthChanged: (...args) => events.depthChanged.push(args),
    rejected: (...args) => events.rejected.push(args),
  };
  const batcher = new Batcher<Stay>({
    engine,
    buildBatch: opts.buildBatch ?? ((stays) => buildBatch(stays)),
    // A delay this long never expires in a test: batches form only when the engine is idle or a batch is full.
    maxQueueDelayMs: opts.maxQueueDelayMs ?? HOUR_MS,
    maxBatchSize: opts.maxBatchSize ?? 64,
    maxQueueSize: opts.maxQueueSize ?? 1000,
    ...(opts.maxQueuePerCaller === undefined ? {} : { maxQueuePerCaller: opts.maxQueuePerCaller }),
    lengthOf: (s) => s.length,
    observer,
  });
  return { engine, batcher, events };
}

const expected = (stays: Stay[]): number[] => stays.map((s) => reference().probability[s.ref] as number);

function staysOfLength(length: number): Stay {
  const stay = reference().stays.find((s) => s.length === length);
  if (stay === undefined) throw new Error(`the fixture has no stay of ${length} hours`);
  return stay;
}

describe('batcher coalescing', () => {
  test('coalesces submits made in the same turn into one engine run and returns each request its own results', async () => {
    const { engine, batcher, events } = setup();
    const { stays } = reference();
    const requests = Array.from({ length: 10 }, (_, k) => stays.slice(k * 3, k * 3 + 1 + (k % 3)));
    const results = await Promise.all(requests.map((r) => batcher.submit(r)));
    assert.equal(engine.runs, 1, 'ten submits, one engine run');
    assert.equal(events.batchRun.length, 1);
    results.forEach((out, k) => assert.ok(maxAbsDiff(out, expected(requests[k] as Stay[])) <= 1e-6, `request ${k}`));
    assert.equal(events.queueWait.length, 10, 'one queue-wait observation per request');
  });

  test('queues submits while the engine is busy and runs them together when it frees', async () => {
    const { engine, batcher } = setup();
    const { stays } = reference();
    const release = engine.hold(1);
    const first = batcher.submit(stays.slice(0, 1));
    await engine.started(1);
    const later = [stays.slice(1, 3), stays.slice(3, 4), stays.slice(4, 9)];
    const pending = later.map((r) => batcher.submit(r));
    assert.equal(batcher.depth, 8);
    release();
    const outs = await Promise.all([first, ...pending]);
    assert.equal(engine.runs, 2, 'four submits, two engine runs');
    assert.deepEqual(engine.batches[1]?.lengths.length, 8);
    [stays.slice(0, 1), ...later].forEach((r, k) =>
      assert.ok(maxAbsDiff(outs[k] as Float32Array, expected(r)) <= 1e-6),
    );
  });

  test('forms a batch after maxQueueDelayMs while the engine is busy, without waiting for it to fill', async () => {
    const { engine, batcher } = setup({ maxQueueDelayMs: 0 });
    const { stays } = reference();
    const release = engine.hold(1);
    const first = batcher.submit(stays.slice(0, 1));
    await engine.started(1);
    const second = batcher.submit(stays.slice(1, 3));
    // The delay has expired: the batch is prepared (handed to the engine) while run 1 is still held.
    await engine.started(2);
    assert.equal(batcher.depth, 0);
    release();
    assert.ok(maxAbsDiff(await second, expected(stays.slice(1, 3))) <= 1e-6);
    await first;
  });
});

describe('batcher length grouping', () => {
  test('cuts queued stays into batches of like length and reassembles a split request in input order', async () => {
    const { engine, batcher, events } = setup({ maxBatchSize: 32 });
    const long = staysOfLength(48);
    const short = staysOfLength(2);
    const release = engine.hold(1);
    const first = batcher.submit([staysOfLength(1)]);
    await engine.started(1);
    // One request of 64 stays, long and short interleaved.
    const mixed = Array.from({ length: 64 }, (_, i) => (i % 2 === 0 ? long : short));
    const pending = batcher.submit(mixed);
    release();
    const out = await pending;
    await first;
    assert.equal(engine.runs, 3);
    const [, a, b] = engine.batches;
    assert.deepEqual(new Set(a?.lengths), new Set([48]));
    assert.equal(a?.time, 48);
    assert.deepEqual(new Set(b?.lengths), new Set([2]));
    assert.equal(b?.time, 2, 'the short batch is padded only to its own longest stay');
    assert.deepEqual(
      events.batchRun.slice(1).map((e) => [e[0], e[2]]),
      [
        [32, 0],
        [32, 0],
      ],
      'no padding in either batch',
    );
    assert.ok(maxAbsDiff(out, expected(mixed)) <= 1e-6);
  });

  test('never puts more than maxBatchSize stays in one engine run', async () => {
    const { engine, batcher } = setup({ maxBatchSize: 7 });
    const { stays } = reference();
    const out = await batcher.submit(stays);
    assert.ok(engine.batches.every((b) => b.lengths.length <= 7));
    assert.equal(
      engine.batches.reduce((n, b) => n + b.lengths.length, 0),
      stays.length,
    );
    assert.ok(maxAbsDiff(out, expected(stays)) <= 1e-6);
  });
});

describe('batcher back-pressure', () => {
  test('rejects a submit that would overflow the queue with QueueFullError and a Retry-After hint', async () => {
    const { batcher, events } = setup({ maxQueueSize: 5 });
    const { stays } = reference();
    const accepted = batcher.submit(stays.slice(0, 5));
    await assert.rejects(
      batcher.submit(stays.slice(5, 6)),
      (e: unknown) => e instanceof QueueFullError && Number.isInteger(e.retryAfterSeconds) && e.retryAfterSeconds >= 1,
    );
    assert.deepEqual(events.rejected, [['queue_full']]);
    assert.equal(batcher.depth, 5, 'the rejected stay was not queued');
    assert.ok(maxAbsDiff(await accepted, expected(stays.slice(0, 5))) <= 1e-6);
  });

  test('rejects a request larger than the whole queue for good', async () => {
    const { batcher } = setup({ maxQueueSize: 3 });
    await assert.rejects(batcher.submit(reference().stays.slice(0, 4)), RequestExceedsQueueError);
  });

  test('refuses a stay with no hours without queueing anything', async () => {
    const { batcher } = setup();
    await assert.rejects(batcher.submit([{ ...staysOfLength(2), length: 0 }]), RangeError);
    assert.equal(batcher.depth, 0);
  });

  test('reports the queue depth after each change', async () => {
    const { batcher, events } = setup();
    await batcher.submit(reference().stays.slice(0, 3));
    assert.deepEqual(events.depthChanged, [[3], [0]]);
  });
});

describe('batcher fair sharing between callers', () => {
  test("one caller's long queue does not hold back another caller's stay: it goes into the next batch", async () => {
    const { engine, batcher } = setup({ maxBatchSize: 4 });
    const long = staysOfLength(48);
    const short = staysOfLength(2);
    const release = engine.hold(1);
    const first = batcher.submit([long], undefined, 'a');
    await engine.started(1);
    // Caller a queues ten batches' worth, then caller b one stay (told apart by length).
    const flood = batcher.submit(
      Array.from({ length: 40 }, () => long),
      undefined,
      'a',
    );
    const single = batcher.submit([short], undefined, 'b');
    release();
    const out = await single;
    assert.ok(maxAbsDiff(out, expected([short])) <= 1e-6);
    const served = engine.batches.findIndex((b) => b.lengths.includes(2)) + 1;
    assert.equal(served, 2, `b's stay ran in engine run ${served}, not the one after a's running batch`);
    assert.deepEqual(
      engine.batches[1]?.lengths.filter((len) => len === 48).length,
      3,
      'a keeps the rest of that batch',
    );
    assert.ok(maxAbsDiff(await flood, expected(Array.from({ length: 40 }, () => long))) <= 1e-6);
    await first;
  });

  test('shares each batch equally between callers with work queued, in rotation', async () => {
    const { engine, batcher } = setup({ maxBatchSize: 4 });
    const release = engine.hold(1);
    const first = batcher.submit([staysOfLength(1)], undefined, 'x');
    await engine.started(1);
    const lengths = { a: 48, b: 2, c: 3 } as const;
    const pending = (['a', 'b', 'c'] as const).map((caller) =>
      batcher.submit(
        Array.from({ length: 6 }, () => staysOfLength(lengths[caller])),
        undefined,
        caller,
      ),
    );
    release();
    await Promise.all([first, ...pending]);
    // 18 stays of three callers in batches of 4: never more than 2 of one caller while all three wait.
    const perBatch = engine.batches
      .slice(1)
      .map((b) => [48, 2, 3].map((len) => b.lengths.filter((l) => l === len).length));
    assert.deepEqual(perBatch.slice(0, 3), [
      [2, 1, 1],
      [1, 2, 1],
      [1, 1, 2],
    ]);
    assert.equal(
      perBatch.flat().reduce((n, k) => n + k, 0),
      18,
    );
  });

  test("refuses a caller beyond its share of the queue while another caller's stays are still taken", async (t) => {
    const { engine, batcher, events } = setup({ maxQueueSize: 10, maxQueuePerCaller: 4 });
    const { stays } = reference();
    const release = engine.hold(1);
    // Released even when an assertion fails, so that closing the engine does not wait on it.
    t.after(release);
    const first = batcher.submit(stays.slice(0, 1), undefined, 'a');
    await engine.started(1);
    const held = batcher.submit(stays.slice(1, 5), undefined, 'a');
    // Refused at once (settled before the next turn), not queued behind the held engine.
    const over = batcher.submit(stays.slice(5, 6), undefined, 'a');
    const nextTurn = new Promise<string>((resolve) => setImmediate(() => resolve('still queued')));
    const refusal = await Promise.race([
      over.then(
        () => 'scored',
        (e: unknown) => e,
      ),
      nextTurn,
    ]);
    assert.ok(refusal instanceof QueueFullError, String(refusal));
    assert.match(refusal.message, /4 engine rows waiting, of 4 allowed per caller/);
    assert.throws(() => batcher.admit(1, 'a'), QueueFullError);
    batcher.admit(4, 'b');
    const other = batcher.submit(stays.slice(5, 9), undefined, 'b');
    assert.equal(batcher.depth, 8);
    assert.deepEqual(events.rejected, [['queue_full'], ['queue_full']]);
    release();
    await Promise.all([first, held, other]);
  });

  test('admit refuses rows beyond the free queue without queueing anything', async () => {
    const { batcher } = setup({ maxQueueSize: 5 });
    const { stays } = reference();
    assert.throws(() => batcher.admit(6, 'a'), /one caller may queue at most 5/);
    batcher.admit(5, 'a');
    assert.equal(batcher.depth, 0);
    await batcher.submit(stays.slice(0, 2), undefined, 'a');
  });

  test('a request larger than one caller may ever queue is refused for good, not as a full queue', async () => {
    const { batcher } = setup({ maxQueueSize: 8, maxQueuePerCaller: 4 });
    const { stays } = reference();
    const refusal = await batcher.submit(stays.slice(0, 5), undefined, 'a').then(
      () => 'scored',
      (e: unknown) => e,
    );
    assert.ok(refusal instanceof RequestExceedsQueueError, String(refusal));
    assert.ok(!(refusal instanceof QueueFullError), 'no 503 + Retry-After: retrying cannot help');
    assert.match(refusal.message, /needs 5 engine rows; one caller may queue at most 4 .*CALLER_QUEUE_SHARE/);
    assert.equal(batcher.depth, 0);
  });
});

describe('batcher abort', () => {
  test('removes an aborted request from the queue: it rejects with AbortError and the engine never sees it', async () => {
    const { engine, batcher } = setup();
    const { stays } = reference();
    const release = engine.hold(1);
    const first = batcher.submit(stays.slice(0, 1));
    await engine.started(1);
    const controller = new AbortController();
    const aborted = batcher.submit(stays.slice(1, 4), controller.signal);
    assert.equal(batcher.depth, 3);
    controller.abort();
    await assert.rejects(aborted, (e: unknown) => e instanceof DOMException && e.name === 'AbortError');
    assert.equal(batcher.depth, 0);
    release();
    await first;
    await batcher.drain();
    assert.equal(engine.runs, 1);
    assert.deepEqual(
      engine.batches.flatMap((b) => b.lengths),
      [stays[0]?.length],
    );
  });

  test('rejects at once, queueing nothing, when the signal has already fired', async () => {
    const { engine, batcher } = setup();
    await assert.rejects(batcher.submit(reference().stays.slice(0, 2), AbortSignal.abort()), { name: 'AbortError' });
    assert.equal(batcher.depth, 0);
    await batcher.drain();
    assert.equal(engine.runs, 0);
  });

  test('an abort after dispatch rejects that request and leaves the rest of its batch intact', async () => {
    const { engine, batcher } = setup();
    const { stays } = reference();
    const release = engine.hold(1);
    const controller = new AbortController();
    const a = batcher.submit(stays.slice(0, 2), controller.signal);
    const b = batcher.submit(stays.slice(2, 4));
    await engine.started(1);
    controller.abort();
    await assert.rejects(a, { name: 'AbortError' });
    release();
    assert.ok(maxAbsDiff(await b, expected(stays.slice(2, 4))) <= 1e-6);
  });
});

describe('batcher drain', () => {
  test('finishes queued work, refuses new submits, and resolves when everything is done', async () => {
    const { engine, batcher, events } = setup();
    const { stays } = reference();
    const release = engine.hold(1);
    const first = batcher.submit(stays.slice(0, 1));
    await engine.started(1);
    const queued = [batcher.submit(stays.slice(1, 4)), batcher.submit(stays.slice(4, 6))];
    const drained = batcher.drain();
    await assert.rejects(
      batcher.submit(stays.slice(6, 7)),
      (e: unknown) => e instanceof BatcherDrainingError && e instanceof QueueFullError,
    );
    assert.deepEqual(events.rejected, [['draining']]);
    release();
    await drained;
    assert.equal(batcher.depth, 0);
    const outs = await Promise.all([first, ...queued]);
    assert.ok(maxAbsDiff(outs[0] as Float32Array, expected(stays.slice(0, 1))) <= 1e-6);
    assert.ok(maxAbsDiff(outs[1] as Float32Array, expected(stays.slice(1, 4))) <= 1e-6);
    assert.ok(maxAbsDiff(outs[2] as Float32Array, expected(stays.slice(4, 6))) <= 1e-6);
  });

  test('resolves at once when nothing is queued: before the next turn of the event loop, with no engine run', async () => {
    const { engine, batcher } = setup();
    const nextTurn = new Promise<string>((resolve) => setImmediate(() => resolve('next turn')));
    assert.equal(await Promise.race([batcher.drain().then(() => 'drained'), nextTurn]), 'drained');
    assert.equal(engine.runs, 0);
    await assert.rejects(batcher.submit(reference().stays.slice(0, 1)), BatcherDrainingError);
  });
});

describe('batcher error isolation', () => {
  test('an engine failure fails only that batch; the next batch succeeds', async () => {
    const { engine, batcher } = setup();
    const { stays } = reference();
    engine.failOnce(1);
    const release = engine.hold(1);
    const doomed = batcher.submit(stays.slice(0, 2));
    await engine.started(1);
    const survivor = batcher.submit(stays.slice(2, 5));
    release();
    await assert.rejects(doomed, EngineRunError);
    assert.ok(maxAbsDiff(await survivor, expected(stays.slice(2, 5))) <= 1e-6);
  });

  test('a request split over batches fails as a whole when one of its batches fails, and its queued stays are dropped', async () => {
    const { engine, batcher } = setup({ maxBatchSize: 2 });
    const { stays } = reference();
    engine.failOnce(1);
    const split = batcher.submit(stays.slice(0, 6));
    await assert.rejects(split, EngineRunError);
    const other = await batcher.submit(stays.slice(6, 8));
    assert.ok(maxAbsDiff(other, expected(stays.slice(6, 8))) <= 1e-6);
    const seen = engine.batches.reduce((n, b) => n + b.lengths.length, 0);
    assert.ok(seen < 8, `the failed request's remaining stays were not all run (${seen} stays reached the engine)`);
  });

  test('a malformed batch from the real engine fails only its own requests', async () => {
    // A buildBatch that produces a zero length for stays of 1 hour, as a preprocessing bug would.
    const { batcher } = setup({
      maxQueueDelayMs: HOUR_MS,
      buildBatch: (s) => {
        const batch = buildBatch(s);
        batch.lengths.forEach((len, i) => {
          if (len === 1) batch.lengths[i] = 0;
        });
        return batch;
      },
    });
    const bad = batcher.submit([staysOfLength(1)]);
    await assert.rejects(bad, EngineRunError);
    const good = await batcher.submit([staysOfLength(2)]);
    assert.ok(maxAbsDiff(good, expected([staysOfLength(2)])) <= 1e-6);
  });

  test('a buildBatch that throws fails only that batch with EngineRunError', async () => {
    let calls = 0;
    const { batcher } = setup({
      buildBatch: (s) => {
        calls++;
        if (calls === 1) throw new Error('preprocessing bug');
        return buildBatch(s);
      },
    });
    await assert.rejects(batcher.submit(reference().stays.slice(0, 2)), EngineRunError);
    const out = await batcher.submit(reference().stays.slice(2, 3));
    assert.ok(maxAbsDiff(out, expected(reference().stays.slice(2, 3))) <= 1e-6);
  });
});
