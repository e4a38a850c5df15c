import type { VariableSpec } from '../model/manifest.js';
import { UCUM } from './codes.js';
import type { Quantity } from './resources.js';

/**
 * UCUM units of a valueQuantity -> a variable's canonical unit, using only the conversions the
 * manifest lists (`alternativeUnits`). Comparison is on the UCUM code, after one rule from the
 * UCUM specification (section 2.4 "annotations"): curly-brace annotations carry no meaning,
 * so `{beats}/min` is `/min` and `{score}` is the unity `1`. Nothing is guessed from magnitude.
 */

export type UnitResolution =
  | { ok: true; convert: (value: number) => number }
  | { ok: false; reason: string };

/** Drops annotations; an empty remainder is the unity "1". */
export function normaliseUcum(code: string): string {
  const stripped = code.replace(/\{[^{}]*\}/g, '').trim();
  if (stripped === '' || stripped === '1') return '1';
  // "{beats}/min" leaves "/min"; "{cells}/uL" leaves "/uL": both are what UCUM means.
  return stripped;
}

/** The UCUM code of a quantity, or why it has none we can use. */
export function ucumCodeOf(quantity: Quantity): { ok: true; code: string } | { ok: false; reason: string } {
  if (quantity.system !== undefined && quantity.system !== UCUM) {
    return { ok: false, reason: `valueQuantity.system is not UCUM (${UCUM})` };
  }
  if (quantity.code === undefined || quantity.code.trim() === '') {
    return { ok: false, reason: 'valueQuantity has no UCUM code (valueQuantity.code)' };
  }
  return { ok: true, code: quantity.code };
}

/** How to bring a value in `ucumCode` to the variable's canonical unit, if the manifest allows it. */
export function resolveUnit(variable: Pick<VariableSpec, 'name' | 'unit' | 'alternativeUnits'>, ucumCode: string): UnitResolution {
  const given = normaliseUcum(ucumCode);
  if (given === normaliseUcum(variable.unit)) return { ok: true, convert: (v) => v };
  const alt = variable.alternativeUnits.find((a) => normaliseUcum(a.unit) === given);
  if (alt) return { ok: true, convert: (v) => (v + alt.offset) * alt.scale };
  const accepted = [variable.unit, ...variable.alternativeUnits.map((a) => a.unit)].join(', ');
  return { ok: false, reason: `unit "${ucumCode}" cannot be converted for ${variable.name}; accepted UCUM units: ${accepted}` };
}
