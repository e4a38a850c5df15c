import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { runScore } from '../../src/cli/score.js';
import { topContributionsText, trendText } from '../../src/fhir/explain-text.js';
import { buildTestApp, makeModelRoot, ROOT, samplePatient, postFhirPredict } from '../helper.js';
import { entry, LOINC, observation, type Json } from '../fixtures/fhir/physionet-to-fhir.js';
import { r4Errors } from '../fhir/r4-schema.js';

/**
 * Explanations are checked against independent calls: every trajectory point against the stay
 * cut after that hour and scored alone, every contribution against the stay with that variable
 * deleted from the request by hand and scored alone.
 */

type Patient = Record<string, unknown> & { hours: Array<Record<string, number | null>> };
interface Explained {
  id?: string;
  probability: number;
  hoursUsed: number;
  trajectory: Array<{ hour: number; probability: number }>;
  contributions: Array<{ variable: string; effect: number }>;
}

const DESCRIPTORS = ['age', 'sex', 'icuType', 'height'];

function patientWith(seed: number, hours: number): Patient {
  return { ...samplePatient(hours, seed, `p${seed}`), height: 170, weight: 82 } as unknown as Patient;
}

/** The variables present, read from the request itself: row keys with a value, descriptors given, weight as Weight. */
function presentIn(p: Patient): string[] {
  const names = new Set<string>();
  for (const row of p.hours) for (const [k, v] of Object.entries(row)) if (v !== null && v !== undefined) names.add(k);
  if (p.weight !== undefined && p.weight !== null) names.add('Weight');
  for (const d of DESCRIPTORS) if (p[d] !== undefined && p[d] !== null) names.add(d);
  return [...names].sort();
}

/** The request's patient without `variable`, written independently of the service's code. */
function without(p: Patient, variable: string): Patient {
  const copy = structuredClone(p);
  if (DESCRIPTORS.includes(variable)) delete copy[variable];
  else {
    for (const row of copy.hours) delete row[variable];
    if (variable === 'Weight') delete copy.weight;
  }
  return copy;
}

async function predict(app: FastifyInstance, patients: unknown[], explain = false): Promise<Explained[]> {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/predict',
    payload: { patients, ...(explain ? { explain: true } : {}) },
  });
  assert.equal(res.statusCode, 200, res.body);
  return (res.json() as { results: Explained[] }).results;
}

describe('explain', () => {
  test('trajectory points equal the prefixes scored alone; contributions equal the removals scored alone', async (t) => {
    const { app } = await buildTestApp(t);
    const patients = [patientWith(11, 9), patientWith(12, 1), patientWith(13, 30)];
    const explained = await predict(app, patients, true);
    for (const [i, p] of patients.entries()) {
      const r = explained[i] as Explained;
      assert.equal(r.trajectory.length, p.hours.length);
      assert.deepEqual(
        r.trajectory.map((q) => q.hour),
        p.hours.map((_, h) => h + 1),
      );
      assert.equal(r.trajectory.at(-1)?.probability, r.probability);
      const prefixes = await predict(
        app,
        p.hours.map((_, h) => ({ ...p, hours: p.hours.slice(0, h + 1) })),
      );
      prefixes.forEach((alone, h) =>
        assert.ok(
          Math.abs((r.trajectory[h]?.probability as number) - alone.probability) <= 1e-5,
          `${p.id} hour ${h + 1}`,
        ),
      );

      const present = presentIn(p);
      assert.deepEqual(r.contributions.map((c) => c.variable).sort(), present);
      const removed = await predict(
        app,
        present.map((v) => without(p, v)),
      );
      present.forEach((variable, k) => {
        const effect = r.contributions.find((c) => c.variable === variable)?.effect as number;
        assert.ok(
          Math.abs(effect - (r.probability - (removed[k] as Explained).probability)) <= 1e-5,
          `${p.id} ${variable}`,
        );
      });
      const sizes = r.contributions.map((c) => Math.abs(c.effect));
      assert.deepEqual(
        sizes,
        [...sizes].sort((a, b) => b - a),
      );
    }
    // Without explain the answer is as before.
    const plain = await predict(app, patients);
    assert.equal(plain[0]?.trajectory, undefined);
    assert.equal(plain[0]?.probability, explained[0]?.probability);
  });

  test('a stay over maxHours: the trajectory covers the 48 hours used', async (t) => {
    const { app } = await buildTestApp(t);
    // Without the static weight: it counts as an hour-0 observation only when no hour is cut.
    const { weight: _weight, ...long } = patientWith(21, 60);
    const [r] = await predict(app, [long], true);
    assert.equal(r?.trajectory.length, 48);
    const [first] = await predict(app, [{ ...long, hours: long.hours.slice(12, 13) }]);
    assert.ok(Math.abs((r?.trajectory[0]?.probability as number) - (first?.probability as number)) <= 1e-5);
  });

  test('explain must be a boolean, and explained requests are limited in patients', async (t) => {
    const { app } = await buildTestApp(t, { env: { MAX_EXPLAINED_PATIENTS: '2' } });
    const bad = await app.inject({
      method: 'POST',
      url: '/v1/predict',
      payload: { patients: [patientWith(1, 2)], explain: 'yes' },
    });
    assert.equal(bad.statusCode, 400);
    assert.ok(
      (bad.json() as { details: Array<{ path: string }> }).details.some((d) => d.path === 'explain'),
      bad.body,
    );
    const many = await app.inject({
      method: 'POST',
      url: '/v1/predict',
      payload: { patients: [1, 2, 3].map((s) => patientWith(s, 2)), explain: true },
    });
    assert.equal(many.statusCode, 400);
    const detail = (many.json() as { details: Array<{ path: string; message: string }> }).details.find(
      (d) => d.path === 'patients',
    );
    assert.match(detail?.message ?? '', /with explain, at most 2 patients/);
    const plain = await app.inject({
      method: 'POST',
      url: '/v1/predict',
      payload: { patients: [1, 2, 3].map((s) => patientWith(s, 2)), explain: false },
    });
    assert.equal(plain.statusCode, 200);
  });

  test('the stream and the CLI give the same explanations as POST /v1/predict', async (t) => {
    const modelRoot = await makeModelRoot(t);
    const { app } = await buildTestApp(t, { modelRoot });
    const patients = [patientWith(31, 5), patientWith(32, 14)];
    const api = await predict(app, patients, true);
    const stream = await app.inject({
      method: 'POST',
      url: '/v1/predict/stream?explain=true',
      headers: { 'content-type': 'application/x-ndjson' },
      payload: patients.map((p) => JSON.stringify(p)).join('\n'),
    });
    assert.equal(stream.statusCode, 200);
    const lines = stream.body
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Explained);
    const dir = await mkdtemp(join(tmpdir(), 'explain-cli-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'in.ndjson'), patients.map((p) => JSON.stringify(p)).join('\n'));
    const common = {
      format: 'ndjson' as const,
      input: join(dir, 'in.ndjson'),
      quiet: true,
      modelDir: join(modelRoot, 'icu-mortality'),
      threads: 1,
      explain: true,
    };
    await runScore({ ...common, output: join(dir, 'out.ndjson') });
    const cli = (await readFile(join(dir, 'out.ndjson'), 'utf8'))
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Explained);
    for (const [i, expected] of api.entries()) {
      for (const other of [lines[i], cli[i]]) {
        assert.deepEqual(
          other?.contributions.map((c) => c.variable),
          expected.contributions.map((c) => c.variable),
        );
        other?.trajectory.forEach((q, h) =>
          assert.ok(Math.abs(q.probability - (expected.trajectory[h]?.probability as number)) <= 1e-6),
        );
      }
    }
    await assert.rejects(runScore({ ...common, output: join(dir, 'out.csv') }), /--explain needs NDJSON output/);
  });

  test('the trend and the top contributions in words, from values computed by hand', () => {
    const trajectory = [0.05, 0.08, 0.12, 0.15, 0.2, 0.25, 0.3, 0.34].map((probability, i) => ({
      hour: i + 1,
      probability,
    }));
    assert.equal(trendText(trajectory), 'Risk rising: 8% 6 hours ago, 34% now.');
    assert.equal(trendText(trajectory.slice(0, 3)), 'Risk rising: 5% 2 hours ago, 12% now.');
    assert.equal(
      trendText([
        { hour: 1, probability: 0.3 },
        { hour: 2, probability: 0.305 },
      ]),
      'Risk stable: 30% 1 hour ago, 31% now.',
    );
    assert.equal(trendText(trajectory.slice(0, 1)), undefined);
    const contributions = [
      { variable: 'Lactate', effect: 0.0912 },
      { variable: 'GCS', effect: 0.061 },
      { variable: 'MAP', effect: -0.004 },
      { variable: 'HR', effect: 0.001 },
    ];
    assert.equal(topContributionsText(contributions), 'Lactate +9 points, GCS +6, MAP −0.4');
  });

  test('FHIR: the RiskAssessment carries the trajectory and contributions; the CDS card says the trend and the top three', async (t) => {
    const now = new Date('2026-03-15T06:30:00Z');
    const { app } = await buildTestApp(t, { deps: { now: () => now } });
    const vital = (id: string, code: string, value: number, unit: string, at: string): Json =>
      ({
        ...observation(id, [{ system: LOINC, code }], value, unit, at, 'vital-signs'),
        subject: { reference: 'Patient/p1' },
      }) as Json;
    const patient = { resourceType: 'Patient', id: 'p1', birthDate: '1950-05-05', gender: 'male' };
    const observations = [
      vital('o1', '8867-4', 92, '/min', '2026-03-15T01:00:00Z'),
      vital('o2', '9279-1', 22, '/min', '2026-03-15T02:00:00Z'),
      vital('o3', '8867-4', 118, '/min', '2026-03-15T04:00:00Z'),
      vital('o4', '8310-5', 38.9, 'Cel', '2026-03-15T05:00:00Z'),
    ];
    const bundle = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [patient, ...observations].map((r) => entry(r)),
    };
    const res = await postFhirPredict(app, bundle);
    assert.equal(res.statusCode, 200, res.body);
    type Ext = { url: string; extension?: Ext[]; valueInteger?: number; valueDecimal?: number; valueString?: string };
    const ra = res.json() as {
      extension: Ext[];
      note: Array<{ text: string }>;
      prediction: Array<{ probabilityDecimal: number }>;
    };
    assert.deepEqual(r4Errors(ra), []);
    const points = ra.extension.find((e) => e.url.endsWith(':trajectory'))?.extension ?? [];
    const hours = points.map((p) => p.extension?.find((e) => e.url === 'hour')?.valueInteger);
    assert.deepEqual(
      hours,
      hours.map((_, i) => i + 1),
    );
    assert.ok(points.length >= 4);
    assert.equal(
      points.at(-1)?.extension?.find((e) => e.url === 'probability')?.valueDecimal,
      ra.prediction[0]?.probabilityDecimal,
    );
    const variables = (ra.extension.find((e) => e.url.endsWith(':contributions'))?.extension ?? []).map(
      (c) => c.extension?.find((e) => e.url === 'variable')?.valueString,
    );
    assert.deepEqual([...variables].sort(), ['HR', 'RespRate', 'Temp', 'age', 'sex']);
    assert.ok(
      ra.note.some((n) => /^Largest contributions: \S+ [+−][\d.]+ points, /.test(n.text)),
      JSON.stringify(ra.note),
    );
    assert.ok(
      ra.note.some((n) => /^Risk (rising|falling|stable): \S+ \d+ hours ago, \S+ now\.$/.test(n.text)),
      JSON.stringify(ra.note),
    );

    const hook = {
      hook: 'patient-view',
      hookInstance: 'd1577c69-dfbe-44ad-ba6d-3e05e953b2ea',
      context: { patientId: 'p1' },
      prefetch: {
        patient,
        vitals: { resourceType: 'Bundle', type: 'searchset', entry: observations.map((resource) => ({ resource })) },
        labs: { resourceType: 'Bundle', type: 'searchset', entry: [] },
      },
    };
    const card = await app.inject({ method: 'POST', url: '/cds-services/icu-mortality', payload: hook });
    assert.equal(card.statusCode, 200, card.body);
    const detail = (card.json() as { cards: Array<{ detail: string }> }).cards[0]?.detail ?? '';
    assert.match(detail, /Risk (rising|falling|stable): \S+ \d+ hours? ago, \S+ now\./);
    assert.match(detail, /Largest contributions: \S+ [+−][\d.]+ points, \S+ [+−][\d.]+, \S+ [+−][\d.]+ \(/);
  });

  // A monitor feed without respiratory rate: leaving out a charted RR reads as "not charted", which in
  // this data goes with ventilation (a risk in itself), so its removal moves the risk a lot.
  test('the shipped model puts deteriorating lactate and GCS on top of a stay whose other vitals stay normal', async (t) => {
    const modelRoot = await makeModelRoot(t, { '1.6.0': { from: join(ROOT, 'models', 'icu-mortality', '1.6.0') } });
    const { app } = await buildTestApp(t, { modelRoot });
    const hours = Array.from({ length: 24 }, (_, h) => ({
      HR: 84 + (h % 3),
      MAP: 82,
      Temp: 37,
      SaO2: 97,
      ...(h % 4 === 0 ? { Lactate: 1.2 + h * 0.35, GCS: Math.max(4, 15 - Math.floor(h / 2)) } : {}),
    }));
    const [r] = await predict(app, [{ id: 'worsening', age: 62, sex: 'female', icuType: 3, hours }], true);
    const top = r?.contributions
      .slice(0, 2)
      .map((c) => c.variable)
      .sort();
    assert.deepEqual(top, ['GCS', 'Lactate'], JSON.stringify(r?.contributions));
    assert.ok((r?.trajectory.at(-1)?.probability as number) > (r?.trajectory[0]?.probability as number));
  });
});
