import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { buildTestApp, loadTinyManifest, ROOT, postFhirPredict } from '../helper.js';
import { entry, LOINC, observation, recordToBundle, type Json } from '../fixtures/fhir/physionet-to-fhir.js';

/**
 * `$predict` over HTTP: Observations of other subjects change nothing in the probability and are
 * reported in the RiskAssessment's OperationOutcome; the generic mean pressure reads as what
 * the answer says it is.
 */

const ADMISSION = new Date('2026-03-13T06:30:00Z');
const NOW = new Date('2026-03-15T06:30:00Z');

interface RiskAssessmentBody {
  prediction: Array<{ probabilityDecimal: number }>;
  note: Array<{ text: string }>;
  contained?: Array<{ issue: Array<{ severity: string; diagnostics: string; expression?: string[] }> }>;
}

async function predict(t: TestContext, bodies: Json[]) {
  const { app, logs } = await buildTestApp(t, { deps: { now: () => NOW } });
  const answers: RiskAssessmentBody[] = [];
  for (const body of bodies) {
    const res = await postFhirPredict(app, body);
    assert.equal(res.statusCode, 200, res.body);
    answers.push(res.json() as RiskAssessmentBody);
  }
  return { answers, logs };
}

describe('POST /fhir/RiskAssessment/$predict: whose data', () => {
  test("Observations of another server's Patient/p1, or of no subject, leave the probability as without them, and are reported", async (t) => {
    const manifest = await loadTinyManifest();
    const text = await readFile(join(ROOT, 'test', 'fixtures', 'fhir', 'records', 'stay-b.txt'), 'utf8');
    const clean = recordToBundle(text, manifest, { admission: ADMISSION, predictionTime: NOW }) as {
      entry: Json[];
    };
    // A minute before the prediction time: the last values of the last hour, were they used.
    const late = new Date(NOW.getTime() - 60_000).toISOString();
    const foreign = (id: string, code: string, value: number, unit: string, reference: string | undefined): Json => {
      const obs = observation(id, [{ system: LOINC, code }], value, unit, late, 'vital-signs');
      if (reference === undefined) delete obs.subject;
      else obs.subject = { reference };
      return entry(obs);
    };
    const mixed = {
      ...clean,
      entry: [
        ...clean.entry,
        foreign('x1', '8867-4', 175, '/min', 'http://other.example/fhir/Patient/p1'),
        foreign('x2', '9279-1', 38, '/min', 'http://other.example/fhir/Patient/p1'),
        foreign('x3', '2524-7', 9.5, 'mmol/L', 'http://other.example/fhir/Patient/p1'),
        foreign('x4', '8478-0', 45, 'mm[Hg]', undefined),
      ],
    };
    const { answers, logs } = await predict(t, [clean, mixed]);
    const [without, withForeign] = answers as [RiskAssessmentBody, RiskAssessmentBody];
    assert.equal(withForeign.prediction[0]?.probabilityDecimal, without.prediction[0]?.probabilityDecimal);
    const issues = withForeign.contained?.[0]?.issue ?? [];
    const n = clean.entry.length;
    const other = issues.find((i) => i.diagnostics.includes('subject is not the Patient in the request'));
    assert.equal(other?.severity, 'warning');
    assert.match(other?.diagnostics ?? '', /\(3 occurrences\)/);
    assert.deepEqual(
      other?.expression,
      [0, 1, 2].map((k) => `Bundle.entry[${n + k}].resource.subject`),
    );
    const none = issues.find((i) => i.diagnostics.includes('no subject.reference'));
    assert.deepEqual(none?.expression, [`Bundle.entry[${n + 3}].resource.subject`]);
    assert.ok(!logs.text().includes('other.example'), 'no references in the log');
  });
});

describe('POST /fhir/RiskAssessment/$predict: the generic mean pressure', () => {
  test('8478-0 alone is NIMAP: the answer says so and does not list MAP as not observed', async (t) => {
    const at = (h: number): string => new Date(NOW.getTime() - h * 3_600_000).toISOString();
    const body = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [
        entry({ resourceType: 'Patient', id: 'p1', birthDate: '1960-01-01', gender: 'female' }),
        ...[3, 2, 1].flatMap((h) => [
          entry(observation(`hr${h}`, [{ system: LOINC, code: '8867-4' }], 88, '/min', at(h), 'vital-signs')),
          entry(observation(`map${h}`, [{ system: LOINC, code: '8478-0' }], 72, 'mm[Hg]', at(h), 'vital-signs')),
        ]),
      ],
    };
    const { answers } = await predict(t, [body]);
    const ra = answers[0] as RiskAssessmentBody;
    const missing = ra.note.find((n) => n.text.startsWith('Not observed in the hours used:'))?.text ?? '';
    const listed = missing.replace(/^Not observed in the hours used: |\.$/g, '').split(', ');
    assert.ok(listed.includes('Albumin'), missing);
    assert.ok(!listed.includes('MAP') && !listed.includes('NIMAP'), missing);
    const readAs = ra.contained?.[0]?.issue.find((i) => i.diagnostics.startsWith('LOINC 8478-0 names no method'));
    assert.equal(readAs?.severity, 'information');
    assert.match(readAs?.diagnostics ?? '', /read as NIMAP, the non-invasive/);
  });
});
