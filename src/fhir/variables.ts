import type { Manifest, VariableSpec } from '../model/manifest.js';
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
  | { kind: 'variable'; variable: VariableSpec }
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
  const h = manifest.statics.find((s) => s.name === 'Height');
  const index: CodeIndex = {
    byName: new Map(manifest.variables.map((v) => [v.name, v])),
    byLoinc,
    height: h && h.kind === 'numeric' ? { name: h.name, unit: h.unit, bounds: h.bounds } : undefined,
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
  const candidates = [...new Set(loinc.flatMap((code) => index.byLoinc.get(code) ?? []))];
  if (candidates.length === 1) return { kind: 'variable', variable: candidates[0] as VariableSpec };
  if (candidates.length === 2) {
    const [a, b] = candidates as [VariableSpec, VariableSpec];
    const nonInvasive =
      NON_INVASIVE_DEFAULT[a.name] === b.name ? b : NON_INVASIVE_DEFAULT[b.name] === a.name ? a : undefined;
    if (nonInvasive) return { kind: 'variable', variable: nonInvasive };
  }
  if (candidates.length > 1) {
    return {
      kind: 'rejected',
      reason: `${describe(concept).join(', ')} matches several model inputs (${candidates.map((c) => c.name).join(', ')}); add a coding with system ${VARIABLE_SYSTEM} naming one`,
    };
  }
  return { kind: 'unknown', codes: describe(concept) };
}
