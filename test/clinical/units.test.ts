import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { converterFor } from '../../src/clinical/units.js';
import type { VariableSpec } from '../../src/model/manifest.js';
import { loadTinyManifest } from '../helper.js';

/**
 * Units EHRs send, converted by the UCUM library with the manifest's molar masses and charges,
 * against values computed here by hand: c [mg/dL] = c [umol/L] x M [g/mol] / 10,000;
 * c [mmol/L] = c [meq/L] / charge; 1 g/dL = 10 g/L; degF = degC x 9/5 + 32.
 */

// The fixture's variables are the shipped model's (training/spec.py).
const manifest = await loadTinyManifest();
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

  test('every alternative unit a manifest lists agrees with the library', () => {
    for (const v of manifest.variables) {
      for (const alt of v.alternativeUnits) {
        for (const x of [0.5, 7, 120])
          close(convert(v.name, alt.unit, x), (x + alt.offset) * alt.scale, `${v.name} ${alt.unit}`);
      }
    }
  });

  test('what cannot be converted is refused, not guessed', () => {
    assert.equal(converterFor(variable('Creatinine'), 'mmol/min'), undefined, 'not commensurable');
    assert.equal(converterFor(variable('Albumin'), 'umol/L'), undefined, 'no molar mass declared for albumin');
    assert.equal(converterFor(variable('HR'), 'mm[Hg]'), undefined);
    assert.equal(converterFor(variable('Na'), 'not a unit'), undefined);
  });
});
