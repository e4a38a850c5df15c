import { descriptorField, type Manifest, type VariableSpec } from '../model/manifest.js';
import { hourOf } from './binning.js';
import { BuiltStay, patientJson, StayBuilder } from './stay.js';
import type { FieldIssue, PatientInput, ValidPatient } from './types.js';

/**
 * Challenge 2012 records (`Time,Parameter,Value`) cleaned as training/physionet.py cleans them, so a
 * record scored by the CLI gets the tensor it got in training. The rules are models/README.md's "Raw
 * record cleaning"; test/fixtures/skew/ holds the Python output they are checked against.
 */

/** A file in which not one line reads as a challenge record line: not a record at all. */
export class UnreadableRecordError extends Error {
  override readonly name = 'UnreadableRecordError';
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

/** Rule 5 for one raw value of a time series: a recording slip corrected to the canonical unit. */
function corrected(variable: VariableSpec, raw: number): number {
  for (const slip of variable.rawUnitSlips) if (raw > slip.above) return (raw + slip.offset) * slip.scale;
  return raw;
}

/**
 * One record as a validated stay (rules 1-8): lines read, slips corrected, fed to the stay builder,
 * which drops impossible values (rule 6, each noted at its line) and bins by hour. The id is the
 * RecordID, else `fallbackId` (the file name). Throws UnreadableRecordError when no line reads as
 * a record line.
 */
export function readPhysionetRecord(
  text: string,
  manifest: Manifest,
  fallbackId?: string,
): { patient: ValidPatient; dropped: FieldIssue[] } {
  const stay = new StayBuilder(manifest, { outOfRange: 'drop', locate: (i) => [`line ${i + 1}`, 'Value'] });
  const lastMinute = manifest.maxHours * 60;
  const seen = new Set<string>();
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
      // A descriptor's first line counts; -1 is the challenge's "unknown".
      if (seen.has(name)) continue;
      seen.add(name);
      // As Python's str(int(v)): 132539.0 -> "132539".
      if (name === 'RecordID') recordId = value === -1 ? undefined : String(value);
      else stay.descriptor(name, value === -1 ? null : value, i);
      continue;
    }
    const j = stay.column(name);
    if (j < 0 || minutes > lastMinute) continue;
    stay.addAt(hourOf(minutes, manifest), j, corrected(manifest.variables[j] as VariableSpec, value), i);
  }
  if (readableLines === 0) {
    throw new UnreadableRecordError(
      'no line reads as Time,Parameter,Value (hh:mm, a name, a number): not a PhysioNet 2012 record',
    );
  }
  stay.header.id = recordId ?? fallbackId;
  const built = stay.build();
  // Nothing fails a dropping builder; a failure here is a bug, not a record problem.
  if (!built.ok) throw new Error(`a PhysioNet record failed its build: ${built.issues[0]?.message ?? ''}`);
  return { patient: built.patient, dropped: built.dropped };
}

/**
 * readPhysionetRecord as a stay the scoring core takes without validating it again. Dropped values
 * are the cleaning rules at work, as in training: the CLI does not report them.
 */
export function physionetStay(text: string, manifest: Manifest, fallbackId?: string): BuiltStay {
  return new BuiltStay(manifest, readPhysionetRecord(text, manifest, fallbackId).patient);
}

/** A record as the JSON body POST /v1/predict takes for it (values canonical): for tests and scripts. */
export function physionetRecordToPatient(text: string, manifest: Manifest, fallbackId?: string): PatientInput {
  return patientJson(manifest, readPhysionetRecord(text, manifest, fallbackId).patient);
}
