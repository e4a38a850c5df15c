import { numericDescriptor, type Manifest, type VariableSpec } from '../model/manifest.js';
import { LOINC, LOINC_BODY_HEIGHT, LOINC_PULSE_OXIMETRY, NON_INVASIVE_DEFAULT, VARIABLE_SYSTEM } from './codes.js';
import type { CodeableConcept } from './resources.js';

/**
 * Which model input an Observation code means. Codes only, never display text: a public
 * clinical-AI framework once matched "lactate" by name to lactate dehydrogenase.
 * The LOINC codes come from the manifest (`variables[].loinc`), so the model package stays the
 * one definition; Height is a static descriptor with its own fixed LOINC code.
 */

export interface HeightSpec {
  name: string;
  unit: string;
  bounds: { min: number; max: number };
}

export type CodeResolution =
  /** readAs: set when a method-less code was read as one of its variables, saying which (for the answer). */
  | { kind: 'variable'; variable: VariableSpec; readAs?: string }
  | { kind: 'height'; height: HeightSpec }
  | { kind: 'unknown'; codes: string[] }
  | { kind: 'rejected'; reason: string };

export interface CodeIndex {
  byName: Map<string, VariableSpec>;
  byLoinc: Map<string, VariableSpec[]>;
  height: HeightSpec | undefined;
}

const cache = new WeakMap<Manifest, CodeIndex>();

export function codeIndex(manifest: Manifest): CodeIndex {
  const cached = cache.get(manifest);
  if (cached) return cached;
  const byLoinc = new Map<string, VariableSpec[]>();
  for (const v of manifest.variables) {
    for (const code of v.loinc) byLoinc.set(code, [...(byLoinc.get(code) ?? []), v]);
  }
  const h = numericDescriptor(manifest, 'height');
  const index: CodeIndex = {
    byName: new Map(manifest.variables.map((v) => [v.name, v])),
    byLoinc,
    height: h ? { name: h.name, unit: h.unit, bounds: h.bounds } : undefined,
  };
  cache.set(manifest, index);
  return index;
}

function describe(concept: CodeableConcept): string[] {
  return (concept.coding ?? []).map((c) =>
    c.system === LOINC ? `LOINC ${c.code ?? '?'}` : `${c.system ?? '(no system)'}|${c.code ?? '?'}`,
  );
}

/** The model input an Observation (or component) code stands for. */
export function resolveCode(concept: CodeableConcept, index: CodeIndex): CodeResolution {
  const codings = concept.coding ?? [];
  // The service's own variable codes are exact, so they decide when present (MechVent, invasive pressures).
  for (const c of codings) {
    if (c.system !== VARIABLE_SYSTEM || c.code === undefined) continue;
    const variable = index.byName.get(c.code);
    if (variable) return { kind: 'variable', variable };
    if (index.height && c.code === index.height.name) return { kind: 'height', height: index.height };
  }
  const loinc = codings.filter((c) => c.system === LOINC && c.code !== undefined).map((c) => c.code as string);
  if (loinc.includes(LOINC_PULSE_OXIMETRY)) {
    return {
      kind: 'rejected',
      reason: `pulse-oximetry SpO2 (LOINC ${LOINC_PULSE_OXIMETRY}) is not an input of this model, which was trained on arterial oxygen saturation (SaO2, LOINC 2708-6 from a blood gas)`,
    };
  }
  if (index.height && loinc.includes(LOINC_BODY_HEIGHT)) return { kind: 'height', height: index.height };
  // Codings of one concept are translations of each other: a method-specific code (76214-6,
  // invasive) beside the generic one (8478-0) narrows it, so the known codes' variables intersect.
  const known = loinc.map((code) => index.byLoinc.get(code)).filter((v): v is VariableSpec[] => v !== undefined);
  const all = [...new Set(known.flat())];
  const candidates = all.filter((v) => known.every((vs) => vs.includes(v)));
  if (candidates.length === 1) return { kind: 'variable', variable: candidates[0] as VariableSpec };
  if (candidates.length === 2) {
    const [a, b] = candidates as [VariableSpec, VariableSpec];
    const [invasive, nonInvasive] =
      NON_INVASIVE_DEFAULT[a.name] === b.name ? [a, b] : NON_INVASIVE_DEFAULT[b.name] === a.name ? [b, a] : [];
    if (invasive && nonInvasive) {
      return {
        kind: 'variable',
        variable: nonInvasive,
        readAs: `${describe(concept).join(', ')} names no method: read as ${nonInvasive.name}, the non-invasive (cuff) series; add a coding ${VARIABLE_SYSTEM}|${invasive.name} when it comes from an arterial line`,
      };
    }
  }
  if (all.length > 1) {
    return {
      kind: 'rejected',
      reason: `${describe(concept).join(', ')} matches several model inputs (${(candidates.length > 1 ? candidates : all).map((c) => c.name).join(', ')}); add a coding with system ${VARIABLE_SYSTEM} naming one`,
    };
  }
  return { kind: 'unknown', codes: describe(concept) };
}

/**
 * The variables an answer lists as not observed: an invasive pressure is left out when its
 * non-invasive twin was observed, since a method-less pressure is read as that twin and the
 * answer says so; listing MAP as "not observed" after the caller sent a mean pressure misleads.
 */
export function missingForAnswer(missing: readonly string[]): string[] {
  const absent = new Set(missing);
  return missing.filter((name) => {
    const twin = NON_INVASIVE_DEFAULT[name];
    return twin === undefined || absent.has(twin);
  });
}
