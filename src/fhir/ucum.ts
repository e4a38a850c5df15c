import { unitConversion, type UnitSpec } from '../clinical/units.js';
import { UCUM } from './codes.js';
import type { Quantity } from './resources.js';

/**
 * The UCUM unit of a valueQuantity -> a variable's canonical unit, by the same converter as the
 * JSON API (src/clinical/units.ts). Nothing is guessed from magnitude.
 */

export type UnitResolution = { ok: true; convert: (value: number) => number } | { ok: false; reason: string };

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

/** How to bring a value in `ucumCode` to the variable's canonical unit (src/clinical/units.ts, the one rule). */
export function resolveUnit(variable: UnitSpec, ucumCode: string): UnitResolution {
  const conversion = unitConversion(variable, ucumCode);
  if (conversion.ok) return { ok: true, convert: conversion.convert };
  // Said without the code itself: a malformed one may be huge or hold line breaks, and issues are logged.
  if (conversion.problem !== undefined) return { ok: false, reason: `valueQuantity.code: ${conversion.problem}` };
  const substance = variable.molarMass
    ? ''
    : '; mass and moles are not interchangeable for it (no molar mass in the manifest)';
  return {
    ok: false,
    reason: `unit "${ucumCode}" cannot be converted to ${variable.unit} for ${variable.name}${substance}`,
  };
}
