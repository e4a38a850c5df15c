import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { parse } from 'yaml';
import { OPENAPI_PATH, generateOpenApiYaml } from '../scripts/openapi-source.js';

test('the committed openapi.yaml is what the app generates (run `npm run openapi` after changing routes or schemas)', async () => {
  const generated = await generateOpenApiYaml();
  const committed = await readFile(OPENAPI_PATH, 'utf8');
  assert.deepEqual(parse(committed), parse(generated));
});

test('the OpenAPI document declares the predict route with units, bounds and the common error shape', async () => {
  const doc = parse(await readFile(OPENAPI_PATH, 'utf8')) as {
    paths: Record<string, Record<string, { requestBody?: unknown; responses: Record<string, unknown> }>>;
  };
  const predict = doc.paths['/v1/predict']?.post;
  assert.ok(predict, 'POST /v1/predict missing');
  const text = JSON.stringify(predict);
  assert.match(text, /Heart rate, in \/min \(plausible 0 to 300/);
  assert.match(text, /\[degF\]/);
  for (const code of ['200', '400', '503']) assert.ok(predict.responses[code], `response ${code} missing`);
  for (const path of ['/health/live', '/health/ready', '/v1/models', '/metrics', '/admin/models/reload'])
    assert.ok(doc.paths[path], `${path} missing`);
});
