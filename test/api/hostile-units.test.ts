import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { buildTestApp, loadTinyManifest, ROOT, samplePatient, postFhirPredict } from '../helper.js';
import { recordToBundle, type Json } from '../fixtures/fhir/physionet-to-fhir.js';
import {
  FORGED_MARKER,
  FORGING_UNIT,
  HUGE_UNIT,
  LIBRARY_MARKER,
  recordStdout,
  THROWING_UNIT,
} from '../fixtures/hostile-units.js';

/**
 * Hostile UCUM unit strings (issue 27, findings 1 and 2) on every path that reads units: refused
 * before the UCUM library parses them, with the field and the problem named, and nothing the library
 * prints reaches stdout (the JSON log stream) or the app's log.
 */

const ADMISSION = new Date('2026-03-13T06:30:00Z');
const NOW = new Date('2026-03-15T06:30:00Z');
const TOO_LONG = 'unit string longer than 64 characters';
const NOT_PRINTABLE = "unit string has characters outside UCUM's printable set (ASCII 33 to 126, no spaces)";

async function app(t: TestContext) {
  return buildTestApp(t, { deps: { now: () => NOW } });
}

function patientWithTempUnit(unit: string, id = 'p'): Record<string, unknown> {
  return { ...samplePatient(3, 7, id), units: { Temp: unit } };
}

function assertClean(stdout: string, logs: string, response: string): void {
  for (const marker of [LIBRARY_MARKER, FORGED_MARKER]) {
    assert.ok(!stdout.includes(marker), `stdout holds "${marker}"`);
    assert.ok(!logs.includes(marker), `the app's log holds "${marker}"`);
  }
  assert.ok(!response.includes(FORGED_MARKER), 'the answer does not echo the hostile unit');
}

describe('hostile unit strings through /v1/predict', () => {
  test('a 32,000-character unit is refused with a 400 naming units.Temp and the length', async (t) => {
    const { app: a, logs } = await app(t);
    const out = recordStdout();
    const res = await a
      .inject({ method: 'POST', url: '/v1/predict', payload: { patients: [patientWithTempUnit(HUGE_UNIT)] } })
      .finally(out.stop);
    assert.equal(res.statusCode, 400, res.body);
    const body = res.json() as { details: Array<{ path: string; message: string }> };
    assert.deepEqual(body.details, [{ path: 'patients.0.units.Temp', message: TOO_LONG }]);
    assertClean(out.text(), logs.text(), res.body);
  });

  test('a unit with line breaks and a forged log line is refused for its characters, and nothing is printed', async (t) => {
    const { app: a, logs } = await app(t);
    const out = recordStdout();
    const res = await a
      .inject({
        method: 'POST',
        url: '/v1/predict',
        payload: { patients: [patientWithTempUnit(FORGING_UNIT.slice(0, 60)), patientWithTempUnit(FORGING_UNIT)] },
      })
      .finally(out.stop);
    assert.equal(res.statusCode, 400, res.body);
    const body = res.json() as { details: Array<{ path: string; message: string }> };
    assert.deepEqual(body.details, [
      { path: 'patients.0.units.Temp', message: NOT_PRINTABLE },
      { path: 'patients.1.units.Temp', message: TOO_LONG },
    ]);
    assertClean(out.text(), logs.text(), res.body);
  });

  test('a well-formed unit on which the library throws is refused, and what it prints does not reach stdout', async (t) => {
    const { app: a, logs } = await app(t);
    const out = recordStdout();
    const res = await a
      .inject({ method: 'POST', url: '/v1/predict', payload: { patients: [patientWithTempUnit(THROWING_UNIT)] } })
      .finally(out.stop);
    assert.equal(res.statusCode, 400, res.body);
    const body = res.json() as { details: Array<{ path: string; message: string }> };
    assert.equal(body.details.length, 1);
    assert.equal(body.details[0]?.path, 'patients.0.units.Temp');
    assert.match(body.details[0]?.message ?? '', /^unit not accepted for Temp: not a UCUM unit convertible to Cel/);
    assertClean(out.text(), logs.text(), res.body);
  });
});

test('the NDJSON stream answers each hostile line with an error naming units.Temp, the others with results', async (t) => {
  const { app: a, logs } = await app(t);
  const lines = [
    patientWithTempUnit('{}'.repeat(100), 'long'),
    patientWithTempUnit(FORGING_UNIT, 'forging'),
    patientWithTempUnit(THROWING_UNIT, 'throwing'),
    samplePatient(3, 8, 'fine'),
  ];
  const out = recordStdout();
  const res = await a
    .inject({
      method: 'POST',
      url: '/v1/predict/stream',
      headers: { 'content-type': 'application/x-ndjson' },
      payload: lines.map((l) => JSON.stringify(l)).join('\n'),
    })
    .finally(out.stop);
  assert.equal(res.statusCode, 200);
  const answers = res.body
    .trim()
    .split('\n')
    .map(
      (l) =>
        JSON.parse(l) as {
          line?: number;
          probability?: number;
          error?: { details: Array<{ path: string; message: string }> };
        },
    )
    .filter((l) => l.line !== undefined);
  assert.deepEqual(
    answers.slice(0, 3).map((l) => l.error?.details.map((d) => [d.path, d.message.split(':')[0]])),
    [[['units.Temp', TOO_LONG]], [['units.Temp', TOO_LONG]], [['units.Temp', 'unit not accepted for Temp']]],
  );
  assert.equal(typeof answers[3]?.probability, 'number');
  assertClean(out.text(), logs.text(), res.body);
});

/** stay-c as FHIR resources, the first temperature Observation's UCUM code replaced by `code`. */
async function stayWithTempCode(code: string): Promise<{ resources: Json[]; tempIndex: number }> {
  const manifest = await loadTinyManifest();
  const text = await readFile(join(ROOT, 'test', 'fixtures', 'fhir', 'records', 'stay-c.txt'), 'utf8');
  const bundle = recordToBundle(text, manifest, { admission: ADMISSION, predictionTime: NOW }) as {
    entry: Array<{ resource: Json }>;
  };
  const resources = bundle.entry.map((e) => e.resource);
  const tempIndex = resources.findIndex(
    (r) => r.resourceType === 'Observation' && (r.valueQuantity as { code?: string } | undefined)?.code === 'Cel',
  );
  assert.ok(tempIndex >= 0, 'stay-c has a temperature');
  const quantity = resources[tempIndex]!.valueQuantity as Json;
  resources[tempIndex]!.valueQuantity = { ...quantity, unit: 'x', code };
  return { resources, tempIndex };
}

describe('hostile UCUM codes in FHIR', () => {
  for (const [name, code, problem] of [
    ['a 200-character code', '{}'.repeat(100), TOO_LONG],
    ['a code that forges a log line', FORGING_UNIT, TOO_LONG],
    ['a code with a line break', 'mm\n[Hg]', NOT_PRINTABLE],
    ['a code on which the library throws', THROWING_UNIT, undefined],
  ] as const) {
    test(`$predict: ${name} is a warning on valueQuantity.code, and nothing is printed`, async (t) => {
      const { app: a, logs } = await app(t);
      const { resources, tempIndex } = await stayWithTempCode(code);
      const out = recordStdout();
      const res = await postFhirPredict(a, {
        resourceType: 'Bundle',
        type: 'collection',
        entry: resources.map((resource) => ({ resource })),
      }).finally(out.stop);
      assert.equal(res.statusCode, 200, res.body);
      const ra = res.json() as { contained?: Array<{ issue: Array<{ diagnostics: string; expression?: string[] }> }> };
      const issues = ra.contained?.flatMap((c) => c.issue) ?? [];
      const issue = issues.find((i) =>
        i.expression?.includes(`Bundle.entry[${tempIndex}].resource.valueQuantity.code`),
      );
      assert.ok(issue, JSON.stringify(issues));
      if (problem !== undefined) assert.equal(issue.diagnostics, `Temp not used: valueQuantity.code: ${problem}`);
      else assert.match(issue.diagnostics, /^Temp not used: unit "m\{a\}\(K\)" cannot be converted to Cel/);
      assertClean(out.text(), logs.text(), res.body);
    });
  }

  test('CDS prefetch: a hostile code in the vitals is counted as unusable input and never printed', async (t) => {
    const { app: a, logs } = await app(t);
    const { resources } = await stayWithTempCode(FORGING_UNIT);
    const searchset = (list: Json[]): Json => ({
      resourceType: 'Bundle',
      type: 'searchset',
      entry: list.map((resource) => ({
        fullUrl: `https://ehr.example.org/fhir/${String(resource.resourceType)}/${String(resource.id)}`,
        resource,
        search: { mode: 'match' },
      })),
    });
    const out = recordStdout();
    const res = await a
      .inject({
        method: 'POST',
        url: '/cds-services/icu-mortality',
        payload: {
          hook: 'patient-view',
          hookInstance: 'd1577c69-dfbe-44ad-ba6d-3e05e953b2ea',
          context: { userId: 'Practitioner/123', patientId: 'p1' },
          prefetch: {
            patient: resources.find((r) => r.resourceType === 'Patient'),
            vitals: searchset(resources.filter((r) => r.resourceType === 'Observation')),
            labs: searchset([]),
          },
        },
      })
      .finally(out.stop);
    assert.equal(res.statusCode, 200, res.body);
    const { cards } = res.json() as { cards: Array<{ detail: string }> };
    assert.equal(cards.length, 1);
    assert.match(
      cards[0]?.detail ?? '',
      /About the data:\n(- .*\n)*- Temp not used: valueQuantity\.code: unit string longer than 64 characters\n/,
    );
    assertClean(out.text(), logs.text(), res.body);
  });
});
