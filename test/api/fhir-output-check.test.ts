import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildTestApp, loadTinyManifest, oneWorkerEngine, ROOT, postFhirPredict } from '../helper.js';
import { recordToBundle } from '../fixtures/fhir/physionet-to-fhir.js';

const NOW = new Date('2026-03-15T06:30:00Z');

test('$predict answers an OperationOutcome that says so when the model gives no probability', async (t) => {
  // After the warm-up, which refuses a model that answers NaN at load.
  let poison = false;
  const { app } = await buildTestApp(t, {
    deps: {
      now: () => NOW,
      // The fixture's real engine with every output replaced by NaN, as an overflow inside a graph would give.
      factories: {
        createEngine: async (files) => {
          const engine = await oneWorkerEngine(files);
          return {
            provider: engine.provider,
            close: () => engine.close(),
            run: async (batch) => {
              const out = await engine.run(batch);
              return poison ? new Float32Array(out.length).fill(Number.NaN) : out;
            },
          };
        },
      },
    },
  });
  poison = true;
  const text = await readFile(join(ROOT, 'test', 'fixtures', 'fhir', 'records', 'stay-b.txt'), 'utf8');
  const bundle = recordToBundle(text, await loadTinyManifest(), {
    admission: new Date('2026-03-13T06:30:00Z'),
    predictionTime: NOW,
  });
  const res = await postFhirPredict(app, bundle);
  assert.equal(res.statusCode, 422, res.body);
  const outcome = res.json() as { resourceType: string; issue: Array<{ severity: string; diagnostics: string }> };
  assert.equal(outcome.resourceType, 'OperationOutcome');
  assert.equal(outcome.issue.length, 1);
  assert.equal(outcome.issue[0]?.severity, 'error');
  assert.match(outcome.issue[0]?.diagnostics ?? '', /no usable probability/);
});
