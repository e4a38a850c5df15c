/**
 * The shapes shared by every path into the model (JSON API, NDJSON stream, CLI readers,
 * FHIR, CDS Hooks). Readers turn their input into a `PatientInput`; validation turns that
 * into a `ValidPatient` (canonical units, bounds checked, one dense matrix); buildBatch
 * (preprocess.ts) turns valid patients into the graph's inputs (models/README.md).
 */

import type { InputProfile } from './input-profile.js';

/** One hour of measurements, keyed by the manifest's variable names. Missing = null or absent. */
export type HourRow = Record<string, number | null | undefined>;

export type Sex = 'female' | 'male';

/** A patient as a client sends it, before validation. */
export interface PatientInput {
  /** Client's own identifier: echoed back, never logged. */
  id?: string;
  age?: number | null;
  sex?: Sex | null;
  /** 1 coronary care, 2 cardiac surgery recovery, 3 medical, 4 surgical (PhysioNet 2012 coding). */
  icuType?: 1 | 2 | 3 | 4 | null;
  height?: number | null;
  weight?: number | null;
  /** Non-canonical units the client uses, e.g. { "Temp": "[degF]" }; only the manifest's alternatives. */
  units?: Record<string, string>;
  /** Hourly rows, oldest first, 1..n rows. */
  hours: HourRow[];
  /** A hybrid model's clinical-note embedding (manifest noteEmbedding: dimension, encoder). */
  noteEmbedding?: number[];
}

/**
 * A validated patient, in the one form every reader produces and every consumer reads: a dense
 * matrix of the hours the model uses, every value in the manifest's canonical unit and within
 * bounds (the static weight folded into hour 0, as training reads it).
 */
export interface ValidPatient {
  id?: string | undefined;
  age: number | null;
  sex: Sex | null;
  icuType: 1 | 2 | 3 | 4 | null;
  height: number | null;
  /** Rows received before cutting to the model's last maxHours. */
  hoursReceived: number;
  /** Rows the model reads: the last min(hoursReceived, maxHours). */
  hoursUsed: number;
  /** Row-major [hoursUsed x variables] in manifest order, NaN = missing. */
  values: Float64Array;
  /** 1 for each variable observed in the hours used. */
  observed: Uint8Array;
  /** A hybrid model's note embedding, as sent (float32). */
  noteEmbedding?: Float32Array | undefined;
}

export interface TrajectoryPoint {
  /** Hours of the stay read, 1 to hoursUsed. */
  hour: number;
  probability: number;
}

export interface Contribution {
  /** A manifest variable (e.g. "Lactate") or a descriptor field: age, sex, icuType, height. */
  variable: string;
  /** Probability minus the probability without this variable: in this model, not a cause. */
  effect: number;
}

export interface PredictionResult {
  id?: string;
  probability: number;
  model: { name: string; version: string };
  hoursUsed: number;
  /** True when the stay had more rows than the model's maxHours and only the last ones were used. */
  truncated: boolean;
  /** Variables never observed in the hours used. */
  missingThroughout: string[];
  /** The validated scenario these inputs cover, with its held-out AUROC, or `sparse` (models with coverage rules). */
  inputProfile?: InputProfile;
  /** With explain: the probability after each hour used, the last equal to `probability`. */
  trajectory?: TrajectoryPoint[];
  /** With explain: each variable present, by how much it moves the probability, largest first. */
  contributions?: Contribution[];
}

/** One validation problem, with the JSON path of the offending field. */
export interface FieldIssue {
  path: Array<string | number>;
  message: string;
}
