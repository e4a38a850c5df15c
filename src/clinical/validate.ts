import type { z } from 'zod';
import type { Manifest } from '../model/manifest.js';
import type { FieldIssue, PatientInput, ValidPatient } from './types.js';
import {
  noteEmbeddingIssue,
  patientInputSchema,
  unknownMeasurementMessage,
  type PatientInputSchema,
} from './schemas.js';
import { createPatientScanner, type ScanResult } from './scan.js';
import { StayBuilder, stayFromMatrix, ValidatedStay, type StayOutcome } from './stay.js';

export { missingThroughout, observedColumns, validPatient, type PatientHeader } from './stay.js';

/**
 * Turns client input into ValidPatients: every value in the canonical unit, within bounds,
 * the static weight folded into hour 0, rows cut to the model's last maxHours.
 * Pure: no I/O, no logging (messages never contain the offending values).
 */

export type ValidationOutcome = { ok: true; patient: ValidPatient } | { ok: false; issues: FieldIssue[] };

export interface PatientValidator {
  readonly manifest: Manifest;
  readonly schema: PatientInputSchema;
  /** A ValidatedStay (scanned, or built by a reader) of this manifest is valid as it is; another is validated anew. */
  validate(input: unknown): ValidationOutcome;
  /**
   * One patient's JSON text (UTF-8 bytes), read and validated in one pass
   * (src/clinical/scan.ts) into an input for validate(); undefined when the scanner leaves the
   * text to the ordinary path (JSON.parse, then validate), which also reports any problem in it.
   * The bytes must not change afterwards: a ScannedPatient may read them again (raw()).
   */
  scanText(text: Buffer): ScannedPatient | undefined;
  /** The same for a patient object starting at `pos` in a larger text (a request body); `end` is just past it. */
  scanTextAt(text: Buffer, pos: number): { scanned: ScannedPatient; end: number } | undefined;
}

/**
 * A patient already read and validated from its JSON text against one manifest (the scanner's
 * fast path); raw() parses the text when the object is needed after all.
 */
export class ScannedPatient extends ValidatedStay {
  readonly #text: Buffer;
  readonly #start: number;
  readonly #end: number;

  constructor(manifest: Manifest, patient: ValidPatient, text: Buffer, start = 0, end = text.length) {
    super(manifest, patient);
    this.#text = text;
    this.#start = start;
    this.#end = end;
  }

  raw(): unknown {
    return JSON.parse(this.#text.toString('utf8', this.#start, this.#end));
  }
}

/**
 * zod defines a valid patient, but walking it per hourly row costs more than the inference: zod
 * checks all but the rows, the stay builder the rows, and anything either refuses goes through
 * the full schema for the message (test/clinical/validate.test.ts holds both to one answer).
 */
export function createPatientValidator(manifest: Manifest): PatientValidator {
  const schema = patientInputSchema(manifest);
  const headerSchema = patientInputSchema(manifest, { rows: 'skip' });
  // The byte scanner knows no note embeddings: a hybrid model's patients take the ordinary path.
  const scanner = manifest.noteEmbedding === undefined ? createPatientScanner(manifest) : undefined;
  const full = (input: unknown): ValidationOutcome => {
    const parsed = schema.safeParse(input);
    if (!parsed.success) return { ok: false, issues: toFieldIssues(manifest, parsed.error.issues) };
    const built = buildJsonStay(manifest, parsed.data as PatientInput);
    if (built === undefined) throw new Error('the stay builder refused rows the schema accepted');
    return built.ok ? { ok: true, patient: built.patient } : built;
  };
  const scanned = (result: ScanResult): ValidPatient =>
    stayFromMatrix(manifest, result.header, result.rows, result.values, result.observed, result.header.weight);
  return {
    manifest,
    schema,
    validate(input: unknown): ValidationOutcome {
      if (input instanceof ValidatedStay) {
        if (input.manifest === manifest) {
          // Readers other than JSON (FHIR, PhysioNet, long-form CSV) build stays without the schema, which
          // holds the note embedding rule: a hybrid model's stay without one must be refused, not scored.
          const note = noteEmbeddingIssue(manifest, input.patient.noteEmbedding);
          if (note === undefined) return { ok: true, patient: input.patient };
          return { ok: false, issues: [{ path: ['noteEmbedding'], message: note }] };
        }
        input = input.raw();
      }
      const header = headerSchema.safeParse(input);
      if (!header.success) return full(input);
      const built = buildJsonStay(manifest, header.data as PatientInput);
      if (built === undefined || !built.ok) return full(input);
      return { ok: true, patient: built.patient };
    },
    scanText(text: Buffer): ScannedPatient | undefined {
      const result = scanner?.scan(text);
      return result && new ScannedPatient(manifest, scanned(result), text);
    },
    scanTextAt(text: Buffer, pos: number): { scanned: ScannedPatient; end: number } | undefined {
      const result = scanner?.scanAt(text, pos);
      if (result === undefined) return undefined;
      return { scanned: new ScannedPatient(manifest, scanned(result), text, pos, result.end), end: result.end };
    },
  };
}

/**
 * A JSON body's patient (its fields besides the rows already checked) through the stay builder:
 * row t is hour t, each key a variable, problems at their JSON paths. Undefined when a row is not
 * what the row schema accepts, which the full schema then names.
 */
function buildJsonStay(manifest: Manifest, patient: PatientInput): StayOutcome | undefined {
  const V = manifest.variables.length;
  const units = patient.units === undefined ? [] : Object.entries(patient.units);
  const stay = new StayBuilder(manifest, {
    outOfRange: 'reject',
    locate: (at, column) =>
      column === 'unit'
        ? ['units', units[at]?.[0] ?? '']
        : ['hours', Math.floor(at / V), manifest.variables[at % V]?.name ?? ''],
  });
  for (let k = 0; k < units.length; k++) {
    const [name, unit] = units[k] as [string, string];
    if (!stay.unit(name, unit, k)) return stay.build();
  }
  const rows: readonly unknown[] = patient.hours;
  for (let t = 0; t < rows.length; t++) {
    const row = rows[t];
    if (
      typeof row !== 'object' ||
      row === null ||
      Array.isArray(row) ||
      Object.getPrototypeOf(row) !== Object.prototype
    )
      return undefined;
    const keys = Object.keys(row);
    for (let k = 0; k < keys.length; k++) {
      const key = keys[k] as string;
      const j = stay.column(key);
      if (j < 0) return undefined;
      const value = (row as Record<string, unknown>)[key];
      if (value === null || value === undefined) continue;
      if (typeof value !== 'number' || !Number.isFinite(value)) return undefined;
      stay.addAt(t, j, value, t * V + j);
    }
  }
  stay.extend(rows.length);
  const { header } = stay;
  header.id = patient.id;
  header.age = patient.age;
  header.sex = patient.sex;
  header.icuType = patient.icuType;
  header.height = patient.height;
  header.weight = patient.weight;
  header.noteEmbedding = patient.noteEmbedding;
  return stay.build();
}

/** zod issues -> FieldIssues; an unrecognised-keys issue becomes one issue per key, at the key's own path. */
export function toFieldIssues(manifest: Manifest, issues: readonly z.core.$ZodIssue[]): FieldIssue[] {
  const out: FieldIssue[] = [];
  for (const issue of issues) {
    const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
    if (issue.code === 'unrecognized_keys') {
      const inRow = path.length === 2 && path[0] === 'hours';
      for (const key of issue.keys) {
        out.push({
          path: [...path, key],
          message: inRow ? unknownMeasurementMessage(manifest, key) : `unknown field "${key}"`,
        });
      }
      continue;
    }
    out.push({ path, message: issue.message });
  }
  return out;
}
