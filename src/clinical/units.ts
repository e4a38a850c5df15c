import ucum from '@lhncbc/ucum-lhc';
import type { VariableSpec } from '../model/manifest.js';

/**
 * Unit conversion to a variable's canonical unit by the NLM's UCUM library: commensurable units,
 * and mass, moles and equivalents where the manifest gives a molar mass and charge. Only units the
 * caller names are converted: guessing from magnitude is for cleaning raw training files.
 */

export type UnitConverter = (value: number) => number;

const CONSOLE_METHODS = ['log', 'info', 'warn', 'error', 'debug', 'trace', 'dir'] as const;
const silent = (): void => undefined;

/**
 * Runs a library call with console output dropped: when its parser throws it console.logs the raw
 * unit string (ucumLhcUtils.js, getSpecifiedUnit), and stdout is the JSON log stream. The calls are
 * synchronous, so no other code can log in the window; the methods are restored even on a throw.
 */
function quietly<T>(call: () => T): T {
  const saved = CONSOLE_METHODS.map((m) => console[m]);
  for (const m of CONSOLE_METHODS) console[m] = silent;
  try {
    return call();
  } finally {
    CONSOLE_METHODS.forEach((m, i) => {
      console[m] = saved[i] as (typeof console)[typeof m];
    });
  }
}

const identity: UnitConverter = (v) => v;
const library = quietly(() => ucum.UcumLhcUtils.getInstance());
/** What conversion needs of a variable (Height, a static, has the same shape). */
export type UnitSpec = Pick<VariableSpec, 'name' | 'unit' | 'alternativeUnits' | 'molarMass' | 'charge'>;

/** Per variable, unit strings read before: accepted and refused apart, so refused ones never push out accepted ones. */
const cache = new WeakMap<UnitSpec, { accepted: Map<string, UnitConverter>; refused: Map<string, true> }>();
/** Unit strings remembered in each of the two, least recently used dropped first: clients choose them. */
const CACHED_UNITS_PER_VARIABLE = 64;
/**
 * New unit strings the library may parse in one event-loop turn: a request is validated in one
 * turn, so thousands of distinct units block for this many parses, not one each.
 */
const NEW_UNITS_PER_TURN = 128;
let newUnitsThisTurn = 0;

/** A converter, or why not: `problem` names a malformed string or too many new ones; undefined = not convertible. */
export type UnitConversion = { ok: true; convert: UnitConverter } | { ok: false; problem: string | undefined };

/** How to bring a value in `unit` to the variable's canonical unit (undefined: it is in that unit). */
export function unitConversion(variable: UnitSpec, unit: string | undefined): UnitConversion {
  if (unit === undefined || unit === variable.unit) return { ok: true, convert: identity };
  const problem = unitStringProblem(unit);
  if (problem !== undefined) return { ok: false, problem };
  let known = cache.get(variable);
  if (known === undefined) {
    known = { accepted: new Map(), refused: new Map() };
    cache.set(variable, known);
  }
  const accepted = known.accepted.get(unit);
  if (accepted !== undefined) return { ok: true, convert: remember(known.accepted, unit, accepted) };
  if (known.refused.has(unit)) {
    remember(known.refused, unit, true);
    return { ok: false, problem: undefined };
  }
  // The manifest's own conversions first: a value converts exactly as training converted it
  // (test/clinical/units.test.ts checks they agree with UCUM).
  const declared = declaredConverter(variable, unit);
  if (declared === undefined && !takeNewUnit()) {
    return {
      ok: false,
      problem: `more than ${NEW_UNITS_PER_TURN} distinct unit strings to read at once; send fewer, or retry`,
    };
  }
  const converter = declared ?? ucumConverter(variable, unit);
  if (converter === undefined) {
    remember(known.refused, unit, true);
    return { ok: false, problem: undefined };
  }
  return { ok: true, convert: remember(known.accepted, unit, converter) };
}

/** Puts `unit` last (most recently used) in `map`, dropping the least recently used beyond the bound. */
function remember<T>(map: Map<string, T>, unit: string, value: T): T {
  map.delete(unit);
  map.set(unit, value);
  if (map.size > CACHED_UNITS_PER_VARIABLE) map.delete(map.keys().next().value as string);
  return value;
}

/** The converter from `unit` to the variable's canonical unit, or undefined when the unit is not accepted. */
export function converterFor(variable: UnitSpec, unit: string | undefined): UnitConverter | undefined {
  const conversion = unitConversion(variable, unit);
  return conversion.ok ? conversion.convert : undefined;
}

function takeNewUnit(): boolean {
  if (newUnitsThisTurn === 0) setImmediate(() => (newUnitsThisTurn = 0)).unref();
  return ++newUnitsThisTurn <= NEW_UNITS_PER_TURN;
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
    const r = quietly(() => library.convertUnitTo(unit, v, variable.unit, options));
    return r.status === 'succeeded' && typeof r.toVal === 'number' && Number.isFinite(r.toVal) ? r.toVal : undefined;
  };
  // One parse refuses a unit that is not UCUM or not commensurable; the other two follow only then.
  const b = at(1);
  const a = b === undefined ? undefined : at(0);
  const c = a === undefined ? undefined : at(100);
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

/** Longest unit string read: UCUM codes clinical systems send are under 20 characters (mL/min/{1.73_m2} is 16). */
export const MAX_UNIT_LENGTH = 64;
/** Groups and operators (UCUM §7, §10): units in use have one and three at most; parse cost grows with both. */
const MAX_UNIT_GROUPS = 4;
const MAX_UNIT_OPERATORS = 8;
/** Annotations ({...}, UCUM §6) in one unit: the library re-scans the string for each, so they cost its square. */
const MAX_UNIT_ANNOTATIONS = 4;
/** UCUM §3: 7-bit US-ASCII, characters 33 to 126 (no white space), inside brackets and braces too (§5, §6). */
const UCUM_PRINTABLE = /^[\x21-\x7e]*$/;

/**
 * Why `unit` is refused before any parser reads it, or undefined: too long, characters outside
 * UCUM §3, unbalanced or nested (§5, §6), or more groups, operators or annotations than units in
 * use have. The library's parse time grows with the square of the length and recurses per group.
 */
export function unitStringProblem(unit: string): string | undefined {
  if (unit.length === 0) return 'unit string is empty';
  if (unit.length > MAX_UNIT_LENGTH) return `unit string longer than ${MAX_UNIT_LENGTH} characters`;
  if (!UCUM_PRINTABLE.test(unit))
    return "unit string has characters outside UCUM's printable set (ASCII 33 to 126, no spaces)";
  let depth = 0;
  let groups = 0;
  let operators = 0;
  let annotations = 0;
  let closer: '}' | ']' | undefined;
  for (const ch of unit) {
    if (closer !== undefined) {
      if (ch === closer) closer = undefined;
      else if (ch === '{' || ch === '[') return 'unit string has nested brackets or braces';
      continue;
    }
    if (ch === '{') {
      closer = '}';
      if (++annotations > MAX_UNIT_ANNOTATIONS) return `unit string has more than ${MAX_UNIT_ANNOTATIONS} annotations`;
    } else if (ch === '[') closer = ']';
    else if (ch === '(') {
      depth++;
      if (++groups > MAX_UNIT_GROUPS) return `unit string has more than ${MAX_UNIT_GROUPS} parenthesised groups`;
    } else if (ch === '.' || ch === '/') {
      if (++operators > MAX_UNIT_OPERATORS)
        return `unit string has more than ${MAX_UNIT_OPERATORS} operators (. and /)`;
    } else if (ch === ')') {
      if (--depth < 0) return 'unit string has unbalanced parentheses';
    } else if (ch === '}' || ch === ']') return 'unit string has unbalanced brackets or braces';
  }
  if (closer !== undefined) return 'unit string has unbalanced brackets or braces';
  if (depth !== 0) return 'unit string has unbalanced parentheses';
  return undefined;
}
