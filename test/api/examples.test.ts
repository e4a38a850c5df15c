import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { parse } from 'yaml';
import { OPENAPI_PATH } from '../../scripts/openapi-source.js';
import { r4Errors } from '../fhir/r4-schema.js';
import { buildTestApp, ROOT, postFhirPredict } from '../helper.js';

/**
 * The request examples a newcomer copies, read from the committed openapi.yaml and the README:
 * each is answered 200 with a probability, and the FHIR Bundle is valid R4.
 */

interface Operation {
  requestBody?: { content: Record<string, { example?: unknown; examples?: Record<string, { value: unknown }> }> };
}

async function requestExample(path: string): Promise<unknown> {
  const doc = parse(await readFile(OPENAPI_PATH, 'utf8')) as { paths: Record<string, { post?: Operation }> };
  const media = doc.paths[path]?.post?.requestBody?.content['application/json'];
  const example = media?.example ?? Object.values(media?.examples ?? {})[0]?.value;
  assert.ok(example, `openapi.yaml has no request example for POST ${path}`);
  return example;
}

/** The JSON code blocks of the README's "Examples" subsection, in order. */
async function readmeExamples(): Promise<unknown[]> {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const section = /^### Examples\n([\s\S]*?)(?=^#)/m.exec(readme)?.[1];
  assert.ok(section, 'README.md has no "### Examples" subsection');
  return [...section.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1] as string) as unknown);
}

/** The examples' stay read by hand, a row per hour from the first: a woman of 70 (born 1955-05-20). */
const STAY = {
  age: 70,
  sex: 'female',
  hours: [{ HR: 104, RespRate: 22, Temp: 38.3, Lactate: 3.1 }, { HR: 110 }, { HR: 98 }],
};

async function probabilityOf(app: FastifyInstance, patient: object): Promise<number | undefined> {
  const res = await app.inject({ method: 'POST', url: '/v1/predict', payload: { patients: [patient] } });
  assert.equal(res.statusCode, 200, res.body);
  return res.json<{ results: Array<{ probability: number }> }>().results[0]?.probability;
}

test('the /v1/predict example of openapi.yaml is answered 200 with a probability', async (t) => {
  const { app } = await buildTestApp(t);
  const res = await app.inject({
    method: 'POST',
    url: '/v1/predict',
    payload: (await requestExample('/v1/predict')) as object,
  });
  assert.equal(res.statusCode, 200, res.body);
  const [result] = res.json<{ results: Array<{ probability?: number }> }>().results;
  assert.ok(result?.probability !== undefined && result.probability > 0 && result.probability < 1, res.body);
});

test('the FHIR Bundle example is valid R4 and scores as the same stay sent hour by hour to /v1/predict', async (t) => {
  const bundle = await requestExample('/fhir/RiskAssessment/$predict');
  assert.deepEqual(r4Errors(bundle), []);
  const { app } = await buildTestApp(t);
  const res = await postFhirPredict(app, bundle);
  assert.equal(res.statusCode, 200, res.body);
  const riskAssessment = res.json<{ prediction: Array<{ probabilityDecimal: number }> }>();
  assert.deepEqual(r4Errors(riskAssessment), []);
  assert.equal(riskAssessment.prediction[0]?.probabilityDecimal, await probabilityOf(app, { ...STAY, icuType: 3 }));
});

test('the CDS Hooks patient-view example is answered 200 with a card that gives its probability', async (t) => {
  const { app } = await buildTestApp(t);
  const res = await app.inject({
    method: 'POST',
    url: '/cds-services/icu-mortality',
    payload: (await requestExample('/cds-services/icu-mortality')) as object,
  });
  assert.equal(res.statusCode, 200, res.body);
  const { cards } = res.json<{ cards: Array<{ summary: string }> }>();
  assert.equal(cards.length, 1, res.body);
  // No Encounter in the prefetch: time zero is the first observation (06:10, the same hours) and no ICU type.
  const probability = (await probabilityOf(app, STAY)) as number;
  assert.match(cards[0]?.summary ?? '', new RegExp(`\\b${Math.round(probability * 100)}%`));
});

test("the README's examples are the ones in openapi.yaml", async () => {
  assert.deepEqual(await readmeExamples(), [
    await requestExample('/fhir/RiskAssessment/$predict'),
    await requestExample('/cds-services/icu-mortality'),
  ]);
});
