import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { addVersion, buildTestApp, makeModelRoot, ROOT } from '../helper.js';

/** A model root whose serving version carries a real card (1.6.0's); a second version has none. */
async function rootWithCard(t: TestContext): Promise<{ root: string; card: string }> {
  const root = await makeModelRoot(t, { '0.0.0-tiny': { copy: true } });
  await addVersion(root, '0.0.0-nocard');
  const card = join(root, 'icu-mortality', '0.0.0-tiny', 'model-card.md');
  await copyFile(join(ROOT, 'models', 'icu-mortality', '1.6.0', 'model-card.md'), card);
  return { root, card };
}

test('GET /v1/models/{version}/card answers the model-card.md of that version as Markdown', async (t) => {
  const { root, card } = await rootWithCard(t);
  const { app } = await buildTestApp(t, { modelRoot: root, env: { MODEL_VERSION: '0.0.0-tiny' } });
  const res = await app.inject({ method: 'GET', url: '/v1/models/0.0.0-tiny/card' });
  assert.equal(res.statusCode, 200, res.body);
  assert.equal(res.headers['content-type'], 'text/markdown; charset=utf-8');
  assert.equal(res.body, await readFile(card, 'utf8'));
});

test('GET /v1/models links the card of every version that has one', async (t) => {
  const { root } = await rootWithCard(t);
  const { app } = await buildTestApp(t, { modelRoot: root, env: { MODEL_VERSION: '0.0.0-tiny' } });
  const body = (await app.inject({ method: 'GET', url: '/v1/models' })).json<{
    models: Array<{ version: string; card?: string }>;
    available: string[];
    cards: Record<string, string>;
  }>();
  assert.deepEqual(body.available.sort(), ['0.0.0-nocard', '0.0.0-tiny']);
  assert.deepEqual(body.cards, { '0.0.0-tiny': '/v1/models/0.0.0-tiny/card' });
  assert.equal(body.models[0]?.card, '/v1/models/0.0.0-tiny/card');
  const followed = await app.inject({ method: 'GET', url: body.models[0]?.card as string });
  assert.equal(followed.statusCode, 200);
});

test('a version that is unknown, or has no card, is a 404 naming the version', async (t) => {
  const { root } = await rootWithCard(t);
  const { app } = await buildTestApp(t, { modelRoot: root, env: { MODEL_VERSION: '0.0.0-tiny' } });
  for (const version of ['9.9.9', '0.0.0-nocard']) {
    const res = await app.inject({ method: 'GET', url: `/v1/models/${version}/card` });
    assert.equal(res.statusCode, 404, version);
    const body = res.json<{ error: string; message: string; details: unknown[] }>();
    assert.equal(body.error, 'model_card_not_found');
    assert.ok(body.message.includes(`"${version}"`), body.message);
    assert.ok(body.message.includes('0.0.0-tiny'), 'the message lists the versions that have a card');
    assert.deepEqual(body.details, []);
  }
  const traversal = await app.inject({ method: 'GET', url: '/v1/models/..%2F..%2Fpackage.json/card' });
  assert.equal(traversal.statusCode, 404);
  assert.ok(!traversal.body.includes('package.json'), 'a name that is no version is not echoed');
});

test('the card needs a credential with models:read, like /v1/models', async (t) => {
  const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
  const { root } = await rootWithCard(t);
  const { app } = await buildTestApp(t, {
    modelRoot: root,
    env: {
      MODEL_VERSION: '0.0.0-tiny',
      AUTH_DISABLED: 'false',
      API_KEY_HASHES: `reader:${sha('reader-key-0123456789')}:models:read,scorer:${sha('scorer-key-0123456789')}:predict`,
    },
  });
  const url = '/v1/models/0.0.0-tiny/card';
  assert.equal((await app.inject({ method: 'GET', url })).statusCode, 401);
  const scorer = await app.inject({ method: 'GET', url, headers: { 'x-api-key': 'scorer-key-0123456789' } });
  assert.equal(scorer.statusCode, 403);
  const reader = await app.inject({ method: 'GET', url, headers: { 'x-api-key': 'reader-key-0123456789' } });
  assert.equal(reader.statusCode, 200);
});
