import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { gatherResources } from '../../src/fhir/gather.js';
import { mapToPatientInput } from '../../src/fhir/mapping.js';
import { FhirInputError } from '../../src/fhir/outcome.js';
import { buildTestApp, loadTinyManifest, ROOT } from '../helper.js';
import { entry, LOINC, observation, type Json } from '../fixtures/fhir/physionet-to-fhir.js';

/**
 * A stay longer than 8,784 hours (366 days, MAX_HOURS_RECEIVED) is refused from its instants,
 * before hourly rows are built: an Encounter that starts in year 1 once cost 17.7M rows and 1.8 GB.
 */

const AT = new Date('2026-03-15T06:30:00Z');
const HR = [{ system: LOINC, code: '8867-4' }];

function bundle(start: string | undefined, observations: Json[]): Json {
  return {
    resourceType: 'Bundle',
    type: 'collection',
    entry: [
      entry({ resourceType: 'Patient', id: 'p1', birthDate: '1960-01-01', gender: 'female' }),
      ...(start === undefined
        ? []
        : [
            entry({
              resourceType: 'Encounter',
              id: 'e1',
              status: 'in-progress',
              subject: { reference: 'Patient/p1' },
              period: { start },
            }),
          ]),
      ...observations.map(entry),
    ],
  };
}

function refusal(fn: () => unknown): FhirInputError {
  try {
    fn();
  } catch (error) {
    if (error instanceof FhirInputError) return error;
    throw error;
  }
  assert.fail('the mapping did not refuse the stay');
}

describe('the span of a FHIR stay is checked before hours are built', () => {
  test('an Encounter starting at 0001-01-01 is refused naming Encounter.period.start (422)', async () => {
    const manifest = await loadTinyManifest();
    const gathered = gatherResources(
      bundle('0001-01-01T00:00:00Z', [observation('o1', HR, 80, '/min', '2026-03-15T05:00:00Z')]),
    );
    const error = refusal(() => mapToPatientInput(gathered, { manifest, predictionTime: AT }));
    assert.equal(error.statusCode, 422);
    assert.deepEqual(error.issues[0]?.expression, [
      'Bundle.entry[1].resource.period.start',
      'Bundle.entry[2].resource.effectiveDateTime',
    ]);
    assert.match(error.issues[0]?.message ?? '', /Encounter\.period\.start .* more than 8784 hours/);
  });

  test('the refusal needs no memory proportional to the span (a 64 MB heap is enough)', async () => {
    // Building 17.7M hourly rows needs far more than 64 MB: the old path dies of heap exhaustion here.
    const dir = await mkdtemp(join(tmpdir(), 'fhir-span-'));
    try {
      const script = join(dir, 'span.mts');
      await writeFile(
        script,
        `import { gatherResources } from ${JSON.stringify(join(ROOT, 'src/fhir/gather.ts'))};
import { mapToPatientInput } from ${JSON.stringify(join(ROOT, 'src/fhir/mapping.ts'))};
import { loadTinyManifest } from ${JSON.stringify(join(ROOT, 'test/helper.ts'))};
const manifest = await loadTinyManifest();
const body = ${JSON.stringify(bundle('0001-01-01T00:00:00Z', [observation('o1', HR, 80, '/min', '2026-03-15T05:00:00Z')]))};
try {
  mapToPatientInput(gatherResources(body), { manifest, predictionTime: new Date(${JSON.stringify(AT.toISOString())}) });
  console.log('mapped');
} catch (error) {
  console.log('refused', error.statusCode);
}
`,
      );
      const child = spawnSync(process.execPath, ['--max-old-space-size=64', '--import', 'tsx', script], {
        cwd: ROOT,
        encoding: 'utf8',
      });
      assert.equal(child.status, 0, child.stderr.slice(-2000));
      assert.equal(child.stdout.trim(), 'refused 422');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('without an Encounter, observations more than 366 days apart are refused naming both times', async () => {
    const manifest = await loadTinyManifest();
    const gathered = gatherResources(
      bundle(undefined, [
        observation('late', HR, 90, '/min', '2026-03-15T05:00:00Z'),
        observation('early', HR, 80, '/min', '2025-03-01T05:00:00Z'),
      ]),
    );
    const error = refusal(() => mapToPatientInput(gathered, { manifest, predictionTime: AT }));
    assert.equal(error.statusCode, 422);
    assert.deepEqual(error.issues[0]?.expression, [
      'Bundle.entry[2].resource.effectiveDateTime',
      'Bundle.entry[1].resource.effectiveDateTime',
    ]);
  });

  test('the longest stay read, 8,784 hours, is mapped; one minute more is refused', async () => {
    const manifest = await loadTinyManifest();
    const start = '2025-01-01T00:00:00Z';
    // 2025 has 365 days: 2026-01-01T23:59Z is in hour 8783 (row 8784), 2026-01-02T00:00Z in hour 8784.
    const last = mapToPatientInput(
      gatherResources(bundle(start, [observation('o1', HR, 80, '/min', '2026-01-01T23:59:00Z')])),
      { manifest, predictionTime: AT },
    );
    assert.equal(last.stay.patient.hoursReceived, 8784);
    assert.deepEqual(last.stay.raw().hours.at(-1), { HR: 80 });
    const error = refusal(() =>
      mapToPatientInput(gatherResources(bundle(start, [observation('o1', HR, 80, '/min', '2026-01-02T00:00:00Z')])), {
        manifest,
        predictionTime: AT,
      }),
    );
    assert.equal(error.statusCode, 422);
  });

  test('over HTTP the 0001-01-01 Bundle is a 422 OperationOutcome naming the Encounter period.start', async (t) => {
    const { app } = await buildTestApp(t);
    const res = await app.inject({
      method: 'POST',
      url: '/fhir/RiskAssessment/$predict',
      headers: { 'content-type': 'application/fhir+json' },
      payload: bundle('0001-01-01T00:00:00Z', [observation('o1', HR, 80, '/min', '2026-03-15T05:00:00Z')]),
    });
    assert.equal(res.statusCode, 422, res.body);
    const outcome = res.json() as {
      resourceType: string;
      issue: Array<{ expression?: string[]; diagnostics?: string }>;
    };
    assert.equal(outcome.resourceType, 'OperationOutcome');
    assert.ok(
      outcome.issue.some((i) => i.expression?.includes('Bundle.entry[1].resource.period.start')),
      res.body,
    );
  });
});
