import type { z } from 'zod';
import type { Manifest, VariableSpec } from '../model/manifest.js';
import type { FieldIssue, PatientInput, ValidPatient } from './types.js';
import { patientInputSchema, unknownMeasurementMessage, type PatientInputSchema } from './schemas.js';
import { converterFor } from './units.js';
import { createPatientScanner, type ScannedHeader } from './scan.js';

/**
 * Turns client input into ValidPatients: every value in the canonical unit, within bounds,
 * the static weight folded into hour 0, rows cut to the model's last maxHours.
 * Pure: no I/O, no logging (messages never contain the offending values).
 */

export type ValidationOutcome = { ok: true; patient: ValidPatient } | { ok: false; issues: FieldIssue[] };

export interface PatientValidator {
  readonly manifest: Manifest;
  readonly schema: PatientInputSchema;
  /** A ScannedPatient of this manifest is valid as it is; of another manifest, its text is parsed and validated. */
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
 * A patient already read and validated from its JSON text against one manifest. It stands
 * for the parsed object wherever an unvalidated input is passed (a request body's patients,
 * a stream's records); raw() gives that object when it is needed after all.
 */
export class ScannedPatient {
  readonly #text: Buffer;
  readonly #start: number;
  readonly #end: number;

  constructor(
    readonly manifest: Manifest,
    readonly patient: ValidPatient,
    text: Buffer,
    start = 0,
    end = text.length,
  ) {
    this.#text = text;
    this.#start = start;
    this.#end = end;
  }

  /** The object JSON.parse gives for the patient's text. */
  raw(): unknown {
    return JSON.parse(this.#text.toString('utf8', this.#start, this.#end));
  }
}

/**
 * zod defines a valid patient, but walking it per hourly row costs more than the inference: zod
 * checks all but the rows, a plain loop the rows, and anything it refuses goes through the full
 * schema for the message (test/clinical/validate.test.ts holds both to one answer).
 */
export function createPatientValidator(manifest: Manifest): PatientValidator {
  const schema = patientInputSchema(manifest);
  const headerSchema = patientInputSchema(manifest, { rows: 'skip' });
  const rowReader = createRowReader(manifest);
  // The byte scanner knows no note embeddings: a hybrid model's patients take the ordinary path.
  const scanner = manifest.noteEmbedding === undefined ? createPatientScanner(manifest) : undefined;
  const full = (input: unknown): ValidationOutcome => {
    const parsed = schema.safeParse(input);
    if (!parsed.success) return { ok: false, issues: toFieldIssues(manifest, parsed.error.issues) };
    const patient = parsed.data as PatientInput;
    const rows = rowReader(patient.hours, patient.units ?? {});
    if (!rows) throw new Error('row reader refused rows the schema accepted');
    return { ok: true, patient: toValidPatient(manifest, patient, patient.hours.length, rows) };
  };
  return {
    manifest,
    schema,
    validate(input: unknown): ValidationOutcome {
      if (input instanceof ScannedPatient) {
        if (input.manifest === manifest) return { ok: true, patient: input.patient };
        input = input.raw();
      }
      const header = headerSchema.safeParse(input);
      if (!header.success) return full(input);
      const patient = header.data as PatientInput;
      const rows = rowReader(patient.hours, patient.units ?? {});
      if (!rows) return full(input);
      return { ok: true, patient: toValidPatient(manifest, patient, patient.hours.length, rows) };
    },
    scanText(text: Buffer): ScannedPatient | undefined {
      const scanned = scanner?.scan(text);
      return (
        scanned &&
        new ScannedPatient(
          manifest,
          toValidPatient(manifest, scanned.header, scanned.rows, scanned.values, scanned.observed),
          text,
        )
      );
    },
    scanTextAt(text: Buffer, pos: number): { scanned: ScannedPatient; end: number } | undefined {
      const scanned = scanner?.scanAt(text, pos);
      if (scanned === undefined) return undefined;
      const patient = toValidPatient(manifest, scanned.header, scanned.rows, scanned.values, scanned.observed);
      return { scanned: new ScannedPatient(manifest, patient, text, pos, scanned.end), end: scanned.end };
    },
  };
}

type RowReader = (rows: readonly unknown[], units: Record<string, string>) => Float64Array | undefined;

/**
 * Reads hourly rows into a dense canonical matrix [rows x variables] (NaN = missing), or
 * undefined when a row would fail the row schema or the bounds. One typed array per stay, not
 * an object per hour: per-row objects cost more than the inference.
 */
function createRowReader(manifest: Manifest): RowReader {
  const specs: VariableSpec[] = manifest.variables;
  const index = new Map(specs.map((v, j) => [v.name, j]));
  const V = specs.length;
  const mins = Float64Array.from(specs, (v) => v.bounds.min);
  const maxs = Float64Array.from(specs, (v) => v.bounds.max);
  return (rows, units) => {
    const converters = new Array<((v: number) => number) | null>(V).fill(null);
    for (const [name, unit] of Object.entries(units)) {
      const j = index.get(name);
      const spec = j === undefined ? undefined : specs[j];
      const convert = spec ? converterFor(spec, unit) : undefined;
      if (j === undefined || !convert) return undefined;
      converters[j] = unit === spec?.unit ? null : convert;
    }
    const values = new Float64Array(rows.length * V).fill(Number.NaN);
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
        const j = index.get(key);
        if (j === undefined) return undefined;
        const value = (row as Record<string, unknown>)[key];
        if (value === null || value === undefined) continue;
        if (typeof value !== 'number' || !Number.isFinite(value)) return undefined;
        const convert = converters[j];
        const canonical = convert ? convert(value) : value;
        if (!(canonical >= (mins[j] as number) && canonical <= (maxs[j] as number))) return undefined;
        values[t * V + j] = canonical;
      }
    }
    return values;
  };
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

/** The patient fields validation reads besides the rows (a validated PatientInput, or what the scanner read). */
type Header = Omit<PatientInput, 'hours'> | ScannedHeader;

/** Per manifest, once: variable names and the column of the static weight (-1 if none). */
const layouts = new WeakMap<Manifest, { names: string[]; weightColumn: number }>();

function layoutOf(manifest: Manifest): { names: string[]; weightColumn: number } {
  let layout = layouts.get(manifest);
  if (layout === undefined) {
    const names = manifest.variables.map((v) => v.name);
    const weightVar = manifest.staticWeightVariable;
    layout = { names, weightColumn: weightVar === undefined ? -1 : names.indexOf(weightVar) };
    layouts.set(manifest, layout);
  }
  return layout;
}

/** `observed`: the scanner's flags for the hours used, updated here for the weight; else read from the matrix. */
function toValidPatient(
  manifest: Manifest,
  input: Header,
  received: number,
  all: Float64Array,
  observed?: Uint8Array,
): ValidPatient {
  const { names, weightColumn: wj } = layoutOf(manifest);
  const V = names.length;
  const used = Math.min(received, manifest.maxHours);
  // Training reads the Weight descriptor as an observation of the Weight series at hour 0.
  if (wj >= 0 && typeof input.weight === 'number' && Number.isNaN(all[wj] as number)) {
    const spec = manifest.variables[wj] as VariableSpec;
    const convert = converterFor(spec, 'units' in input ? input.units?.[spec.name] : undefined);
    all[wj] = convert ? convert(input.weight) : input.weight;
    // Hour 0 is among the hours used only when none were cut.
    if (observed !== undefined && used === received) observed[wj] = 1;
  }
  const values = used === received ? all : all.slice((received - used) * V);
  const header = {
    id: input.id,
    age: input.age ?? null,
    sex: input.sex ?? null,
    icuType: input.icuType ?? null,
    height: input.height ?? null,
    noteEmbedding:
      'noteEmbedding' in input && input.noteEmbedding !== undefined
        ? Float32Array.from(input.noteEmbedding)
        : undefined,
  };
  return validPatient(header, received, used, values, observed ?? observedColumns(values, used, V));
}

export type PatientHeader = Pick<ValidPatient, 'id' | 'age' | 'sex' | 'icuType' | 'height' | 'noteEmbedding'>;

/** Every ValidPatient is made here, with the same keys in the same order: one hidden class for the hot paths. */
export function validPatient(
  header: PatientHeader,
  hoursReceived: number,
  hoursUsed: number,
  values: Float64Array,
  observed: Uint8Array,
): ValidPatient {
  return {
    id: header.id,
    age: header.age,
    sex: header.sex,
    icuType: header.icuType,
    height: header.height,
    hoursReceived,
    hoursUsed,
    values,
    observed,
    noteEmbedding: header.noteEmbedding,
  };
}

/**
 * 1 for each column of the [hours x V] matrix with a value (not NaN). Column by column with an
 * early exit: most variables are seen in the first hours, so this reads a few cells per
 * variable rather than the whole matrix.
 */
export function observedColumns(values: Float64Array, hours: number, V: number): Uint8Array {
  const seen = new Uint8Array(V);
  for (let j = 0; j < V; j++) {
    for (let i = j, end = hours * V; i < end; i += V) {
      if (values[i] === values[i]) {
        seen[j] = 1;
        break;
      }
    }
  }
  return seen;
}

/** Variables never observed in the hours used (what the result reports as missing throughout). */
export function missingThroughout(manifest: Manifest, patient: ValidPatient): string[] {
  const { names } = layoutOf(manifest);
  const missing: string[] = [];
  for (let j = 0; j < names.length; j++) if (patient.observed[j] === 0) missing.push(names[j] as string);
  return missing;
}
