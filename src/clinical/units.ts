import ucum from '@lhncbc/ucum-lhc';
import type { VariableSpec } from '../model/manifest.js';

/**
 * Unit conversion to a variable's canonical unit by the NLM's UCUM library: commensurable units,
 * and mass, moles and equivalents where the manifest gives a molar mass and charge. Only units the
 * caller names are converted: guessing from magnitude is for cleaning raw training files.
 */

export type UnitConverter = (value: number) => number;

const identity: UnitConverter = (v) => v;
const library = ucum.UcumLhcUtils.getInstance();
/** What conversion needs of a variable (Height, a static, has the same shape). */
export type UnitSpec = Pick<VariableSpec, 'name' | 'unit' | 'alternativeUnits' | 'molarMass' | 'charge'>;

const cache = new WeakMap<UnitSpec, Map<string, UnitConverter | null>>();
/** Unit strings remembered per variable: clients choose them, so the cache must not grow without end. */
const CACHED_UNITS_PER_VARIABLE = 32;

/** The converter from `unit` to the variable's canonical unit, or undefined when the unit is not accepted. */
export function converterFor(variable: UnitSpec, unit: string | undefined): UnitConverter | undefined {
  if (unit === undefined || unit === variable.unit) return identity;
  let known = cache.get(variable);
  if (known === undefined) {
    known = new Map();
    cache.set(variable, known);
  }
  let converter = known.get(unit);
  if (converter === undefined) {
    // The manifest's own conversions first: a value converts exactly as training converted it
    // (test/clinical/units.test.ts checks they agree with UCUM).
    converter = declaredConverter(variable, unit) ?? ucumConverter(variable, unit) ?? null;
    if (known.size < CACHED_UNITS_PER_VARIABLE) known.set(unit, converter);
  }
  return converter ?? undefined;
}

/**
 * UCUM conversions are affine (temperatures) or linear; a logarithmic one (pH from mol/L) is
 * refused. The converter is read from three points, so the library runs once per unit, not per value.
 */
function ucumConverter(variable: UnitSpec, unit: string): UnitConverter | undefined {
  const options = {
    ...(variable.molarMass ? { molecularWeight: variable.molarMass } : {}),
    ...(variable.charge ? { charge: variable.charge } : {}),
  };
  const at = (v: number): number | undefined => {
    const r = library.convertUnitTo(unit, v, variable.unit, options);
    return r.status === 'succeeded' && typeof r.toVal === 'number' && Number.isFinite(r.toVal) ? r.toVal : undefined;
  };
  const [a, b, c] = [at(0), at(1), at(100)];
  if (a === undefined || b === undefined || c === undefined) return undefined;
  const scale = b - a;
  if (!(scale > 0) || Math.abs(a + 100 * scale - c) > 1e-9 * Math.max(1, Math.abs(c))) return undefined;
  return (v) => a + v * scale;
}

function declaredConverter(variable: UnitSpec, unit: string): UnitConverter | undefined {
  const alt = variable.alternativeUnits.find((u) => u.unit === unit);
  return alt && ((v) => (v + alt.offset) * alt.scale);
}

/** Units named for a variable in messages and docs, canonical first; others UCUM can convert are accepted too. */
export function acceptedUnits(variable: UnitSpec): string[] {
  return [variable.unit, ...variable.alternativeUnits.map((a) => a.unit)];
}
