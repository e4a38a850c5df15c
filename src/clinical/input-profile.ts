import type { Manifest } from '../model/manifest.js';

/**
 * Which validated scenario a stay's inputs cover, and its held-out AUROC. A stay covers a scenario
 * with at least its `coverage` (training/scenarios.py: the 5% quantile of its held-out stays); the
 * highest-AUROC covered one wins, so removing observations can only lower the figure.
 */

export interface InputProfile {
  scenario: string;
  label: string;
  /** AUROC of this model on held-out stays sent this way; null for an unevaluated model or a sparse stay. */
  heldOutAuroc: number | null;
}

export const SPARSE_PROFILE: Readonly<InputProfile> = {
  scenario: 'sparse',
  label: 'inputs sparser than every validated profile (fewer variables or hours)',
  heldOutAuroc: null,
};

type Scenario = NonNullable<Manifest['scenarios']>[number];

/** What coverage reads of a ValidPatient (types.ts): rows [hoursUsed x variables], NaN = missing. */
export interface StayValues {
  values: Float64Array;
  hoursUsed: number;
}

/** What a stay has of a scenario's inputs: variables seen in its window, hours from first to last row with any. */
export interface Coverage {
  variables: number;
  hours: number;
}

const columnsCache = new WeakMap<Scenario, number[]>();

function columns(manifest: Manifest, scenario: Scenario): number[] {
  let cols = columnsCache.get(scenario);
  if (cols === undefined) {
    const allowed = scenario.variables === null ? null : new Set(scenario.variables);
    cols = manifest.variables.flatMap((v, j) => (allowed === null || allowed.has(v.name) ? [j] : []));
    columnsCache.set(scenario, cols);
  }
  return cols;
}

/** Coverage of one scenario; `first[j]` is the first row where variable j is observed (hoursUsed if never). */
function scenarioCoverage(manifest: Manifest, patient: StayValues, first: Int32Array, scenario: Scenario): Coverage {
  const window = Math.min(patient.hoursUsed, scenario.maxHours ?? manifest.maxHours);
  const cols = columns(manifest, scenario);
  const width = manifest.variables.length;
  let variables = 0;
  let start = window;
  for (const j of cols) {
    if ((first[j] as number) < window) {
      variables += 1;
      start = Math.min(start, first[j] as number);
    }
  }
  if (variables === 0) return { variables, hours: 0 };
  for (let r = window - 1; r >= start; r--) {
    for (const j of cols) if (!Number.isNaN(patient.values[r * width + j])) return { variables, hours: r - start + 1 };
  }
  return { variables, hours: 1 };
}

/** The first row each variable is observed in (hoursUsed when it never is). */
function firstRows(manifest: Manifest, patient: StayValues): Int32Array {
  const width = manifest.variables.length;
  const first = new Int32Array(width).fill(patient.hoursUsed);
  let found = 0;
  for (let r = 0; r < patient.hoursUsed && found < width; r++) {
    for (let j = 0; j < width; j++) {
      if (first[j] === patient.hoursUsed && !Number.isNaN(patient.values[r * width + j])) {
        first[j] = r;
        found += 1;
      }
    }
  }
  return first;
}

export function coverage(manifest: Manifest, patient: StayValues, scenario: Scenario): Coverage {
  return scenarioCoverage(manifest, patient, firstRows(manifest, patient), scenario);
}

const claimableCache = new WeakMap<Manifest, Scenario[]>();

/** The scenarios with a coverage rule: a profile without one is never claimed. */
function claimable(manifest: Manifest): Scenario[] {
  let scenarios = claimableCache.get(manifest);
  if (scenarios === undefined) {
    scenarios = (manifest.scenarios ?? []).filter((s) => s.coverage !== undefined);
    claimableCache.set(manifest, scenarios);
  }
  return scenarios;
}

/** The profile a stay's inputs cover; undefined for a model whose manifest defines no coverage. */
export function inputProfile(manifest: Manifest, patient: StayValues): InputProfile | undefined {
  const scenarios = claimable(manifest);
  if (scenarios.length === 0) return undefined;
  const first = firstRows(manifest, patient);
  let best: Scenario | undefined;
  for (const s of scenarios) {
    // Ties (an unevaluated model's nulls) go to the later scenario: the list runs from narrow to broad.
    if (best !== undefined && (s.heldOutAuroc ?? -1) < (best.heldOutAuroc ?? -1)) continue;
    const need = s.coverage as NonNullable<Scenario['coverage']>;
    const has = scenarioCoverage(manifest, patient, first, s);
    if (has.variables >= need.minVariables && has.hours >= need.minHours) best = s;
  }
  return best === undefined
    ? { ...SPARSE_PROFILE }
    : { scenario: best.name, label: best.label, heldOutAuroc: best.heldOutAuroc };
}
