import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { cdsPatientViewExample, fhirBundleExample } from '../../src/api/examples.js';
import { EngineRunError, QueueFullError, RequestExceedsQueueError } from '../../src/inference/errors.js';
import { ModelNotFoundError, type ModelBatcher } from '../../src/model/repository.js';
import { modelFactories } from '../../src/model/runtime.js';
import { describeError } from '../../src/http/error-table.js';
import { EncounterInputError } from '../../src/scoring/encounters.js';
import { r4Errors } from '../fhir/r4-schema.js';
import { buildTestApp, postFhirPredict, samplePatient } from '../helper.js';

/**
 * One domain error, one answer: the same thrown error gets the same status on /v1/predict, the
 * NDJSON stream, FHIR $predict and CDS Hooks, the same error code on the JSON routes, and on FHIR
 * an OperationOutcome whose IssueType matches the status (https://hl7.org/fhir/R4/valueset-issue-type.html).
 * The batcher is the real one, wrapped so that its submit rejects with the error under test.
 */

const NOW = new Date('2026-03-14T09:00:00Z');
const SECRET = 'engine-internal-detail-7f3a';

/** Written by hand from the issue's rule, not read from src/http/error-table.ts. */
const EXPECTED = {
  unknownVersion: { status: 404, code: 'model_not_found', issue: 'not-found' },
  queueFull: { status: 503, code: 'queue_full', issue: 'transient' },
  tooLarge: { status: 413, code: 'request_too_large', issue: 'too-costly' },
  engineFailed: { status: 500, code: 'inference_failed', issue: 'exception' },
  validation: { status: 400, code: 'validation_failed', issue: 'structure' },
} as const;
type Case = keyof typeof EXPECTED;

const THROWN: Record<Exclude<Case, 'validation'>, () => Error> = {
  // On FHIR and CDS Hooks the serving version is pinned at the start: a reload in between makes
  // acquiring it fail with this error, which the wrapper stands in for.
  unknownVersion: () => new ModelNotFoundError('version "9.9.9" of icu-mortality is not loaded'),
  queueFull: () => new QueueFullError('the queue holds 16384 engine rows', 2),
  tooLarge: () => new RequestExceedsQueueError('the request needs 40 engine rows; one caller may hold 8'),
  engineFailed: () => new EngineRunError(SECRET),
};

async function appFailingWith(t: TestContext): Promise<{ app: FastifyInstance; failWith(e?: Error): void }> {
  let failure: Error | undefined;
  const real = modelFactories({
    providers: ['cpu'],
    intraOpThreads: 1,
    workers: 1,
    maxBatchSize: 64,
    maxQueueDelayMs: 1,
    maxQueueSize: 1024,
    logger: { info: () => {}, warn: () => {}, error: () => {} },
  });
  const { app } = await buildTestApp(t, {
    deps: {
      now: () => NOW,
      factories: {
        createEngine: real.createEngine,
        createBatcher: (engine, files): ModelBatcher => {
          const batcher = real.createBatcher(engine, files);
          return {
            submit: (...args) => (failure ? Promise.reject(failure) : batcher.submit(...args)),
            admit: (...args) => batcher.admit(...args),
            get depth() {
              return batcher.depth;
            },
            drain: () => batcher.drain(),
          };
        },
      },
    },
  });
  return { app, failWith: (e) => (failure = e) };
}

function assertJsonError(res: LightMyRequestResponse, expected: (typeof EXPECTED)[Case], route: string): void {
  assert.equal(res.statusCode, expected.status, `${route}: ${res.body}`);
  assert.match(String(res.headers['content-type']), /^application\/json/, route);
  assert.equal(res.json<{ error: string }>().error, expected.code, route);
}

function assertOutcome(res: LightMyRequestResponse, expected: (typeof EXPECTED)[Case]): void {
  assert.equal(res.statusCode, expected.status, `FHIR: ${res.body}`);
  assert.match(String(res.headers['content-type']), /^application\/fhir\+json/);
  const outcome = res.json<{ resourceType: string; issue: Array<{ code: string }> }>();
  assert.equal(outcome.resourceType, 'OperationOutcome');
  assert.deepEqual(r4Errors(outcome), []);
  assert.deepEqual([...new Set(outcome.issue.map((i) => i.code))], [expected.issue]);
}

const predict = (app: FastifyInstance, body: object) =>
  app.inject({ method: 'POST', url: '/v1/predict', payload: body });
const cds = (app: FastifyInstance, body: object) =>
  app.inject({ method: 'POST', url: '/cds-services/icu-mortality', payload: body });

describe('one error table for every route', () => {
  for (const name of Object.keys(THROWN) as Array<keyof typeof THROWN>) {
    test(`${name}: the same status on /v1/predict, FHIR and CDS Hooks, and the same code on the JSON routes and stream lines`, async (t) => {
      const { app, failWith } = await appFailingWith(t);
      const expected = EXPECTED[name];
      failWith(THROWN[name]());
      const answers = {
        predict: await predict(app, { patients: [samplePatient(6, 1)] }),
        fhir: await postFhirPredict(app, fhirBundleExample),
        cds: await cds(app, cdsPatientViewExample),
      };
      assertJsonError(answers.predict, expected, '/v1/predict');
      assertJsonError(answers.cds, expected, 'CDS Hooks');
      assertOutcome(answers.fhir, expected);
      if (name !== 'queueFull') {
        // The stream has answered 200 before its lines are scored: each line's error carries the code.
        // (A full queue is waited out there, not refused: the stream backs off and resubmits.)
        const stream = await app.inject({
          method: 'POST',
          url: '/v1/predict/stream',
          headers: { 'content-type': 'application/x-ndjson' },
          payload: `${JSON.stringify(samplePatient(6, 1))}\n`,
        });
        assert.equal(stream.statusCode, 200, stream.body);
        const line = JSON.parse(stream.body.split('\n')[0] ?? '') as { error?: { error: string } };
        assert.equal(line.error?.error, expected.code, stream.body);
        assert.ok(!stream.body.includes(SECRET), stream.body);
      }
      for (const res of Object.values(answers)) {
        if (expected.status === 503) assert.equal(res.headers['retry-after'], '2');
        // A 5xx's own message stays in the server log.
        assert.ok(!res.body.includes(SECRET), res.body);
      }
      // The same requests succeed once the error is gone: the error, not the request, made the answer.
      failWith(undefined);
      assert.equal((await predict(app, { patients: [samplePatient(6, 1)] })).statusCode, 200);
      assert.equal((await postFhirPredict(app, fhirBundleExample)).statusCode, 200);
      assert.equal((await cds(app, cdsPatientViewExample)).statusCode, 200);
    });
  }

  test('an unknown model version asked for by the client is a 404 model_not_found on /v1/predict and the stream', async (t) => {
    const { app } = await appFailingWith(t);
    const expected = EXPECTED.unknownVersion;
    assertJsonError(await predict(app, { version: '9.9.9', patients: [samplePatient(6, 1)] }), expected, 'predict');
    const stream = await app.inject({
      method: 'POST',
      url: '/v1/predict/stream?version=9.9.9',
      headers: { 'content-type': 'application/x-ndjson' },
      payload: `${JSON.stringify(samplePatient(6, 1))}\n`,
    });
    assertJsonError(stream, expected, 'stream');
  });

  test('a request that fails its schema is a 400 validation_failed on every route, an OperationOutcome on FHIR', async (t) => {
    const { app } = await appFailingWith(t);
    const expected = EXPECTED.validation;
    assertJsonError(await predict(app, { patients: 'none' }), expected, '/v1/predict');
    const stream = await app.inject({
      method: 'POST',
      url: '/v1/predict/stream?explain=maybe',
      headers: { 'content-type': 'application/x-ndjson' },
      payload: `${JSON.stringify(samplePatient(6, 1))}\n`,
    });
    assertJsonError(stream, expected, 'stream');
    assertJsonError(await cds(app, { hook: 'patient-view' }), expected, 'CDS Hooks');
    const outcome = await postFhirPredict(app, { resourceType: 'Patient' });
    assertOutcome(outcome, expected);
    assert.match(outcome.body, /resourceType/);
  });

  test('an encounter the service refuses answers from the table: its status, code and field paths', () => {
    const refused = describeError(
      new EncounterInputError(400, 'validation_failed', 'hours.0.HR: too high', [
        { path: ['hours', 0, 'HR'], message: 'Heart rate outside the plausible range 0 to 300 /min' },
      ]),
    );
    assert.deepEqual(refused, {
      status: 400,
      code: 'validation_failed',
      message: 'hours.0.HR: too high',
      details: [{ path: 'hours.0.HR', message: 'Heart rate outside the plausible range 0 to 300 /min' }],
    });
    assert.equal(describeError(new EncounterInputError(503, 'encounter_limit', 'full')).status, 503);
  });
});
