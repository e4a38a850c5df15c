import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { scanPredictBody } from '../../src/api/predict-body.js';
import { createPatientValidator, type PatientValidator } from '../../src/clinical/validate.js';
import { buildTestApp, loadTinyManifest, samplePatient } from '../helper.js';

/**
 * POST /v1/predict reads most bodies with the patient scanner (src/api/predict-body.ts) and
 * any other body with Fastify's JSON parser. Both must answer the same: the reference here is
 * the same patients sent in a body the scanner declines.
 */

let validator: PatientValidator;
before(async () => {
  validator = createPatientValidator(await loadTinyManifest());
});

test('scanPredictBody takes the envelope with model and version in any order, and nothing else', () => {
  const patients = [samplePatient(3, 1, 'a'), samplePatient(2, 2)];
  const taken = scanPredictBody(
    Buffer.from(JSON.stringify({ version: '1', patients, model: 'icu-mortality' }, null, 1)),
    validator,
  );
  assert.ok(taken);
  assert.equal(taken.patients.length, 2);
  assert.equal(taken.model, 'icu-mortality');
  assert.equal(taken.version, '1');
  assert.deepEqual(
    taken.patients.map((p) => p.raw()),
    JSON.parse(JSON.stringify(patients)),
  );
  const declined = [
    '',
    '{}',
    '{"patients":[]}',
    `{"patients":[${JSON.stringify(patients[0])}],"extra":1}`,
    `{"patients":[${JSON.stringify(patients[0])}],"model":"a","model":"b"}`,
    `{"patients":[${JSON.stringify(patients[0])}],"model":"a\\u0062"}`,
    `{"patients":[${JSON.stringify(patients[0])}]} []`,
    `{"patients":[${JSON.stringify({ ...patients[0], units: { Temp: '[degF]' } })}]}`,
    `{"patients":[${JSON.stringify(patients[0])},{"hours":[{"HR":-1}]}]}`,
    `{"patients":[${JSON.stringify(patients[0])}`,
  ];
  for (const text of declined) assert.equal(scanPredictBody(Buffer.from(text), validator), undefined, text);
});

test('a scanned body and the same patients parsed by JSON.parse get the same answer', async (t) => {
  const { app } = await buildTestApp(t);
  const patients = Array.from({ length: 20 }, (_, i) => samplePatient(1 + ((i * 7) % 48), 300 + i, `p${i}`));
  const scannedText = JSON.stringify({ patients });
  assert.ok(scanPredictBody(Buffer.from(scannedText), app.models.active!.validator), 'the scanner takes this body');
  // An escape in the model name makes the scanner decline the whole body; the name is the same.
  const parsedText = JSON.stringify({ patients, model: 'icu-mortality' }).replace(
    '"icu-mortality"',
    '"icu\\u002dmortality"',
  );
  assert.equal(scanPredictBody(Buffer.from(parsedText), app.models.active!.validator), undefined);
  const headers = { 'content-type': 'application/json' };
  const a = await app.inject({ method: 'POST', url: '/v1/predict', headers, payload: scannedText });
  const b = await app.inject({ method: 'POST', url: '/v1/predict', headers, payload: parsedText });
  assert.equal(a.statusCode, 200);
  assert.equal(b.statusCode, 200);
  assert.deepEqual(a.json(), b.json());
});

test('malformed JSON and prototype poisoning are still answered by the JSON parser', async (t) => {
  const { app } = await buildTestApp(t);
  const headers = { 'content-type': 'application/json' };
  const broken = await app.inject({
    method: 'POST',
    url: '/v1/predict',
    headers,
    payload: '{"patients":[{"hours":[{"HR":80}]}',
  });
  assert.equal(broken.statusCode, 400);
  const poisoned = await app.inject({
    method: 'POST',
    url: '/v1/predict',
    headers,
    payload: '{"patients":[{"hours":[{"HR":80}]}],"__proto__":{"x":1}}',
  });
  assert.equal(poisoned.statusCode, 400);
  const mixed = await app.inject({
    method: 'POST',
    url: '/v1/predict',
    headers,
    payload: JSON.stringify({ patients: [samplePatient(2, 1), { hours: [{ HR: -1 }] }] }),
  });
  assert.equal(mixed.statusCode, 200);
  const results = mixed.json<{ results: Array<{ error?: { details: Array<{ path: string }> } }> }>().results;
  assert.equal(results[1]?.error?.details[0]?.path, 'hours.0.HR');
});
