import type { Manifest } from '../model/manifest.js';

/**
 * Which validated scenario of the manifest a stay's inputs match, and that scenario's held-out
 * AUROC: how much weight its score can bear. Scenarios are listed most specific first; the
 * first whose variables include every variable the stay has, and whose hour limit covers its
 * hours, is the stay's (training/spec.py SCENARIOS).
 */

export interface InputProfile {
  scenario: string;
  label: string;
  /** AUROC of this model on held-out stays sent this way; null for an unevaluated model. */
  heldOutAuroc: number | null;
}

export function inputProfile(
  manifest: Manifest,
  missing: readonly string[],
  hoursUsed: number,
): InputProfile | undefined {
  const scenarios = manifest.scenarios;
  if (scenarios === undefined || scenarios.length === 0) return undefined;
  const absent = new Set(missing);
  for (const s of scenarios) {
    if (s.maxHours !== null && hoursUsed > s.maxHours) continue;
    if (s.variables !== null) {
      const allowed = new Set(s.variables);
      if (manifest.variables.some((v) => !absent.has(v.name) && !allowed.has(v.name))) continue;
    }
    return { scenario: s.name, label: s.label, heldOutAuroc: s.heldOutAuroc };
  }
  return undefined;
}
