import {
  categoricalDescriptor,
  descriptorField,
  DESCRIPTORS,
  type Manifest,
  type StaticSpec,
  type VariableSpec,
} from '../model/manifest.js';
import { binObservations, type TimedObservation } from './binning.js';
import type { PatientInput } from './types.js';

/**
 * Challenge 2012 records (`Time,Parameter,Value`) cleaned as training/physionet.py cleans them, so a
 * record scored by the CLI gets the tensor it got in training. The rules are models/README.md's "Raw
 * record cleaning"; test/fixtures/skew/ holds the Python output they are checked against.
 */

/** A file in which not one line reads as a challenge record line: not a record at all. */
export class UnreadableRecordError extends Error {
  override readonly name = 'UnreadableRecordError';
}

export interface PhysionetRecord {
  /** The RecordID line's value, when there is one. */
  recordId: string | undefined;
  /** Cleaned descriptors by static name (null = unknown); absent ones are unknown too. */
  statics: Map<string, number | null>;
  /** Cleaned observations in canonical units, in file order. */
  observations: TimedObservation[];
  /** Lines that parsed as time, parameter and number (known parameter or not). */
  readableLines: number;
}

// Python's str.splitlines() boundaries, so that both pipelines see the same lines.
// eslint-disable-next-line no-control-regex -- the separators are what it matches
const LINE_BREAK = /\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]/;
const TIME = /^(\d+):(\d{2})$/;
// What Python's float() accepts, less the spellings (inf, nan, 1_000) that are not finite or never occur.
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function parseTime(text: string): number | undefined {
  const match = TIME.exec(text.trim());
  if (!match) return undefined;
  const minutes = Number(match[2]);
  if (minutes >= 60) return undefined;
  return Number(match[1]) * 60 + minutes;
}

function parseValue(text: string): number | undefined {
  const t = text.trim();
  if (!DECIMAL.test(t)) return undefined;
  const v = Number(t);
  return Number.isFinite(v) ? v : undefined;
}

/** Rules 5 and 6 for one raw value of a time series: its canonical value, or undefined when dropped. */
export function cleanRawValue(variable: VariableSpec, raw: number): number | undefined {
  let value = raw;
  for (const slip of variable.rawUnitSlips) {
    if (value > slip.above) {
      value = (value + slip.offset) * slip.scale;
      break;
    }
  }
  if (value < variable.bounds.min || value > variable.bounds.max) return undefined;
  return value;
}

function cleanStatic(spec: StaticSpec, value: number): number | null {
  if (value === -1) return null;
  if (spec.kind === 'numeric') return value >= spec.bounds.min && value <= spec.bounds.max ? value : null;
  return spec.categories.includes(value) ? value : null;
}

/** Reads and cleans one record (rules 1-6); binning (rule 7) is left to physionetRecordToPatient. */
export function parsePhysionetRecord(text: string, manifest: Manifest): PhysionetRecord {
  const variables = new Map(manifest.variables.map((v) => [v.name, v]));
  const staticSpecs = new Map(manifest.statics.map((s) => [s.name, s]));
  const lastMinute = manifest.maxHours * 60;
  const statics = new Map<string, number | null>();
  const seen = new Set<string>();
  const observations: TimedObservation[] = [];
  let recordId: string | undefined;
  let readableLines = 0;
  const lines = text.split(LINE_BREAK);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || (i === 0 && line.toLowerCase().startsWith('time'))) continue;
    const parts = line.split(',');
    if (parts.length !== 3) continue;
    const minutes = parseTime(parts[0]!);
    const name = parts[1]!.trim();
    const value = parseValue(parts[2]!);
    if (minutes === undefined || value === undefined) continue;
    readableLines++;
    if (name === 'RecordID' || descriptorField(name) !== undefined) {
      if (seen.has(name)) continue;
      seen.add(name);
      if (name === 'RecordID') {
        // As Python's str(int(v)): 132539.0 -> "132539".
        if (value !== -1) recordId = String(value);
      } else {
        const spec = staticSpecs.get(name);
        if (spec) statics.set(name, cleanStatic(spec, value));
      }
      continue;
    }
    const spec = variables.get(name);
    if (!spec || minutes > lastMinute) continue;
    const cleaned = cleanRawValue(spec, value);
    if (cleaned !== undefined) observations.push({ minutes, variable: name, value: cleaned });
  }
  return { recordId, statics, observations, readableLines };
}

/** The label of a categorical descriptor's code (sex 0 -> "female"), as the API names it. */
function labelOf(manifest: Manifest, field: 'sex' | 'icuType', code: number | null | undefined): string | null {
  if (code === null || code === undefined) return null;
  const spec = categoricalDescriptor(manifest, field);
  if (!spec) return null;
  return spec.labels[spec.categories.indexOf(code)] ?? null;
}

/**
 * A record as the patient the service validates: cleaned, then binned into hourly rows by
 * the service's own binning. The id is the RecordID, else `fallbackId` (the file name).
 * Throws UnreadableRecordError when no line of the file reads as a record line.
 */
export function physionetRecordToPatient(text: string, manifest: Manifest, fallbackId?: string): PatientInput {
  const record = parsePhysionetRecord(text, manifest);
  if (record.readableLines === 0) {
    throw new UnreadableRecordError(
      'no line reads as Time,Parameter,Value (hh:mm, a name, a number): not a PhysioNet 2012 record',
    );
  }
  const sex = labelOf(manifest, 'sex', record.statics.get(DESCRIPTORS.sex));
  const icuType = record.statics.get(DESCRIPTORS.icuType) ?? null;
  const id = record.recordId ?? fallbackId;
  return {
    ...(id === undefined ? {} : { id }),
    age: record.statics.get(DESCRIPTORS.age) ?? null,
    sex: sex === 'female' || sex === 'male' ? sex : null,
    icuType: icuType === 1 || icuType === 2 || icuType === 3 || icuType === 4 ? icuType : null,
    height: record.statics.get(DESCRIPTORS.height) ?? null,
    hours: binObservations(record.observations, manifest),
  };
}
