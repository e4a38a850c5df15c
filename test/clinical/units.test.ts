import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, mock, test } from 'node:test';
import ucum from '@lhncbc/ucum-lhc';
import { patientInputSchema } from '../../src/clinical/schemas.js';
import { converterFor, unitConversion, unitStringProblem } from '../../src/clinical/units.js';
import { manifestSchema, type VariableSpec } from '../../src/model/manifest.js';
import { FORGING_UNIT, LIBRARY_MARKER, recordStdout, THROWING_UNIT } from '../fixtures/hostile-units.js';
import { loadTinyManifest, ROOT } from '../helper.js';

/**
 * Units EHRs send, converted by the UCUM library with the manifest's molar masses and charges,
 * against values computed here by hand: c [mg/dL] = c [umol/L] x M [g/mol] / 10,000;
 * c [mmol/L] = c [meq/L] / charge; 1 g/dL = 10 g/L; degF = degC x 9/5 + 32.
 */

// The fixture's variables are the shipped model's (training/spec.py).
const manifest = await loadTinyManifest();
const SHIPPED_MODELS = join(ROOT, 'models', 'icu-mortality');
const variable = (name: string): VariableSpec => {
  const v = manifest.variables.find((x) => x.name === name);
  if (!v) throw new Error(`no ${name} in the shipped manifest`);
  return v;
};
const convert = (name: string, unit: string, value: number): number => {
  const c = converterFor(variable(name), unit);
  assert.ok(c, `${unit} should convert for ${name}`);
  return c(value);
};
const close = (actual: number, expected: number, what: string): void =>
  assert.ok(Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected)), `${what}: ${actual} vs ${expected}`);

describe('unit conversion by molar mass, charge and commensurability', () => {
  test('SI laboratory units: creatinine, glucose, urea, bilirubin, albumin, cholesterol', () => {
    close(convert('Creatinine', 'umol/L', 88.4), (88.4 * 113.12) / 10_000, 'creatinine 88.4 umol/L');
    close(convert('Glucose', 'mmol/L', 5.5), (5.5 * 180.156) / 10, 'glucose 5.5 mmol/L');
    // Urea 10 mmol/L carries 2 x 14.0067 g of nitrogen per mole: BUN 28.0134 mg/dL.
    close(convert('BUN', 'mmol/L', 10), (10 * 28.0134) / 10, 'urea 10 mmol/L as BUN');
    close(convert('Bilirubin', 'umol/L', 17.1), (17.1 * 584.66) / 10_000, 'bilirubin 17.1 umol/L');
    close(convert('Albumin', 'g/L', 35), 3.5, 'albumin 35 g/L');
    close(convert('Cholesterol', 'mmol/L', 5), (5 * 386.65) / 10, 'cholesterol 5 mmol/L');
  });

  test('equivalents: monovalent ions 1:1, magnesium by its charge of 2', () => {
    close(convert('Na', 'meq/L', 140), 140, 'Na 140 meq/L');
    close(convert('K', 'meq/L', 4.2), 4.2, 'K 4.2 meq/L');
    close(convert('HCO3', 'meq/L', 24), 24, 'HCO3 24 meq/L');
    close(convert('Mg', 'meq/L', 1.6), ((1.6 / 2) * 24.305) / 10, 'Mg 1.6 meq/L');
    close(convert('Mg', 'mmol/L', 0.8), (0.8 * 24.305) / 10, 'Mg 0.8 mmol/L');
  });

  test('affine and commensurable units: temperature, pressure, fractions, weight, counts', () => {
    close(convert('Temp', '[degF]', 98.6), 37, 'Temp 98.6 degF');
    close(convert('Temp', 'K', 310.15), 37, 'Temp 310.15 K');
    // UCUM defines mm[Hg] as 133.3220 Pa (UCUM table 15, "m[Hg]" = 133.3220 kPa).
    close(convert('PaO2', 'kPa', 13.3), (13.3 * 1000) / 133.322, 'PaO2 13.3 kPa');
    close(convert('FiO2', '%', 40), 0.4, 'FiO2 40 %');
    close(convert('Weight', '[lb_av]', 154), 154 * 0.45359237, 'weight 154 lb');
    close(convert('Platelets', '10*9/L', 250), 250, 'platelets 250 x10^9/L');
    close(convert('HR', '{beats}/min', 80), 80, 'HR with an annotation');
  });

  test("the manifest's own conversions, by hand: lactate, temperature, weight, FiO2", () => {
    // Lactate (C3H6O3) 90.08 g/mol: c [mmol/L] = c [mg/dL] x 10 / 90.08.
    close(convert('Lactate', 'mg/dL', 18), (18 * 10) / 90.08, 'lactate 18 mg/dL');
    // degC = (degF - 32) x 5/9.
    close(convert('Temp', '[degF]', 212), 100, 'Temp 212 degF');
    close(convert('Temp', '[degF]', 32), 0, 'Temp 32 degF');
    // The international avoirdupois pound is 0.45359237 kg exactly (1959 agreement).
    close(convert('Weight', '[lb_av]', 100), 45.359237, 'weight 100 lb');
    close(convert('FiO2', '%', 21), 0.21, 'FiO2 21 %');
  });

  test('every alternative unit a manifest lists agrees with the UCUM library called directly', async () => {
    const library = ucum.UcumLhcUtils.getInstance();
    const shipped = await Promise.all(
      (await readdir(SHIPPED_MODELS)).map(async (version) =>
        manifestSchema.parse(JSON.parse(await readFile(join(SHIPPED_MODELS, version, 'manifest.json'), 'utf8'))),
      ),
    );
    let checked = 0;
    for (const m of [manifest, ...shipped]) {
      for (const v of m.variables) {
        const options = {
          ...(v.molarMass ? { molecularWeight: v.molarMass } : {}),
          ...(v.charge ? { charge: v.charge } : {}),
        };
        for (const alt of v.alternativeUnits) {
          const converter = converterFor(v, alt.unit);
          assert.ok(converter, `${v.name} ${alt.unit} converts`);
          for (const x of [0.5, 7, 120]) {
            const reference = library.convertUnitTo(alt.unit, x, v.unit, options);
            assert.equal(reference.status, 'succeeded', `UCUM converts ${alt.unit} to ${v.unit}`);
            close(converter(x), reference.toVal as number, `${m.version} ${v.name} ${x} ${alt.unit}`);
            checked++;
          }
        }
      }
    }
    assert.ok(checked >= 3 * 6 * (1 + shipped.length), `${checked} conversions checked`);
  });

  test('what cannot be converted is refused, not guessed', () => {
    assert.equal(converterFor(variable('Creatinine'), 'mmol/min'), undefined, 'not commensurable');
    assert.equal(converterFor(variable('Albumin'), 'umol/L'), undefined, 'no molar mass declared for albumin');
    assert.equal(converterFor(variable('HR'), 'mm[Hg]'), undefined);
    assert.equal(converterFor(variable('Na'), 'not a unit'), undefined);
  });
});

/** What the library does with an accepted unit, for a variable whose canonical unit is `unit`. */
const via = (unit: string, from: string, value: number): number => {
  const c = converterFor({ name: 'X', unit, alternativeUnits: [] }, from);
  assert.ok(c, `${from} should convert to ${unit}`);
  return c(value);
};

describe('unit strings are bounded before the UCUM library reads them', () => {
  test('units clinical systems send pass the checks and convert as computed by hand', () => {
    for (const unit of [
      'mm[Hg]',
      '[degF]',
      'umol/L',
      'mmol/L',
      '10*3/uL',
      'meq/L',
      'g/L',
      '/min',
      '{beats}/min',
      '%',
      'mL/min/{1.73_m2}',
      'meq/(8.h.kg)',
      'kg/(m.s2)',
      "{Ehrlich'U}/dL",
      '[IU]/L',
      'ng/mL{FEU}',
    ])
      assert.equal(unitStringProblem(unit), undefined, unit);
    // UCUM: m[Hg] = 133.3220 kPa, so 1 mm[Hg] = 0.133322 kPa.
    close(via('kPa', 'mm[Hg]', 100), 13.3322, 'MAP 100 mm[Hg] in kPa');
    close(convert('Temp', '[degF]', 98.6), 37, 'Temp 98.6 [degF]');
    close(convert('Creatinine', 'umol/L', 88.4), (88.4 * 113.12) / 10_000, 'creatinine 88.4 umol/L');
    close(convert('Glucose', 'mmol/L', 5.5), (5.5 * 180.156) / 10, 'glucose 5.5 mmol/L');
    // 10^3 per microlitre = 10^3 per 10^-6 L = 10^9 per litre.
    close(via('10*9/L', '10*3/uL', 250), 250, 'platelets 250 x10^3/uL');
    close(convert('Na', 'meq/L', 140), 140, 'Na 140 meq/L');
    close(convert('Albumin', 'g/L', 35), 3.5, 'albumin 35 g/L');
    close(via('/h', '/min', 80), 4800, '80 /min in /h');
    close(convert('HR', '{beats}/min', 80), 80, 'HR 80 {beats}/min');
    close(via('1', '%', 40), 0.4, '40 % as a fraction');
  });

  test('each malformed unit string is refused with its problem named', () => {
    const cases: Array<[string, string]> = [
      ['{}'.repeat(16_000), 'unit string longer than 64 characters'],
      ['m'.repeat(65), 'unit string longer than 64 characters'],
      ['', 'unit string is empty'],
      ['mm Hg', "unit string has characters outside UCUM's printable set (ASCII 33 to 126, no spaces)"],
      [
        'x\n{"msg":"forged"}\n(K)',
        "unit string has characters outside UCUM's printable set (ASCII 33 to 126, no spaces)",
      ],
      ['°C', "unit string has characters outside UCUM's printable set (ASCII 33 to 126, no spaces)"],
      ['{a}{b}{c}{d}{e}', 'unit string has more than 4 annotations'],
      ['{a{b}}', 'unit string has nested brackets or braces'],
      ['[a[b]]', 'unit string has nested brackets or braces'],
      ['[degF', 'unit string has unbalanced brackets or braces'],
      ['mg}', 'unit string has unbalanced brackets or braces'],
      ['(((((K)))))', 'unit string has more than 4 parenthesised groups'],
      ['(m', 'unit string has unbalanced parentheses'],
      ['m)/(s', 'unit string has unbalanced parentheses'],
      ['m.m.m.m.m/m/m/m/m/m', 'unit string has more than 8 operators (. and /)'],
    ];
    for (const [unit, problem] of cases)
      assert.equal(unitStringProblem(unit), problem, JSON.stringify(unit.slice(0, 40)));
    // Inside an annotation, parentheses and operators are text (UCUM §6): they are not counted.
    assert.equal(unitStringProblem('{((((((./././././.}/min'), undefined);
  });

  test('converterFor refuses a malformed unit string without calling the library', () => {
    // Counts the library's conversions; each still runs.
    const library = mock.method(ucum.UcumLhcUtils.prototype, 'convertUnitTo');
    const calls = (): number => library.mock.callCount();
    try {
      for (const unit of ['{}'.repeat(16_000), FORGING_UNIT, 'mm Hg', '(((((K)))))'])
        assert.equal(converterFor(variable('Temp'), unit), undefined);
      assert.equal(calls(), 0);
      // A new spec: converters are cached per variable, and Temp's K may be cached already.
      const fresh = { name: 'Temp', unit: 'Cel', alternativeUnits: [] };
      assert.ok(converterFor(fresh, 'K'), 'K converts to Cel');
      assert.ok(calls() > 0, 'a well-formed unit still reaches the library');
    } finally {
      library.mock.restore();
    }
  });

  test('distinct new unit strings are read at most 128 in one turn; known ones are answered from the cache', async () => {
    await new Promise((resolve) => setImmediate(resolve));
    // Counts the library's conversions; each still runs.
    const library = mock.method(ucum.UcumLhcUtils.prototype, 'convertUnitTo');
    const calls = (): number => library.mock.callCount();
    try {
      const spec = { name: 'Temp', unit: 'Cel', alternativeUnits: [{ unit: '[degF]', scale: 5 / 9, offset: -32 }] };
      assert.ok(unitConversion(spec, 'K').ok, 'K read first');
      // Metres are not a temperature: each is read once and refused as not convertible.
      const answers = Array.from({ length: 200 }, (_, i) => unitConversion(spec, `m{${i}}`));
      const refusedUnread = answers.filter((a) => !a.ok && a.problem !== undefined);
      assert.equal(answers.filter((a) => !a.ok && a.problem === undefined).length, 127, 'read and refused');
      assert.equal(refusedUnread.length, 73, 'refused unread');
      assert.deepEqual(refusedUnread[0], {
        ok: false,
        problem: 'more than 128 distinct unit strings to read at once; send fewer, or retry',
      });
      assert.ok(unitConversion(spec, 'K').ok, 'a unit read before is still answered');
      assert.ok(unitConversion(spec, '[degF]').ok, "the manifest's units need no reading");
      const before = calls();
      for (let i = 0; i < 1000; i++) unitConversion(spec, 'm{5}');
      assert.equal(calls(), before, 'a refused unit that was read is remembered');
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(unitConversion(spec, 'm{199}'), { ok: false, problem: undefined }, 'read on the next turn');
    } finally {
      library.mock.restore();
    }
  });

  test('what the library prints when its parser throws reaches neither console.log nor stdout', () => {
    const logged: unknown[] = [];
    const log = console.log;
    const spy = (...args: unknown[]): void => void logged.push(args);
    console.log = spy;
    const out = recordStdout();
    try {
      assert.equal(converterFor(variable('HR'), THROWING_UNIT), undefined);
    } finally {
      out.stop();
      console.log = log;
    }
    assert.deepEqual(logged, []);
    assert.ok(!out.text().includes(LIBRARY_MARKER), 'stdout holds what the library printed');
  });
});

describe('a value out of range names how to declare its unit, without converting it', () => {
  const schema = patientInputSchema(manifest);
  const messages = (patient: unknown): string[] => {
    const parsed = schema.safeParse(patient);
    return parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  test('a Fahrenheit temperature sent without units is refused with a hint at units.Temp and [degF]', () => {
    assert.deepEqual(messages({ hours: [{ Temp: 98.6 }] }), [
      'hours.0.Temp: Body temperature outside the plausible range 25 to 45 Cel; if the values are in another unit, name it in units.Temp (a UCUM code such as [degF])',
    ]);
  });

  test('a malformed unit is reported with every other problem of the patient', () => {
    assert.deepEqual(messages({ units: { Temp: '{}'.repeat(100) }, hours: [{ HR: 1000 }] }), [
      'units.Temp: unit string longer than 64 characters',
      'hours.0.HR: Heart rate outside the plausible range 0 to 300 /min',
    ]);
  });

  test('no hint where the unit was declared, or where the variable has no other unit', () => {
    assert.deepEqual(messages({ units: { Temp: 'Cel' }, hours: [{ Temp: 98.6 }] }), [
      'hours.0.Temp: Body temperature outside the plausible range 25 to 45 Cel',
    ]);
    assert.deepEqual(messages({ hours: [{ HR: 400 }] }), [
      'hours.0.HR: Heart rate outside the plausible range 0 to 300 /min',
    ]);
  });
});
