import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { compareSemver } from '../../src/model/semver.js';
import { addVersion, buildTestApp, makeModelRoot, samplePatient } from '../helper.js';

interface PredictBody {
  model: { name: string; version: string };
  results: Array<{ probability: number; model: { version: string } }>;
}

test('versions sort by semantic version, pre-releases before their release', () => {
  const sorted = ['1.10.0', '1.2.0', '1.2.0-rc.1', '0.9.9', '1.2.0-rc.10', '1.2.0-beta'].sort(compareSemver);
  assert.deepEqual(sorted, ['0.9.9', '1.2.0-beta', '1.2.0-rc.1', '1.2.0-rc.10', '1.2.0', '1.10.0']);
});

test('the highest semver version is served by default, and a pinned version when configured', async (t) => {
  const root = await makeModelRoot(t, { '1.0.0': { copy: true }, '1.2.0': { copy: true }, '1.10.0': { copy: true } });
  const latest = await buildTestApp(t, { modelRoot: root });
  assert.equal(latest.app.models.active?.version, '1.10.0');
  const pinned = await buildTestApp(t, { modelRoot: root, env: { MODEL_VERSION: '1.2.0' } });
  assert.equal(pinned.app.models.active?.version, '1.2.0');
});

test('start-up fails clearly when no model is found', async (t) => {
  const root = await makeModelRoot(t, {});
  await assert.rejects(
    buildTestApp(t, { modelRoot: root }),
    /no model found: expected .*icu-mortality\/<version>\/manifest.json/,
  );
});

test('a reload while requests are in flight switches atomically: every response uses one version, none fails', async (t) => {
  const root = await makeModelRoot(t, { '1.0.0': { copy: true } });
  const { app } = await buildTestApp(t, { modelRoot: root, env: { MAX_BATCH_SIZE: '4' } });
  const old = app.models.active!;
  await addVersion(root, '1.1.0', { copy: true });
  const before = Array.from({ length: 12 }, (_, i) =>
    app.inject({
      method: 'POST',
      url: '/v1/predict',
      payload: { patients: [samplePatient(6, i), samplePatient(30, i + 7)] },
    }),
  );
  const reload = app.inject({ method: 'POST', url: '/admin/models/reload', payload: {} });
  const after = Array.from({ length: 12 }, (_, i) =>
    app.inject({
      method: 'POST',
      url: '/v1/predict',
      payload: { patients: [samplePatient(6, i), samplePatient(30, i + 7)] },
    }),
  );
  const reloaded = await reload;
  assert.equal(reloaded.statusCode, 200, reloaded.body);
  assert.deepEqual(reloaded.json(), { changed: true, previous: '1.0.0', current: '1.1.0' });
  const responses = await Promise.all([...before, ...after]);
  for (const r of responses) {
    assert.equal(r.statusCode, 200, r.body);
    const body = r.json<PredictBody>();
    assert.ok(['1.0.0', '1.1.0'].includes(body.model.version));
    for (const result of body.results) assert.equal(result.model.version, body.model.version);
  }
  assert.equal(app.models.active?.version, '1.1.0');
  const next = await app.inject({ method: 'POST', url: '/v1/predict', payload: { patients: [samplePatient(3)] } });
  assert.equal(next.json<PredictBody>().model.version, '1.1.0');
  // The replaced version is closed once its last request is done.
  await old.retire();
  assert.equal(old.leases, 0);
  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  assert.match(metrics, /model_info\{model="icu-mortality",version="1.1.0",provider="cpu"\} 1/);
  assert.doesNotMatch(metrics, /model_info\{model="icu-mortality",version="1.0.0"/);
});

test('reloading the serving version is a no-op', async (t) => {
  const { app } = await buildTestApp(t);
  const res = await app.inject({ method: 'POST', url: '/admin/models/reload' });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), { changed: false, previous: '0.0.0-tiny', current: '0.0.0-tiny' });
});

test('a broken model file is rejected with a clear log line and the serving model keeps serving', async (t) => {
  const root = await makeModelRoot(t, { '1.0.0': { copy: true } });
  const { app, logs } = await buildTestApp(t, { modelRoot: root });
  const dir = await addVersion(root, '2.0.0', { copy: true });
  await writeFile(join(dir, 'model.onnx'), Buffer.from('this is not an onnx file'));
  const res = await app.inject({ method: 'POST', url: '/admin/models/reload' });
  assert.equal(res.statusCode, 422);
  assert.equal(res.json<{ error: string }>().error, 'model_load_failed');
  assert.match(res.json<{ message: string }>().message, /2\.0\.0 could not be loaded/);
  const rejected = logs.lines
    .map((l) => JSON.parse(l) as { level: number; msg: string; version?: string })
    .find((l) => l.msg.startsWith('model rejected'));
  assert.ok(rejected, 'no "model rejected" log line');
  assert.equal(rejected.version, '2.0.0');
  assert.equal(rejected.level, 50);
  assert.equal(app.models.active?.version, '1.0.0');
  const still = await app.inject({ method: 'POST', url: '/v1/predict', payload: { patients: [samplePatient(4)] } });
  assert.equal(still.statusCode, 200);
  assert.equal(still.json<PredictBody>().model.version, '1.0.0');
  assert.equal((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 200);
});

test('a manifest that does not match its input width is rejected before loading', async (t) => {
  const root = await makeModelRoot(t, { '1.0.0': { copy: true } });
  const { app } = await buildTestApp(t, { modelRoot: root });
  const dir = await addVersion(root, '1.0.1', { copy: true });
  const { readFile } = await import('node:fs/promises');
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { variables: unknown[] };
  manifest.variables.pop();
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
  const res = await app.inject({ method: 'POST', url: '/admin/models/reload' });
  assert.equal(res.statusCode, 422);
  assert.match(res.json<{ message: string }>().message, /nInputs/);
  assert.equal(app.models.active?.version, '1.0.0');
});

test('a model whose graph takes x (exported before the tensor moved into the graph) is refused, naming the fix', async (t) => {
  const root = await makeModelRoot(t, { '1.0.0': { copy: true } });
  const { app } = await buildTestApp(t, { modelRoot: root });
  const dir = await addVersion(root, '1.0.1', { copy: true });
  const { readFile } = await import('node:fs/promises');
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { onnx: { inputs: unknown } };
  manifest.onnx.inputs = { x: 'x', lengths: 'lengths' };
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
  const res = await app.inject({ method: 'POST', url: '/admin/models/reload' });
  assert.equal(res.statusCode, 422);
  assert.match(res.json<{ message: string }>().message, /takes the input tensor x.*training\.repackage/);
  assert.equal(app.models.active?.version, '1.0.0');
});

test(
  'with MODEL_WATCH, a new version copied into the model folder is loaded and served',
  { timeout: 60_000 },
  async (t) => {
    const root = await makeModelRoot(t, { '1.0.0': { copy: true } });
    const { app } = await buildTestApp(t, { modelRoot: root, env: { MODEL_WATCH: 'true' } });
    assert.equal(app.models.active?.version, '1.0.0');
    const serving = once(app.models, 'serving');
    await addVersion(root, '1.0.1', { copy: true });
    const [model] = (await serving) as [{ version: string }];
    assert.equal(model.version, '1.0.1');
    const res = await app.inject({ method: 'POST', url: '/v1/predict', payload: { patients: [samplePatient(3)] } });
    assert.equal(res.json<PredictBody>().model.version, '1.0.1');
  },
);
