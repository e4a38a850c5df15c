import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { ScoredEvent } from '../../src/scoring/observer.js';
import { addVersion, buildTestApp, makeModelRoot, oneWorkerEngine, ROOT, samplePatient } from '../helper.js';
import { BACKENDS, storeConfig } from '../store/backends.js';

/**
 * POST /v1/encounters/{id}/observations against POST /v1/predict on the same hours: the answer
 * after every delivery must be the whole stay as delivered so far, scored by /v1/predict.
 */

const FIXTURES = [
  { name: 'LSTM', dir: join(ROOT, 'test', 'fixtures', 'tiny-model'), note: false },
  { name: 'GRU', dir: join(ROOT, 'test', 'fixtures', 'tiny-gru-model'), note: false },
  { name: 'hybrid', dir: join(ROOT, 'test', 'fixtures', 'tiny-hybrid-model'), note: true },
  // A version without a step graph (manifest onnx.step removed): every answer is a rescoring.
  { name: 'LSTM without a step graph', dir: join(ROOT, 'test', 'fixtures', 'tiny-model'), note: false, noStep: true },
];
const TOLERANCE = 1e-5;

type Row = Record<string, number | null>;
interface Result {
  id?: string;
  probability: number;
  hoursUsed: number;
  truncated: boolean;
  model: { name: string; version: string };
  [key: string]: unknown;
}

/** A deterministic generator (LCG, as samplePatient's). */
function random(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function embedding(seed: number): number[] {
  const rand = random(seed);
  return Array.from({ length: 768 }, () => Math.round((rand() - 0.5) * 2e4) / 1e4);
}

/** A stay with descriptors, rows (some empty), and a note embedding for the hybrid model. */
function stay(seed: number, hours: number, note: boolean): { header: Record<string, unknown>; rows: Row[] } {
  const { hours: rows, ...header } = samplePatient(hours, seed) as { hours: Row[] } & Record<string, unknown>;
  const rand = random(seed * 7 + 3);
  const withEmpty = rows.map((row) => (rand() < 0.15 ? {} : row));
  return {
    header: { ...header, weight: 70 + seed, ...(note ? { noteEmbedding: embedding(seed) } : {}) },
    rows: withEmpty,
  };
}

async function appOn(
  t: TestContext,
  dir: string,
  env: Record<string, string> = {},
  now?: () => Date,
  root?: string,
  noStep = false,
) {
  const modelRoot = root ?? (await makeModelRoot(t, { '0.0.0-tiny': { from: dir, copy: noStep } }));
  if (noStep) {
    const file = join(modelRoot, 'icu-mortality', '0.0.0-tiny', 'manifest.json');
    const manifest = JSON.parse(await readFile(file, 'utf8')) as { onnx: Record<string, unknown> };
    delete manifest.onnx.step;
    await writeFile(file, JSON.stringify(manifest));
  }
  const dataDir = env.DATA_DIR ?? (await tempDir(t));
  const { app } = await buildTestApp(t, {
    modelRoot,
    env: { DATA_DIR: dataDir, ...env },
    ...(now ? { deps: { now } } : {}),
  });
  return app;
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'icu-encounters-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function predictOne(app: FastifyInstance, patient: Record<string, unknown>): Promise<Result> {
  const res = await app.inject({ method: 'POST', url: '/v1/predict', payload: { patients: [patient] } });
  assert.equal(res.statusCode, 200, res.body);
  const { index, ...result } = (JSON.parse(res.body) as { results: Array<Result & { index: number }> }).results[0]!;
  assert.equal(index, 0);
  return result;
}

function observe(app: FastifyInstance, id: string, body: Record<string, unknown>) {
  return app.inject({ method: 'POST', url: `/v1/encounters/${encodeURIComponent(id)}/observations`, payload: body });
}

async function observeOk(app: FastifyInstance, id: string, body: Record<string, unknown>): Promise<Result> {
  const res = await observe(app, id, body);
  assert.equal(res.statusCode, 200, res.body);
  return JSON.parse(res.body) as Result;
}

/** The same result: every field equal, the probability within TOLERANCE. */
function assertSameResult(actual: Result, expected: Result, where: string): void {
  assert.ok(
    Math.abs(actual.probability - expected.probability) <= TOLERANCE,
    `${where}: ${actual.probability} vs /v1/predict ${expected.probability}`,
  );
  assert.deepEqual({ ...actual, probability: 0 }, { ...expected, probability: 0 }, where);
}

for (const fixture of FIXTURES) {
  describe(`encounters on the ${fixture.name} fixture`, () => {
    test('a stay stepped hour by hour equals /v1/predict on the same hours after every hour', async (t) => {
      const app = await appOn(t, fixture.dir, {}, undefined, undefined, fixture.noStep);
      // Past the 48-hour window for one fixture: the answer then rescores the last 48 hours.
      const hours = fixture.name === 'LSTM' ? 53 : 20;
      for (const seed of [11, 12]) {
        const { header, rows } = stay(seed, hours, fixture.note);
        const id = `enc-${fixture.name}-${seed}`;
        for (let h = 0; h < hours; h++) {
          const body = { ...(h === 0 ? header : {}), hours: [{ hour: h, ...rows[h] }] };
          const got = await observeOk(app, id, body);
          const want = await predictOne(app, { id, ...header, hours: rows.slice(0, h + 1) });
          assertSameResult(got, want, `seed ${seed} hour ${h}`);
        }
      }
    });

    test('deliveries in random order, with late values and repeats, equal /v1/predict on what has arrived', async (t) => {
      const app = await appOn(t, fixture.dir, {}, undefined, undefined, fixture.noStep);
      const { header, rows } = stay(21, 14, fixture.note);
      const rand = random(99);
      // Every measured cell, plus every hour as an empty row (so empty hours arrive too), shuffled.
      const cells: Array<{ hour: number; name?: string; value?: number }> = [];
      rows.forEach((row, hour) => {
        cells.push({ hour });
        for (const [name, value] of Object.entries(row))
          if (typeof value === 'number') cells.push({ hour, name, value });
      });
      for (let i = cells.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [cells[i], cells[j]] = [cells[j]!, cells[i]!];
      }
      const arrived: Row[] = [];
      let first = true;
      let sent = 0;
      while (sent < cells.length) {
        const batch = cells.slice(sent, sent + 1 + Math.floor(rand() * 4));
        sent += batch.length;
        // A repeated delivery now and then: the same cells again.
        const repeat = rand() < 0.3;
        for (let k = 0; k < (repeat ? 2 : 1); k++) {
          const body = {
            ...(first ? header : {}),
            hours: batch.map((c) => ({ hour: c.hour, ...(c.name ? { [c.name]: c.value } : {}) })),
          };
          first = false;
          for (const c of batch) {
            while (arrived.length <= c.hour) arrived.push({});
            if (c.name) arrived[c.hour]![c.name] = c.value!;
          }
          const got = await observeOk(app, 'shuffled', body);
          const want = await predictOne(app, { id: 'shuffled', ...header, hours: arrived });
          assertSameResult(got, want, `after ${sent} of ${cells.length} cells${k > 0 ? ', repeated' : ''}`);
        }
      }
      // Everything arrived: the whole stay.
      const whole = await predictOne(app, { id: 'shuffled', ...header, hours: rows });
      const last = await observeOk(app, 'shuffled', { hours: [] });
      assertSameResult(last, whole, 'the whole stay');
    });
  });
}

describe('encounter timing, explanation and storage', () => {
  const LSTM = FIXTURES[0]!.dir;
  const T0 = Date.parse('2026-03-01T08:00:00Z');
  const clock = (start: number) => {
    let now = start;
    return { now: () => new Date(now), set: (ms: number) => (now = ms) };
  };

  test('timed rows are binned by hour since admission, the last value of an hour kept and urine summed', async (t) => {
    const c = clock(T0 + 5 * 3_600_000);
    const app = await appOn(t, LSTM, {}, c.now);
    const at = (minutes: number) => new Date(T0 + minutes * 60_000).toISOString();
    const got = await observeOk(app, 'timed', {
      age: 60,
      admittedAt: new Date(T0).toISOString(),
      hours: [
        { at: at(70), HR: 90, Urine: 40 },
        { at: at(10), HR: 100, Urine: 30 },
        { at: at(190), MAP: 70 },
        // The same instant again (a repeat) is counted once.
        { at: at(70), Urine: 40 },
      ],
    });
    // Worked by hand: hour 0 HR 100, Urine 30; hour 1 HR 90 (70 min), Urine 40; hour 3 MAP 70 (190 min).
    const want = await predictOne(app, {
      id: 'timed',
      age: 60,
      hours: [{ HR: 100, Urine: 30 }, { HR: 90, Urine: 40 }, {}, { MAP: 70 }],
    });
    assertSameResult(got, want, 'timed rows');
    // A later value of hour 1 at an earlier minute than the kept one does not replace it; urine adds up.
    const next = await observeOk(app, 'timed', { hours: [{ at: at(65), HR: 130, Urine: 25 }] });
    const want2 = await predictOne(app, {
      id: 'timed',
      age: 60,
      hours: [{ HR: 100, Urine: 30 }, { HR: 90, Urine: 65 }, {}, { MAP: 70 }],
    });
    assertSameResult(next, want2, 'a late timed value');
  });

  test('explain gives the trajectory and contributions of /v1/predict', async (t) => {
    const app = await appOn(t, LSTM);
    const { header, rows } = stay(31, 6, false);
    await observeOk(app, 'x', { ...header, hours: rows.slice(0, 5).map((r, hour) => ({ hour, ...r })) });
    const got = await observeOk(app, 'x', { explain: true, hours: [{ hour: 5, ...rows[5] }] });
    const res = await app.inject({
      method: 'POST',
      url: '/v1/predict',
      payload: { explain: true, patients: [{ id: 'x', ...header, hours: rows }] },
    });
    const { index: _, ...want } = (JSON.parse(res.body) as { results: Array<Result & { index: number }> }).results[0]!;
    assert.ok(Array.isArray(got.trajectory) && (got.trajectory as unknown[]).length === 6);
    assertSameResult(got, want as Result, 'explained');
  });

  test('each answer is told to the scoring observers with route encounter and the raw id', async (t) => {
    const app = await appOn(t, LSTM);
    const events: ScoredEvent[] = [];
    app.observers.add({ scored: (e) => events.push(e) });
    const result = await observeOk(app, 'bed-7', { age: 50, hours: [{ hour: 0, HR: 80 }] });
    const mine = events.filter((e) => e.route === 'encounter');
    assert.equal(mine.length, 1);
    assert.equal(mine[0]!.id, 'bed-7');
    assert.equal(mine[0]!.result.probability, result.probability);
  });

  test('an idle encounter expires after the TTL, and DELETE ends one', async (t) => {
    const c = clock(T0);
    const app = await appOn(t, LSTM, { ENCOUNTER_IDLE_TTL_MS: '60000' }, c.now);
    await observeOk(app, 'idle', {
      age: 50,
      hours: [
        { hour: 0, HR: 80 },
        { hour: 1, HR: 85 },
      ],
    });
    c.set(T0 + 60_001);
    // Started anew: no descriptors, no earlier hours.
    const got = await observeOk(app, 'idle', { hours: [{ hour: 2, HR: 90 }] });
    assertSameResult(got, await predictOne(app, { id: 'idle', hours: [{}, {}, { HR: 90 }] }), 'after the TTL');

    const del = await app.inject({ method: 'DELETE', url: '/v1/encounters/idle' });
    assert.equal(del.statusCode, 204);
    const again = await app.inject({ method: 'DELETE', url: '/v1/encounters/idle' });
    assert.equal(again.statusCode, 404);
    assert.equal(JSON.parse(again.body).error, 'encounter_not_found');
    const fresh = await observeOk(app, 'idle', { hours: [{ hour: 1, HR: 70 }] });
    assertSameResult(fresh, await predictOne(app, { id: 'idle', hours: [{}, { HR: 70 }] }), 'after DELETE');
  });

  test('a new hour inside the window runs no whole-stay scoring; past 48 hours the window is rescored', async (t) => {
    // Counts the runs of model.onnx (the whole-stay graph); the step graph runs in its own worker.
    let runs = 0;
    const { app } = await buildTestApp(t, {
      modelRoot: await makeModelRoot(t, { '0.0.0-tiny': { from: LSTM } }),
      env: { DATA_DIR: await tempDir(t) },
      deps: {
        factories: {
          createEngine: async (files) => {
            const engine = await oneWorkerEngine(files);
            return { provider: engine.provider, close: () => engine.close(), run: (b) => (runs++, engine.run(b)) };
          },
        },
      },
    });
    const { header, rows } = stay(71, 50, false);
    const afterWarmUp = runs;
    for (let h = 0; h < 48; h++)
      await observeOk(app, 'cost', { ...(h === 0 ? header : {}), hours: [{ hour: h, ...rows[h] }] });
    assert.equal(runs, afterWarmUp, 'hours 0 to 47 were stepped, not rescored');
    await observeOk(app, 'cost', { hours: [{ hour: 48, ...rows[48] }] });
    assert.equal(runs, afterWarmUp + 1, 'hour 48 (the 49th) rescored the last 48 hours in one run');
  });

  test('past ENCOUNTER_MAX_HELD a new encounter gets 503, and room returns when one ends', async (t) => {
    const app = await appOn(t, LSTM, { ENCOUNTER_MAX_HELD: '1' });
    await observeOk(app, 'first', { hours: [{ hour: 0, HR: 80 }] });
    const refused = await observe(app, 'second', { hours: [{ hour: 0, HR: 80 }] });
    assert.equal(refused.statusCode, 503, refused.body);
    assert.equal(JSON.parse(refused.body).error, 'encounter_limit');
    // The one held still takes hours.
    await observeOk(app, 'first', { hours: [{ hour: 1, HR: 82 }] });
    assert.equal((await app.inject({ method: 'DELETE', url: '/v1/encounters/first' })).statusCode, 204);
    await observeOk(app, 'second', { hours: [{ hour: 0, HR: 80 }] });
  });

  test('concurrent deliveries to one encounter all land: the stay holds every hour', async (t) => {
    const app = await appOn(t, LSTM);
    const { header, rows } = stay(61, 8, false);
    await observeOk(app, 'busy', { ...header, hours: [{ hour: 0, ...rows[0] }] });
    const answers = await Promise.all(
      rows.slice(1).map((row, k) => observe(app, 'busy', { hours: [{ hour: k + 1, ...row }] })),
    );
    for (const a of answers) assert.equal(a.statusCode, 200, a.body);
    const got = await observeOk(app, 'busy', { hours: [] });
    assertSameResult(got, await predictOne(app, { id: 'busy', ...header, hours: rows }), 'after concurrent deliveries');
  });

  test('a model reload rescores the stored hours with the new version', async (t) => {
    const modelRoot = await makeModelRoot(t, { '0.0.0-tiny': { from: LSTM } });
    const app = await appOn(t, LSTM, {}, undefined, modelRoot);
    const { header, rows } = stay(41, 8, false);
    await observeOk(app, 'r', { ...header, hours: rows.slice(0, 7).map((r, hour) => ({ hour, ...r })) });
    await addVersion(modelRoot, '0.0.1-gru', { from: FIXTURES[1]!.dir });
    await app.models.reload({ version: '0.0.1-gru' });
    const got = await observeOk(app, 'r', { hours: [{ hour: 7, ...rows[7] }] });
    assert.equal(got.model.version, '0.0.1-gru');
    assertSameResult(got, await predictOne(app, { id: 'r', ...header, hours: rows }), 'after the reload');
  });

  test('refuses with 400 naming the field: malformed rows, before admission, in the future, no admittedAt', async (t) => {
    const c = clock(T0 + 3 * 3_600_000);
    const app = await appOn(t, LSTM, {}, c.now);
    const at = (minutes: number) => new Date(T0 + minutes * 60_000).toISOString();
    const cases: Array<[Record<string, unknown>, string, RegExp]> = [
      [{ hours: [{ hour: -1, HR: 80 }] }, 'hours.0.hour', /0|greater/],
      [{ hours: [{ HR: 80 }] }, 'hours.0', /either hour or at/],
      [{ hours: [{ hour: 1, at: at(60) }] }, 'hours.0', /either hour or at/],
      [{ hours: [{ hour: 0, HR: 'fast' }] }, 'hours.0.HR', /number/],
      [{ hours: [{ hour: 0 }, { hour: 1, HR: 900 }] }, 'hours.1.HR', /plausible range/],
      [{ hours: [{ hour: 0, SpO2: 97 }] }, 'hours.0.SpO2', /SaO2/],
      [{ hours: [{ at: at(10), HR: 80 }] }, 'hours.0.at', /admittedAt/],
      [{ admittedAt: at(0), hours: [{ at: at(-5), HR: 80 }] }, 'hours.0.at', /before admission/],
      [{ admittedAt: at(0), hours: [{ at: at(200), HR: 80 }] }, 'hours.0.at', /future/],
      [{ admittedAt: at(0), hours: [{ hour: 4, HR: 80 }] }, 'hours.0.hour', /future/],
      [{ admittedAt: at(240), hours: [{ hour: 0, HR: 80 }] }, 'admittedAt', /future/],
      [{ admittedAt: '2026-03-01T08:00:00', hours: [{ hour: 0 }] }, 'admittedAt', /./],
      [{ age: 3, hours: [{ hour: 0 }] }, 'age', /./],
      [{ hours: Array.from({ length: 1441 }, (_, hour) => ({ hour })) }, 'hours', /1440/],
      [{ hours: [] }, 'hours', /at least one row/],
    ];
    for (const [body, path, message] of cases) {
      const res = await observe(app, 'bad', body);
      assert.equal(res.statusCode, 400, `${JSON.stringify(body).slice(0, 80)}: ${res.body}`);
      const error = JSON.parse(res.body) as { details: Array<{ path: string; message: string }> };
      const detail = error.details.find((d) => d.path === path);
      assert.ok(detail, `${path} not in ${res.body.slice(0, 300)}`);
      assert.match(detail.message, message);
    }
    // Nothing was stored by a refused delivery.
    assert.equal((await app.inject({ method: 'DELETE', url: '/v1/encounters/bad' })).statusCode, 404);
    const big = await observe(app, 'big', { hours: [{ hour: 0 }], pad: 'x'.repeat(1024 * 1024) });
    assert.equal(big.statusCode, 413);
  });
});

for (const { backend, skip } of BACKENDS) {
  describe(`an encounter on one ${backend} store`, { skip }, () => {
    const envOf = async (t: TestContext) => {
      const store = await storeConfig(t, backend);
      return {
        DATA_DIR: store.dataDir,
        ...(store.databaseUrl ? { DATABASE_URL: store.databaseUrl } : {}),
        ...(store.siteIdKey ? { SITE_ID_KEY: store.siteIdKey } : {}),
      };
    };

    test('continues after a restart and across two app instances', async (t) => {
      const env = await envOf(t);
      const LSTM = FIXTURES[0]!.dir;
      const { header, rows } = stay(51, 11, false);
      const first = await appOn(t, LSTM, env);
      await observeOk(first, 'shared', { ...header, hours: rows.slice(0, 3).map((r, hour) => ({ hour, ...r })) });
      await first.close();
      // A restart: a new process on the same store.
      const second = await appOn(t, LSTM, env);
      const third = await appOn(t, LSTM, env);
      for (let h = 3; h < 9; h++) {
        const app = h % 2 === 0 ? second : third;
        const got = await observeOk(app, 'shared', { hours: [{ hour: h, ...rows[h] }] });
        assertSameResult(
          got,
          await predictOne(app, { id: 'shared', ...header, hours: rows.slice(0, h + 1) }),
          `hour ${h}`,
        );
      }
      // Both instances at once, each a different hour: the revision check makes the loser retry.
      const both = await Promise.all([
        observe(second, 'shared', { hours: [{ hour: 9, ...rows[9] }] }),
        observe(third, 'shared', { hours: [{ hour: 10, ...rows[10] }] }),
      ]);
      for (const a of both) assert.equal(a.statusCode, 200, a.body);
      assertSameResult(
        await observeOk(second, 'shared', { hours: [] }),
        await predictOne(second, { id: 'shared', ...header, hours: rows }),
        'after concurrent deliveries from two instances',
      );
      if (backend === 'sqlite') {
        // The store holds the HMAC of the id, never the id itself.
        for (const file of ['predictions.sqlite', 'predictions.sqlite-wal']) {
          const bytes = await readFile(join(env.DATA_DIR, file)).catch(() => Buffer.alloc(0));
          assert.equal(bytes.includes('shared'), false, file);
        }
      }
    });
  });
}
