import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { MAX_OUTCOMES_PER_REQUEST } from '../../src/api/outcomes.js';
import { buildTestApp, samplePatient } from '../helper.js';

async function dataDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'icu-outcomes-api-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Scores `ids` through /v1/predict and waits until the recorder has written them. */
async function scoreIds(app: Awaited<ReturnType<typeof buildTestApp>>['app'], ids: string[]): Promise<void> {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/predict',
    payload: { patients: ids.map((id, i) => samplePatient(6, i + 1, id)) },
  });
  assert.equal(res.statusCode, 200, res.body);
  await app.recorder.flushed();
}

describe('POST /v1/outcomes', () => {
  it('stores valid outcomes, reports each bad one with its path, and counts unmatched ones', async (t) => {
    const { app } = await buildTestApp(t, { env: { DATA_DIR: await dataDir(t) } });
    await scoreIds(app, ['stay-1', 'stay-2']);
    const later = new Date(Date.now() + 1000).toISOString();
    const res = await app.inject({
      method: 'POST',
      url: '/v1/outcomes',
      payload: {
        outcomes: [
          { id: 'stay-1', died: true, at: later },
          { id: 'stay-2', died: 'yes', at: later },
          { id: 'stay-3', died: false, at: later }, // never scored
          { id: 'stay-2', died: false, at: '2026-13-01T00:00:00Z' },
          { id: 'stay-2', died: false, at: '2999-01-01T00:00:00Z' },
          'not an object',
        ],
      },
    });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json() as Record<string, unknown> & { errors: Array<Record<string, unknown>> };
    assert.deepEqual(
      {
        stored: body.stored,
        updated: body.updated,
        unchanged: body.unchanged,
        unmatched: body.unmatched,
        failed: body.failed,
      },
      { stored: 2, updated: 0, unchanged: 0, unmatched: 1, failed: 4 },
    );
    assert.deepEqual(
      body.errors.map((e) => [
        e.index,
        e.id,
        (e.error as { details: Array<{ path: string }> }).details.map((d) => d.path),
      ]),
      [
        [1, 'stay-2', ['died']],
        [3, 'stay-2', ['at']],
        [4, 'stay-2', ['at']],
        [5, undefined, ['']],
      ],
    );
    assert.match(JSON.stringify(body.errors[2]), /in the future/);
  });

  it('leaves a repeat unchanged and updates a changed outcome', async (t) => {
    const { app } = await buildTestApp(t, { env: { DATA_DIR: await dataDir(t) } });
    await scoreIds(app, ['a']);
    const at = new Date(Date.now() + 1000).toISOString();
    const post = async (died: boolean) =>
      (
        await app.inject({ method: 'POST', url: '/v1/outcomes', payload: { outcomes: [{ id: 'a', died, at }] } })
      ).json();
    assert.deepEqual(await post(true), { stored: 1, updated: 0, unchanged: 0, unmatched: 0, failed: 0, errors: [] });
    assert.deepEqual(await post(true), { stored: 0, updated: 0, unchanged: 1, unmatched: 0, failed: 0, errors: [] });
    assert.deepEqual(await post(false), { stored: 0, updated: 1, unchanged: 0, unmatched: 0, failed: 0, errors: [] });
  });

  it('answers 400 naming every path when no outcome is valid, and bounds the batch', async (t) => {
    const { app } = await buildTestApp(t, { env: { DATA_DIR: await dataDir(t) } });
    const bad = await app.inject({
      method: 'POST',
      url: '/v1/outcomes',
      payload: { outcomes: [{ id: '', died: true, at: 'yesterday' }, { died: 1 }] },
    });
    assert.equal(bad.statusCode, 400);
    const paths = (bad.json() as { details: Array<{ path: string }> }).details.map((d) => d.path);
    assert.deepEqual(paths, ['outcomes.0.id', 'outcomes.0.at', 'outcomes.1.id', 'outcomes.1.died', 'outcomes.1.at']);
    const many = Array.from({ length: MAX_OUTCOMES_PER_REQUEST + 1 }, (_, i) => ({
      id: `${i}`,
      died: false,
      at: '2026-01-01T00:00:00Z',
    }));
    const tooMany = await app.inject({ method: 'POST', url: '/v1/outcomes', payload: { outcomes: many } });
    assert.equal(tooMany.statusCode, 400);
    assert.match(tooMany.body, /outcomes/);
    const empty = await app.inject({ method: 'POST', url: '/v1/outcomes', payload: { outcomes: [] } });
    assert.equal(empty.statusCode, 400);
  });

  it('needs the outcomes:write scope: a predict key is refused', async (t) => {
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    const { app } = await buildTestApp(t, {
      env: {
        DATA_DIR: await dataDir(t),
        AUTH_DISABLED: 'false',
        API_KEY_HASHES: `scorer:${sha('scorer-key')}:predict,registry:${sha('registry-key')}:outcomes:write`,
      },
    });
    const payload = { outcomes: [{ id: 'x', died: false, at: '2026-01-01T00:00:00Z' }] };
    const as = (key: string) =>
      app.inject({ method: 'POST', url: '/v1/outcomes', headers: { 'x-api-key': key }, payload });
    assert.equal((await as('scorer-key')).statusCode, 403);
    assert.equal((await as('registry-key')).statusCode, 200);
    const predict = await app.inject({
      method: 'POST',
      url: '/v1/predict',
      headers: { 'x-api-key': 'registry-key' },
      payload: { patients: [samplePatient(3)] },
    });
    assert.equal(predict.statusCode, 403);
  });

  it('stores the outcome under the subject key: the raw id is nowhere in the store', async (t) => {
    const dir = await dataDir(t);
    const { app } = await buildTestApp(t, { env: { DATA_DIR: dir } });
    const id = 'MRN-0042-unique';
    await scoreIds(app, [id]);
    await app.inject({
      method: 'POST',
      url: '/v1/outcomes',
      payload: { outcomes: [{ id, died: true, at: new Date(Date.now() + 1000).toISOString() }] },
    });
    const rows = await app.store.client.all('SELECT * FROM outcomes');
    assert.equal(rows.length, 1);
    assert.equal(rows[0]?.subject_key, app.store.subjectKey(id));
    await app.close();
    for (const name of (await readdir(dir)).filter((f) => f.startsWith('predictions.sqlite'))) {
      assert.equal((await readFile(join(dir, name))).includes(id), false, name);
    }
  });
});
