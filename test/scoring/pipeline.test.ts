import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import type { ValidPatient } from '../../src/clinical/types.js';
import { createPatientValidator } from '../../src/clinical/validate.js';
import { manifestSchema } from '../../src/model/manifest.js';
import { batches, scoreInOrder, type ScoreInput } from '../../src/scoring/pipeline.js';

const manifest = manifestSchema.parse(
  JSON.parse(await readFile(new URL('../fixtures/tiny-model/manifest.json', import.meta.url), 'utf8')),
);
const validator = createPatientValidator(manifest);
const model = { name: 'm', version: '1' };

function patient(i: number): ScoreInput<number> {
  return { where: i, id: `p${i}`, input: { id: `p${i}`, hours: [{ HR: 60 + (i % 100) }] } };
}

/** A fake engine answer: the HR of each stay / 1000, so every probability names its stay. */
function probabilitiesOf(patients: ValidPatient[]): Float32Array {
  return Float32Array.from(
    patients.map((p) => (p.values[manifest.variables.findIndex((v) => v.name === 'HR')] as number) / 1000),
  );
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('outcomes come in input order even when later batches finish first', async () => {
  const pending: Array<() => void> = [];
  async function* items() {
    for (let i = 0; i < 10; i++) yield patient(i);
    yield { where: 10, id: 'bad', input: { hours: [] } };
  }
  const run = scoreInOrder(items(), {
    validator,
    model,
    batchSize: 3,
    window: 4,
    scoreBatch: (patients) =>
      new Promise((resolve) => {
        pending.push(() => resolve(probabilitiesOf(patients)));
        // Finish batches in reverse order of submission once four are waiting.
        if (pending.length === 4) for (const finish of pending.splice(0).reverse()) finish();
        else if (patients.length < 3) for (const finish of pending.splice(0).reverse()) finish();
      }),
  });
  const seen: Array<[number, boolean]> = [];
  for await (const batch of run) for (const o of batch) seen.push([o.where, o.ok]);
  assert.deepEqual(
    seen.map(([w]) => w),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
  );
  assert.deepEqual(seen.at(-1), [10, false]);
});

test('a slow consumer holds the reader back: never more than window + 1 batches read ahead', async () => {
  const batchSize = 8;
  const window = 3;
  let pulled = 0;
  let consumed = 0;
  let worstLead = 0;
  async function* items() {
    for (let i = 0; i < 400; i++) {
      pulled++;
      worstLead = Math.max(worstLead, pulled - consumed);
      yield patient(i);
    }
  }
  const run = scoreInOrder(items(), {
    validator,
    model,
    batchSize,
    window,
    scoreBatch: async (p) => probabilitiesOf(p),
  });
  for await (const batch of run) {
    // A slow client: give the producer every chance to run ahead before taking more.
    for (let k = 0; k < 20; k++) await turn();
    consumed += batch.length;
  }
  assert.equal(consumed, 400);
  assert.ok(worstLead <= (window + 1) * batchSize, `read ${worstLead} records ahead of the consumer`);
});

test('a batch that fails in the engine fails its own records only', async () => {
  async function* items() {
    for (let i = 0; i < 6; i++) yield patient(i);
  }
  let calls = 0;
  const run = scoreInOrder(items(), {
    validator,
    model,
    batchSize: 2,
    window: 2,
    scoreBatch: async (p) => {
      if (++calls === 2) throw new Error('boom');
      return probabilitiesOf(p);
    },
    failureOf: () => ({ error: 'internal_error', message: 'failed', details: [] }),
  });
  const ok: boolean[] = [];
  for await (const batch of run) for (const o of batch) ok.push(o.ok);
  assert.deepEqual(ok, [true, true, false, false, true, true]);
});

test('stopping the consumer early closes the source', async () => {
  let closed!: () => void;
  const sourceClosed = new Promise<void>((resolve) => {
    closed = resolve;
  });
  async function* items() {
    try {
      for (let i = 0; ; i++) yield patient(i);
    } finally {
      closed();
    }
  }
  const run = scoreInOrder(items(), {
    validator,
    model,
    batchSize: 4,
    window: 2,
    scoreBatch: async (p) => probabilitiesOf(p),
  });
  for await (const batch of run) {
    assert.equal(batch.length, 4);
    break;
  }
  await sourceClosed;
});

test('results carry the model identity and what the stay used', async () => {
  async function* items() {
    yield { where: 1, id: 'x', input: { id: 'x', hours: Array.from({ length: 50 }, () => ({ HR: 70 })) } };
  }
  const run = scoreInOrder(items(), {
    validator,
    model,
    batchSize: 4,
    window: 2,
    scoreBatch: async (p) => probabilitiesOf(p),
  });
  const outcomes = [];
  for await (const batch of run) outcomes.push(...batch);
  const o = outcomes[0]!;
  assert.ok(o.ok);
  assert.deepEqual(o.result.model, model);
  assert.equal(o.result.hoursUsed, 48);
  assert.equal(o.result.truncated, true);
  assert.equal(o.result.probability, Math.fround(0.07));
});

/** A source that yields what it is given and then waits, as a client typing lines would. */
function gatedSource(): { source: AsyncIterable<number>; give(...items: number[]): void; end(): void } {
  const queue: number[] = [];
  let ended = false;
  let wake: (() => void) | undefined;
  const source = (async function* () {
    for (;;) {
      while (queue.length > 0) yield queue.shift() as number;
      if (ended) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  })();
  const poke = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  return {
    source,
    give: (...items) => {
      queue.push(...items);
      poke();
    },
    end: () => {
      ended = true;
      poke();
    },
  };
}

test('batches: a partial batch goes out once the source has been idle, and items that come together stay together', async () => {
  const gate = gatedSource();
  const out = batches(gate.source, 10, 5);
  gate.give(1, 2, 3);
  // The source now waits: after 5 ms of quiet the three items must come out as one batch.
  assert.deepEqual((await out.next()).value, [1, 2, 3]);
  gate.give(4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  assert.deepEqual((await out.next()).value, [4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
  assert.deepEqual((await out.next()).value, [14, 15]);
  gate.give(16);
  gate.end();
  assert.deepEqual((await out.next()).value, [16]);
  assert.equal((await out.next()).done, true);
});

test('batches: without an idle flush, a waiting source holds its partial batch back until the end', async () => {
  const gate = gatedSource();
  const out = batches(gate.source, 4);
  gate.give(1, 2);
  const next = out.next();
  const winner = await Promise.race([next, new Promise((resolve) => setTimeout(() => resolve('waiting'), 20))]);
  assert.equal(winner, 'waiting');
  gate.give(3);
  gate.end();
  assert.deepEqual((await next).value, [1, 2, 3]);
  assert.equal((await out.next()).done, true);
});

test('a flood of invalid records gives the event loop a turn per batch, as scored batches do', async () => {
  async function* invalid() {
    for (let i = 0; i < 6400; i++) yield { where: i, input: {} };
  }
  let turns = 0;
  let ticking = true;
  const tick = (): void => {
    turns++;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  let outcomes = 0;
  for await (const batch of scoreInOrder(invalid(), {
    validator,
    model,
    batchSize: 64,
    window: 4,
    scoreBatch: async () => new Float32Array(0),
  }))
    outcomes += batch.length;
  ticking = false;
  assert.equal(outcomes, 6400);
  // 100 batches, up to 4 waiting on the same turn: at least 25 turns. Without the yield they all
  // run in microtasks and no macrotask runs until the end.
  assert.ok(turns >= 20, `only ${turns} event-loop turns during 100 invalid batches`);
});

test('a row whose output is not a probability fails alone as inference_failed; its batch neighbours are scored', async () => {
  async function* items() {
    for (let i = 0; i < 6; i++) yield patient(i);
  }
  // One batch of six: NaN, +Infinity, -Infinity and 1.5 are not probabilities; 0 and 1 are.
  const answers = [0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1.5, 1];
  const run = scoreInOrder(items(), {
    validator,
    model,
    batchSize: 6,
    window: 2,
    scoreBatch: async (patients) => Float64Array.from(answers.slice(0, patients.length)),
  });
  const seen: Array<[string | undefined, string]> = [];
  for await (const batch of run)
    for (const o of batch) seen.push([o.id, o.ok ? String(o.result.probability) : o.failure.error]);
  assert.deepEqual(seen, [
    ['p0', '0'],
    ['p1', 'inference_failed'],
    ['p2', 'inference_failed'],
    ['p3', 'inference_failed'],
    ['p4', 'inference_failed'],
    ['p5', '1'],
  ]);
});
