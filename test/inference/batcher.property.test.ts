import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Batcher } from '../../src/inference/batcher.js';
import type { Engine, EngineBatch } from '../../src/inference/engine.js';

/**
 * The batcher against an engine whose answer is written in the batch itself: each stay's
 * values carry its id at its last real hour, and the engine returns, for each row, the
 * value at hour lengths[b]-1. So a result can only be right if the batcher built, split,
 * ordered and reassembled the batches correctly, whatever the arrival pattern, batch size,
 * number of workers, order of completion, aborts or callers sharing the engine.
 */

interface FakeStay {
  id: number;
  length: number;
}

const N_VARIABLES = 2;

function buildBatch(stays: FakeStay[]): EngineBatch {
  const time = Math.max(...stays.map((s) => s.length));
  const values = new Float64Array(stays.length * time * N_VARIABLES).fill(NaN);
  stays.forEach((s, b) => {
    values[(b * time + s.length - 1) * N_VARIABLES] = s.id;
  });
  const statics = new Float64Array(0);
  const lengths = Int32Array.from(stays.map((s) => s.length));
  return { values, statics, lengths, batch: stays.length, time, nVariables: N_VARIABLES, nStatics: 0 };
}

/** Completes runs out of order: run k finishes after hops[k] turns of the event loop. */
class ShuffledEngine implements Engine {
  readonly provider = 'fake';
  readonly seen = new Set<number>();
  readonly sizes: number[] = [];
  running = 0;
  maxRunning = 0;

  constructor(
    readonly concurrency: number,
    private readonly hops: number[],
  ) {}

  async run(batch: EngineBatch): Promise<Float32Array> {
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    this.sizes.push(batch.batch);
    const out = new Float32Array(batch.batch);
    for (let b = 0; b < batch.batch; b++) {
      const len = batch.lengths[b] as number;
      // Padding past a stay's length must be empty (NaN): a value there would be a leak.
      const { values, time, nVariables } = batch;
      for (let t = len; t < time; t++) {
        for (let k = 0; k < nVariables; k++) assert.ok(Number.isNaN(values[(b * time + t) * nVariables + k]));
      }
      out[b] = values[(b * time + len - 1) * nVariables] as number;
      this.seen.add(out[b] as number);
    }
    const hops = this.hops[this.sizes.length % this.hops.length] ?? 0;
    for (let i = 0; i < hops; i++) await new Promise<void>((r) => setImmediate(r));
    this.running--;
    return out;
  }

  async close(): Promise<void> {}
}

test('every request gets its own stays scored in order, aborted ones never reach the engine', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        maxBatchSize: fc.integer({ min: 1, max: 9 }),
        concurrency: fc.integer({ min: 1, max: 3 }),
        hops: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 6 }),
        waves: fc.array(
          fc.array(
            fc.record({
              lengths: fc.array(fc.integer({ min: 1, max: 48 }), { minLength: 1, maxLength: 12 }),
              abort: fc.boolean(),
              caller: fc.constantFrom('a', 'b', 'c'),
            }),
            { minLength: 1, maxLength: 6 },
          ),
          { minLength: 1, maxLength: 4 },
        ),
      }),
      async ({ maxBatchSize, concurrency, hops, waves }) => {
        const engine = new ShuffledEngine(concurrency, hops);
        const batcher = new Batcher<FakeStay>({
          engine,
          buildBatch,
          maxBatchSize,
          maxQueueDelayMs: 0,
          maxQueueSize: 10_000,
          lengthOf: (s) => s.length,
        });
        let nextId = 1;
        const outcomes: Array<{ ids: number[]; aborted: boolean; result: Promise<Float32Array> }> = [];
        for (const wave of waves) {
          for (const request of wave) {
            const stays = request.lengths.map((length) => ({ id: nextId++, length }));
            const controller = new AbortController();
            const result = batcher.submit(stays, controller.signal, request.caller);
            // Settled results are inspected after all waves; mark the rejection handled now.
            result.catch(() => {});
            // Aborted in the same turn, so before any of its stays can have been dispatched.
            if (request.abort) controller.abort();
            outcomes.push({ ids: stays.map((s) => s.id), aborted: request.abort, result });
          }
          // Let the next wave arrive while earlier batches are in flight.
          await new Promise<void>((r) => setImmediate(r));
        }
        const settled = await Promise.allSettled(outcomes.map((o) => o.result));
        await batcher.drain();
        settled.forEach((s, i) => {
          const o = outcomes[i] as (typeof outcomes)[number];
          if (o.aborted) {
            assert.equal(s.status, 'rejected');
            assert.equal((s as PromiseRejectedResult).reason.name, 'AbortError');
            for (const id of o.ids) assert.ok(!engine.seen.has(id), `aborted stay ${id} reached the engine`);
          } else {
            assert.equal(s.status, 'fulfilled');
            assert.deepEqual([...(s as PromiseFulfilledResult<Float32Array>).value], o.ids);
          }
        });
        assert.ok(engine.sizes.every((n) => n <= maxBatchSize));
        assert.ok(engine.maxRunning <= concurrency + 1, 'at most one batch per worker plus one prepared ahead');
        assert.equal(batcher.depth, 0);
      },
    ),
    { numRuns: 150, seed: 20261125 },
  );
});
