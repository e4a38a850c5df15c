import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import { coverage, inputProfile } from '../../src/clinical/input-profile.js';
import { type Manifest, manifestSchema } from '../../src/model/manifest.js';
import { loadTinyManifest, ROOT } from '../helper.js';

/**
 * Coverage rules of 1.6.0 (manifest `scenarios[].coverage`, training/experiments/profile_coverage.py), used
 * below to work out each expected profile by hand: vitals >= 4 of its 8 variables over >= 46 h;
 * vitals-routine-labs >= 14 of 26 over >= 47 h; first-6h >= 8 of 37 over >= 5 h; first-12h >= 10
 * over >= 11 h; first-24h >= 18 over >= 23 h; full >= 18 over >= 47 h. Held-out AUROCs 0.792,
 * 0.828, 0.807, 0.824, 0.839, 0.863.
 */

const load = async (version: string): Promise<Manifest> =>
  manifestSchema.parse(
    JSON.parse(await readFile(join(ROOT, 'models', 'icu-mortality', version, 'manifest.json'), 'utf8')),
  );

let manifest: Manifest;
before(async () => {
  manifest = await load('1.6.0');
});

/** A stay as the model reads it: `rows[h]` maps variable names to values, anything else missing. */
function stay(m: Manifest, rows: Array<Record<string, number>>): { values: Float64Array; hoursUsed: number } {
  const names = m.variables.map((v) => v.name);
  const values = new Float64Array(rows.length * names.length).fill(Number.NaN);
  rows.forEach((row, h) => {
    for (const [name, value] of Object.entries(row)) values[h * names.length + names.indexOf(name)] = value;
  });
  return { values, hoursUsed: rows.length };
}

const hours = (n: number, row: (h: number) => Record<string, number>): Array<Record<string, number>> =>
  Array.from({ length: n }, (_, h) => row(h));
const MONITOR = { HR: 90, NIMAP: 70, RespRate: 20, Temp: 37.2, SaO2: 96 };
const LABS = { Na: 139, K: 4.1, BUN: 20, Creatinine: 1.1, Glucose: 120, HCO3: 24, HCT: 33, Platelets: 210, WBC: 9 };

describe('input profile coverage', () => {
  test('a single heart-rate value is sparse, not vitals 0.792 (the newcomer case)', () => {
    // 1 variable over 1 hour: every profile asks for 4 or more variables.
    const s = stay(manifest, [{ HR: 88 }]);
    assert.deepEqual(inputProfile(manifest, s), {
      scenario: 'sparse',
      label: 'inputs sparser than every validated profile (fewer variables or hours)',
      heldOutAuroc: null,
    });
  });

  test('two hours of vitals and GCS are sparse, not first-6h 0.807 (the newcomer case)', () => {
    // 6 variables over 2 hours: first-6h needs 8 over 5 hours, the vitals 46 hours.
    const s = stay(
      manifest,
      hours(2, () => ({ ...MONITOR, GCS: 9 })),
    );
    assert.deepEqual(coverage(manifest, s, scenario('first-6h')), { variables: 6, hours: 2 });
    assert.equal(inputProfile(manifest, s)?.scenario, 'sparse');
  });

  test('48 hours of four monitor vitals are vitals 0.792', () => {
    const s = stay(
      manifest,
      hours(48, (h) => ({ HR: 90 + (h % 5), NIMAP: 70, RespRate: 20, Temp: 37 })),
    );
    assert.deepEqual(coverage(manifest, s, scenario('vitals')), { variables: 4, hours: 48 });
    assert.deepEqual(inputProfile(manifest, s), {
      scenario: 'vitals',
      label: scenario('vitals').label,
      heldOutAuroc: 0.792,
    });
    // Three of them are not: 3 < 4.
    const three = stay(
      manifest,
      hours(48, () => ({ HR: 90, NIMAP: 70, RespRate: 20 })),
    );
    assert.equal(inputProfile(manifest, three)?.scenario, 'sparse');
  });

  test('vitals for 45 hours are short of the 46 hours the vitals profile asks for', () => {
    // Values on hours 2 to 46: 45 hours of a 48-hour stay, first to last row observed.
    const s = stay(
      manifest,
      hours(48, (h) => (h >= 2 && h <= 46 ? MONITOR : {})),
    );
    assert.deepEqual(coverage(manifest, s, scenario('vitals')), { variables: 5, hours: 45 });
    assert.equal(inputProfile(manifest, s)?.scenario, 'sparse');
    // GCS is outside the vitals profile: it neither counts nor stretches its hours; the full record's it does.
    s.values[manifest.variables.findIndex((v) => v.name === 'GCS')] = 15;
    assert.deepEqual(coverage(manifest, s, scenario('vitals')), { variables: 5, hours: 45 });
    assert.deepEqual(coverage(manifest, s, scenario('full')), { variables: 6, hours: 47 });
  });

  test('eight variables over the first 6 hours are first-6h, and the best of what a stay covers wins', () => {
    // 8 variables over rows 1-5: 5 hours. vitals: 5 of 8 over 5 h, too short.
    const six = stay(
      manifest,
      hours(6, (h) => (h === 0 ? {} : { ...MONITOR, GCS: 10, PaO2: 90, Lactate: 2 })),
    );
    assert.deepEqual(coverage(manifest, six, scenario('first-6h')), { variables: 8, hours: 5 });
    assert.equal(inputProfile(manifest, six)?.heldOutAuroc, 0.807);
    // Monitor vitals all 48 hours and 9 routine labs at hour 3: vitals-routine-labs has 14 of 26 over
    // 48 h (0.828); first-6h and first-12h also (14 variables; 6 and 12 h), first-24h and full not (14 < 18).
    const labs = stay(
      manifest,
      hours(48, (h) => (h === 3 ? { ...MONITOR, ...LABS } : MONITOR)),
    );
    assert.deepEqual(coverage(manifest, labs, scenario('vitals-routine-labs')), { variables: 14, hours: 48 });
    assert.deepEqual(coverage(manifest, labs, scenario('first-12h')), { variables: 14, hours: 12 });
    assert.equal(inputProfile(manifest, labs)?.scenario, 'vitals-routine-labs');
    assert.equal(inputProfile(manifest, labs)?.heldOutAuroc, 0.828);
    // Four more (GCS, PaO2, PaCO2, pH) at hour 3 make 18 variables over 48 h: full, 0.863.
    const full = stay(
      manifest,
      hours(48, (h) => (h === 3 ? { ...MONITOR, ...LABS, GCS: 14, PaO2: 90, PaCO2: 40, pH: 7.4 } : MONITOR)),
    );
    assert.deepEqual(inputProfile(manifest, full)?.heldOutAuroc, 0.863);
  });

  test('a rich stay of two hours is sparse: a short window is not a full record of the first 6 hours', () => {
    const s = stay(
      manifest,
      hours(2, () => ({ ...MONITOR, ...LABS, GCS: 14, PaO2: 90 })),
    );
    assert.deepEqual(coverage(manifest, s, scenario('first-6h')), { variables: 16, hours: 2 });
    assert.equal(inputProfile(manifest, s)?.scenario, 'sparse');
  });

  test('an unevaluated model names the broadest profile covered; a model without coverage names none', async () => {
    const tiny = await loadTinyManifest();
    const withCoverage: Manifest = {
      ...tiny,
      scenarios: tiny.scenarios?.map((s, i) => ({ ...s, coverage: manifest.scenarios?.[i]?.coverage })),
    };
    const labs = stay(
      tiny,
      hours(48, (h) => (h === 3 ? { ...MONITOR, ...LABS } : MONITOR)),
    );
    // Covered: vitals, vitals-routine-labs, first-6h, first-12h; the last of these in the list.
    assert.deepEqual(inputProfile(withCoverage, labs), {
      scenario: 'first-12h',
      label: 'the full record of the first 12 hours',
      heldOutAuroc: null,
    });
    assert.equal(inputProfile(tiny, labs), undefined);
    assert.equal(inputProfile(await load('1.5.0'), labs), undefined);
  });

  test('removing observations from a stay never raises the claimed held-out AUROC', () => {
    const width = manifest.variables.length;
    const claimed = (s: { values: Float64Array; hoursUsed: number }): number =>
      inputProfile(manifest, s)?.heldOutAuroc ?? 0;
    // A stay: each variable of a pool (all, or one profile's) charted each hour with its own chance,
    // so that dense and sparse stays of every profile occur; then thinned: each variable removed with
    // chance `dropVariable`, each remaining observation with chance `drop`.
    const pools = [null, scenario('vitals').variables, scenario('vitals-routine-labs').variables];
    const stays = fc
      .record({
        hoursUsed: fc.oneof(fc.integer({ min: 1, max: 48 }), fc.constant(48)),
        pool: fc.constantFrom(...pools),
        density: fc.array(fc.constantFrom(0, 0.05, 0.3, 0.9), { minLength: width, maxLength: width }),
        seed: fc.integer(),
        drop: fc.double({ min: 0, max: 1, noNaN: true }),
        dropVariable: fc.constantFrom(0, 0.2, 0.5),
      })
      .map(({ hoursUsed, pool, density, seed, drop, dropVariable }) => {
        const random = mulberry32(seed);
        const values = new Float64Array(hoursUsed * width).fill(Number.NaN);
        for (let i = 0; i < values.length; i++) {
          const v = manifest.variables[i % width]?.name ?? '';
          if ((pool === null || pool.includes(v)) && random() < (density[i % width] as number)) values[i] = 1;
        }
        const gone = manifest.variables.map(() => random() < dropVariable);
        const thinned = values.map((v, i) => (gone[i % width] === true || random() < drop ? Number.NaN : v));
        return { whole: { values, hoursUsed }, thinned: { values: thinned, hoursUsed } };
      });
    fc.assert(
      fc.property(stays, ({ whole, thinned }) => claimed(thinned) <= claimed(whole)),
      { numRuns: 2000, seed: 20261206 },
    );
    // The stays generated reach every profile, so the property is not met by calling everything sparse.
    const named = new Set(
      fc.sample(stays, { seed: 20261206, numRuns: 2000 }).map(({ whole }) => inputProfile(manifest, whole)?.scenario),
    );
    assert.deepEqual([...named].sort(), [...(manifest.scenarios ?? []).map((s) => s.name), 'sparse'].sort());
  });
});

function scenario(name: string): NonNullable<Manifest['scenarios']>[number] {
  const s = manifest.scenarios?.find((x) => x.name === name);
  assert.ok(s, name);
  return s;
}

/** A small seeded generator (Tommy Ettinger's Mulberry32), so each generated stay is one integer seed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
