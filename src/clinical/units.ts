import type { VariableSpec } from '../model/manifest.js';

/**
 * Unit conversion to a variable's canonical unit. The manifest lists the alternative units a
 * client may name (e.g. Temp in [degF], Lactate in mg/dL); canonical = (value + offset) * scale.
 * Nothing is converted unless the request names the unit: guessing from magnitude is how
 * training cleans the raw challenge files, not how a live service should read a clinician's data.
 */

export type UnitConverter = (value: number) => number;

const identity: UnitConverter = (v) => v;

/** The converter from `unit` to the variable's canonical unit, or undefined when the unit is not accepted. */
export function converterFor(variable: VariableSpec, unit: string | undefined): UnitConverter | undefined {
  if (unit === undefined || unit === variable.unit) return identity;
  const alt = variable.alternativeUnits.find((a) => a.unit === unit);
  if (!alt) return undefined;
  return (v) => (v + alt.offset) * alt.scale;
}

/** Units accepted for a variable, canonical first. */
export function acceptedUnits(variable: VariableSpec): string[] {
  return [variable.unit, ...variable.alternativeUnits.map((a) => a.unit)];
}
