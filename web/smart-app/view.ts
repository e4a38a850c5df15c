import {
  CONTRIBUTIONS_EXTENSION,
  INPUT_PROFILE_EXTENSION,
  INPUT_WARNINGS_EXTENSION,
  TRAJECTORY_EXTENSION,
} from '../../src/fhir/codes.js';
import { resolveCode, type CodeIndex } from '../../src/fhir/variables.js';
import type { VariableSpec } from '../../src/model/manifest.js';

/**
 * The page's pure logic (no DOM): what the explained RiskAssessment of $predict says, the
 * Observations behind each contribution, the model card's sections, the chart's geometry.
 * Which model input an Observation is comes from the service's own rule (src/fhir/variables.ts).
 */

type Json = Record<string, unknown>;

export interface Extension {
  url: string;
  extension?: Extension[];
  valueString?: string;
  valueCode?: string;
  valueDecimal?: number;
  valueInteger?: number;
  valueReference?: { reference: string };
}

export interface Feature {
  name: string;
  label: string;
  unit: string;
  loinc: string[];
}

export interface Assessment {
  probability: number;
  band: string;
  bandLabel: string;
  model: string;
  profile: { scenario: string; heldOutAuroc: number | null; text: string | undefined } | undefined;
  trajectory: Array<{ hour: number; probability: number }>;
  /** Largest magnitude first; positive raises the risk. */
  contributions: Array<{ variable: string; effect: number }>;
  /** What was not used and why: the contained OperationOutcome's issues. */
  notUsed: Array<{ severity: string; text: string }>;
  notes: string[];
  basis: string[];
  bootstrap: boolean;
}

const sub = (ext: Extension, url: string): Extension | undefined => ext.extension?.find((e) => e.url === url);

function list(extensions: Extension[], url: string): Extension[] {
  return extensions.find((e) => e.url === url)?.extension ?? [];
}

export function readAssessment(ra: Json): Assessment {
  const extensions = (ra.extension as Extension[] | undefined) ?? [];
  const prediction = ((ra.prediction as Json[] | undefined) ?? [])[0] ?? {};
  const band = ((prediction.qualitativeRisk as Json | undefined)?.coding as Json[] | undefined)?.[0] ?? {};
  const notes = ((ra.note as Array<{ text: string }> | undefined) ?? []).map((n) => n.text);
  const profileExt = extensions.find((e) => e.url === INPUT_PROFILE_EXTENSION);
  const trajectory = list(extensions, TRAJECTORY_EXTENSION).map((p) => ({
    hour: sub(p, 'hour')?.valueInteger ?? NaN,
    probability: sub(p, 'probability')?.valueDecimal ?? NaN,
  }));
  const contributions = list(extensions, CONTRIBUTIONS_EXTENSION)
    .map((c) => ({ variable: sub(c, 'variable')?.valueString ?? '?', effect: sub(c, 'effect')?.valueDecimal ?? 0 }))
    .sort((a, b) => Math.abs(b.effect) - Math.abs(a.effect));
  const warningsRef = extensions.find((e) => e.url === INPUT_WARNINGS_EXTENSION)?.valueReference?.reference;
  const outcome = ((ra.contained as Json[] | undefined) ?? []).find((r) => `#${String(r.id)}` === warningsRef);
  const notUsed = ((outcome?.issue as Json[] | undefined) ?? []).map((i) => ({
    severity: String(i.severity ?? 'information'),
    text: String(i.diagnostics ?? (i.details as Json | undefined)?.text ?? i.code ?? ''),
  }));
  const method = ((ra.method as Json | undefined)?.coding as Json[] | undefined)?.[0] ?? {};
  return {
    probability: Number(prediction.probabilityDecimal),
    band: String(band.code ?? ''),
    bandLabel: String(band.display ?? band.code ?? ''),
    model: `${String(method.code ?? '?')} ${String(method.version ?? '?')}`,
    profile: profileExt
      ? {
          scenario: sub(profileExt, 'scenario')?.valueCode ?? '?',
          heldOutAuroc: sub(profileExt, 'heldOutAuroc')?.valueDecimal ?? null,
          text: notes.find((n) => n.startsWith('Scored on ') && n.includes('AUROC')),
        }
      : undefined,
    trajectory,
    contributions,
    notUsed,
    notes,
    basis: ((ra.basis as Array<{ reference: string }> | undefined) ?? []).map((b) => b.reference),
    bootstrap: notes.some((n) => n.startsWith('WARNING: the serving model is an untrained bootstrap')),
  };
}

/** A code index like the service's (src/fhir/variables.ts codeIndex), from GET /v1/models' features. */
export function featureIndex(features: readonly Feature[]): CodeIndex {
  // resolveCode reads a variable's name only; the other fields of a manifest variable are not needed here.
  const specs = features.map((f) => ({ ...f, loinc: [...f.loinc] }) as unknown as VariableSpec);
  const byLoinc = new Map<string, VariableSpec[]>();
  for (const v of specs) for (const code of v.loinc) byLoinc.set(code, [...(byLoinc.get(code) ?? []), v]);
  return { byName: new Map(specs.map((v) => [v.name, v])), byLoinc, height: undefined };
}

export interface Measured {
  value: number;
  unit: string;
  time: string;
  ref: string;
}

interface Coded {
  code?: { coding?: Array<{ system?: string; code?: string }> };
  valueQuantity?: { value?: number; unit?: string; code?: string };
}

function timeOf(o: Json): string {
  return String(o.effectiveDateTime ?? (o.effectivePeriod as Json | undefined)?.end ?? o.effectiveInstant ?? '');
}

/**
 * The measurements behind each variable: the Observations (or components) in the answer's basis
 * that the service's code rule reads as that variable, newest first, as the EHR recorded them.
 */
export function measurementsByVariable(
  observations: readonly Json[],
  basis: readonly string[],
  index: CodeIndex,
): Map<string, Measured[]> {
  const used = new Set(basis);
  const out = new Map<string, Measured[]>();
  const add = (name: string, m: Measured): void => {
    out.set(name, [...(out.get(name) ?? []), m]);
  };
  for (const o of observations) {
    const ref = `Observation/${String(o.id)}`;
    if (!used.has(ref)) continue;
    const parts: Coded[] = [o as Coded, ...(((o.component as Coded[] | undefined) ?? []) as Coded[])];
    for (const part of parts) {
      const q = part.valueQuantity;
      if (!part.code || typeof q?.value !== 'number') continue;
      const resolved = resolveCode({ coding: part.code.coding ?? [] }, index);
      if (resolved.kind !== 'variable') continue;
      add(resolved.variable.name, { value: q.value, unit: q.unit ?? q.code ?? '', time: timeOf(o), ref });
    }
  }
  for (const list of out.values()) list.sort((a, b) => Date.parse(b.time) - Date.parse(a.time));
  return out;
}

/** The named `## ` sections of a model card (Markdown), by heading; text kept as written. */
export function cardSections(markdown: string, wanted: readonly RegExp[]): Array<{ heading: string; text: string }> {
  const sections: Array<{ heading: string; text: string }> = [];
  let current: { heading: string; lines: string[] } | undefined;
  const flush = (): void => {
    if (current && wanted.some((w) => w.test(current!.heading)))
      sections.push({ heading: current.heading, text: current.lines.join('\n').trim() });
  };
  for (const line of markdown.split('\n')) {
    const m = /^##\s+(.*)$/.exec(line);
    if (m) {
      flush();
      current = { heading: (m[1] ?? '').trim(), lines: [] };
    } else if (/^#\s/.test(line)) {
      flush();
      current = undefined;
    } else current?.lines.push(line);
  }
  flush();
  return sections;
}

/** Points of the trajectory in a width x height box with margins: hour on x, probability 0..1 on y. */
export function chartPoints(
  trajectory: ReadonlyArray<{ hour: number; probability: number }>,
  box: { width: number; height: number; left: number; right: number; top: number; bottom: number },
): Array<{ x: number; y: number; hour: number; probability: number }> {
  const hours = trajectory.map((p) => p.hour);
  const first = Math.min(...hours);
  const last = Math.max(...hours);
  const span = Math.max(1, last - first);
  const w = box.width - box.left - box.right;
  const h = box.height - box.top - box.bottom;
  return trajectory.map((p) => ({
    ...p,
    x: box.left + (trajectory.length === 1 ? w / 2 : ((p.hour - first) / span) * w),
    y: box.top + (1 - Math.min(1, Math.max(0, p.probability))) * h,
  }));
}

/** The card's and the RiskAssessment's rounding, so the page says what the card says. */
export { percent } from '../../src/fhir/explain-text.js';
