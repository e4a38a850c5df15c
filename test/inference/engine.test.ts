import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Engine, EngineRunError } from '../../src/inference/engine.js';
import { CRASH_MARKER } from './fixtures/crashing-worker.js';
import {
  PARITY_TOLERANCE,
  TEST_PROVIDERS,
  TINY_GRU_MODEL_DIR,
  buildBatch,
  maxAbsDiff,
  reference,
  tinyEngine,
} from './helpers.js';

describe('engine on the tiny model', () => {
  let engine: Engine;
  before(async () => {
    engine = await tinyEngine({ workers: 1, intraOpThreads: 1 });
  });
  after(() => engine.close());

  test('matches PyTorch pack_padded_sequence outputs to 1e-6 with every stay padded to 48 hours', async () => {
    assert.equal(engine.provider, TEST_PROVIDERS[0], 'the provider under test is the one in use');
    const { stays, probability, maxHours } = reference();
    const out = await engine.run(buildBatch(stays, maxHours));
    assert.equal(out.length, stays.length);
    assert.ok(maxAbsDiff(out, probability) <= PARITY_TOLERANCE, `max |diff| ${maxAbsDiff(out, probability)}`);
  });

  test('scores each stay of a mixed-length batch as it scores that stay alone, unpadded', async () => {
    const { stays } = reference();
    const lengths = new Set(stays.map((s) => s.length));
    for (let h = 1; h <= 48; h++) assert.ok(lengths.has(h), `the fixture has a stay of ${h} hours`);
    const mixed = await engine.run(buildBatch(stays));
    for (const [i, stay] of stays.entries()) {
      const alone = await engine.run(buildBatch([stay]));
      assert.equal(alone.length, 1);
      assert.ok(
        Math.abs((alone[0] as number) - (mixed[i] as number)) <= PARITY_TOLERANCE,
        `stay ${i} (length ${stay.length})`,
      );
    }
  });

  test('rejects a batch with a zero length with EngineRunError and runs the next batch', async () => {
    const { stays, probability } = reference();
    const bad = buildBatch(stays.slice(0, 3));
    bad.lengths[1] = 0;
    await assert.rejects(
      engine.run(bad),
      (e: unknown) => e instanceof EngineRunError && /lengths\[1\] = 0/.test(e.message),
    );
    const good = await engine.run(buildBatch(stays.slice(0, 3)));
    assert.ok(maxAbsDiff(good, probability.slice(0, 3)) <= 1e-6);
  });

  test('rejects a length beyond the batch time and a tensor of the wrong size', async () => {
    const { stays } = reference();
    const long = buildBatch(stays.slice(0, 2));
    long.lengths[0] = long.time + 1;
    await assert.rejects(engine.run(long), EngineRunError);
    const short = buildBatch(stays.slice(0, 2));
    await assert.rejects(engine.run({ ...short, values: short.values.subarray(1) }), EngineRunError);
  });

  test('rejects a batch the model itself refuses (wrong input width) with EngineRunError, then recovers', async () => {
    const { stays, probability } = reference();
    const batch = buildBatch(stays.slice(0, 2));
    const nVariables = batch.nVariables - 1;
    const narrow = { ...batch, nVariables, values: new Float64Array(2 * batch.time * nVariables) };
    await assert.rejects(
      engine.run(narrow),
      (e: unknown) => e instanceof EngineRunError && /inference failed/.test(e.message),
    );
    const good = await engine.run(buildBatch(stays.slice(0, 2)));
    assert.ok(maxAbsDiff(good, probability.slice(0, 2)) <= 1e-6);
  });

  test('takes ownership of the input buffers by transfer, not copy', async () => {
    const { stays } = reference();
    const batch = buildBatch(stays.slice(0, 4));
    const running = engine.run(batch);
    assert.equal(batch.values.byteLength, 0, 'values was detached: its buffer moved to the worker');
    assert.equal(batch.lengths.byteLength, 0);
    assert.equal((await running).length, 4);
  });

  test('accepts views into a larger buffer by copying them', async () => {
    const { stays, probability } = reference();
    const batch = buildBatch(stays.slice(0, 2));
    const backing = new Float64Array(batch.values.length + 8);
    backing.set(batch.values, 8);
    const out = await engine.run({ ...batch, values: backing.subarray(8) });
    assert.ok(maxAbsDiff(out, probability.slice(0, 2)) <= 1e-6);
    assert.equal(backing.byteLength, (batch.values.length + 8) * 8, 'the caller keeps its larger buffer');
  });

  test('keeps the event loop turning while a large batch runs', async () => {
    const { stays, maxHours } = reference();
    const many = Array.from({ length: 2048 }, (_, i) => stays[i % stays.length] as (typeof stays)[number]);
    let turns = 0;
    let done = false;
    const spin = (): void => {
      turns++;
      if (!done) setImmediate(spin);
    };
    setImmediate(spin);
    await engine.run(buildBatch(many, maxHours));
    done = true;
    assert.ok(turns > 1, `the event loop turned ${turns} times during the run`);
  });

  test('close finishes the runs already accepted before stopping the workers', async () => {
    const other = await tinyEngine();
    const { stays, probability } = reference();
    const accepted = [other.run(buildBatch(stays.slice(0, 3))), other.run(buildBatch(stays.slice(3, 5)))];
    await other.close();
    const [a, b] = await Promise.all(accepted);
    assert.ok(maxAbsDiff(a as Float32Array, probability.slice(0, 3)) <= PARITY_TOLERANCE);
    assert.ok(maxAbsDiff(b as Float32Array, probability.slice(3, 5)) <= PARITY_TOLERANCE);
  });

  test('rejects runs after close', async () => {
    const other = await tinyEngine();
    await other.close();
    await assert.rejects(other.run(buildBatch(reference().stays.slice(0, 1))), EngineRunError);
  });
});

describe('engine with several workers', () => {
  test('spreads concurrent batches over the workers and returns each its own results', async () => {
    const engine = await tinyEngine({ workers: 2, intraOpThreads: 1 });
    try {
      assert.equal(engine.concurrency, 2);
      const { stays, probability } = reference();
      const chunks = [stays.slice(0, 20), stays.slice(20, 40), stays.slice(40, 60), stays.slice(5, 9)];
      const outs = await Promise.all(chunks.map((c) => engine.run(buildBatch(c))));
      outs.forEach((out, k) => {
        const expected = (chunks[k] as typeof stays).map((s) => probability[s.ref] as number);
        assert.ok(maxAbsDiff(out, expected) <= 1e-6, `chunk ${k}`);
      });
    } finally {
      await engine.close();
    }
  });
});

describe('engine worker crash', () => {
  test('fails only the running batch with EngineRunError, restarts the worker and runs the next batch', async () => {
    const errors: Array<{ obj: object; msg: string }> = [];
    const logger = {
      info: () => {},
      warn: () => {},
      error: (obj: object, msg: string) => errors.push({ obj, msg }),
    };
    const engine = await tinyEngine({ workerUrl: new URL('./fixtures/crashing-worker.ts', import.meta.url), logger });
    try {
      const { stays, probability } = reference();
      const poison = buildBatch(stays.slice(0, 2));
      poison.values[0] = CRASH_MARKER;
      const crashed = engine.run(poison);
      const queued = engine.run(buildBatch(stays.slice(2, 5)));
      await assert.rejects(crashed, (e: unknown) => e instanceof EngineRunError && /exit code 70/.test(e.message));
      const out = await queued;
      assert.ok(maxAbsDiff(out, probability.slice(2, 5)) <= 1e-6);
      assert.ok(
        errors.some((e) => /restarting/.test(e.msg)),
        'the crash was logged',
      );
    } finally {
      await engine.close();
    }
  });
});

describe('engine on the tiny GRU model', () => {
  let engine: Engine;
  before(async () => {
    engine = await tinyEngine({ modelPath: `${TINY_GRU_MODEL_DIR}model.onnx` });
  });
  after(() => engine.close());

  test('matches PyTorch pack_padded_sequence outputs of the GRU to 1e-6 with every stay padded to 48 hours', async () => {
    const { stays, probability, maxHours } = reference(TINY_GRU_MODEL_DIR);
    const out = await engine.run(buildBatch(stays, maxHours));
    assert.ok(maxAbsDiff(out, probability) <= PARITY_TOLERANCE, `max |diff| ${maxAbsDiff(out, probability)}`);
  });

  test('scores each stay of a mixed-length batch as it scores that stay alone, unpadded', async () => {
    const { stays } = reference(TINY_GRU_MODEL_DIR);
    const mixed = await engine.run(buildBatch(stays));
    for (const [i, stay] of stays.entries()) {
      const alone = await engine.run(buildBatch([stay]));
      assert.ok(
        Math.abs((alone[0] as number) - (mixed[i] as number)) <= PARITY_TOLERANCE,
        `stay ${i} (length ${stay.length})`,
      );
    }
  });
});
