import {
  categoricalDescriptor,
  descriptorField,
  DESCRIPTOR_FIELDS,
  numericDescriptor,
  type DescriptorField,
  type Manifest,
  type VariableSpec,
} from '../model/manifest.js';
import { matrixRows, TimeOrderedBins } from './binning.js';
import { boundsMessage, MAX_HOURS_RECEIVED, unknownMeasurementMessage } from './schemas.js';
import type { FieldIssue, PatientInput, Sex, ValidPatient } from './types.js';
import { unitConversion, acceptedUnits, type UnitConverter } from './units.js';

/**
 * The stay builder the readers end in (JSON body, NDJSON line, PhysioNet record, long-form CSV,
 * FHIR): measurements (hour, variable, value, unit) and descriptors in, unit conversion, hourly
 * binning, one range check, the ValidPatient out; the JSON byte scanner (scan.ts), the fast path,
 * checks the same bounds as it reads and ends in stayFromMatrix. Problems are located in the
 * reader's own terms by its `locate` (a JSON path, a CSV row, a record line, a FHIR expression).
 */

export interface StayOptions {
  /**
   * A value outside its plausible range: `reject` fails the stay (a client's JSON or CSV), `drop`
   * leaves it out and notes it (PhysioNet records, as training cleans them, rule 6; FHIR Observations).
   */
  outOfRange: 'reject' | 'drop';
  /** Problems kept per stay (default 20). */
  maxIssues?: number;
  /** Where the value at source position `at` is, in the reader's terms; `column` names what is wrong. */
  locate?: (at: number, column: 'value' | 'variable' | 'unit' | 'time') => FieldIssue['path'];
}

export type StayOutcome =
  { ok: true; patient: ValidPatient; dropped: FieldIssue[] } | { ok: false; issues: FieldIssue[] };

/** Problems kept per stay by default: one is enough to fix a record, thousands flood a report. */
const MAX_ISSUES = 20;
const nowhere = (): FieldIssue['path'] => [];

interface Layout {
  columns: Map<string, number>;
  mins: Float64Array;
  maxs: Float64Array;
  weightColumn: number;
}

const layouts = new WeakMap<Manifest, Layout>();

function layoutOf(manifest: Manifest): Layout {
  let layout = layouts.get(manifest);
  if (layout === undefined) {
    const names = manifest.variables.map((v) => v.name);
    const weight = manifest.staticWeightVariable;
    layout = {
      columns: new Map(names.map((name, j) => [name, j])),
      mins: Float64Array.from(manifest.variables, (v) => v.bounds.min),
      maxs: Float64Array.from(manifest.variables, (v) => v.bounds.max),
      weightColumn: weight === undefined ? -1 : names.indexOf(weight),
    };
    layouts.set(manifest, layout);
  }
  return layout;
}

/** The descriptors of a stay besides its measurements (the JSON body's names; null = unknown). */
export interface StayHeader {
  id?: string | undefined;
  age?: number | null | undefined;
  sex?: Sex | null | undefined;
  icuType?: 1 | 2 | 3 | 4 | null | undefined;
  height?: number | null | undefined;
  /** Admission weight, in the unit named for the weight variable: its observation at hour 0 (as training reads it). */
  weight?: number | null | undefined;
  noteEmbedding?: readonly number[] | Float32Array | undefined;
}

export class StayBuilder {
  readonly #manifest: Manifest;
  readonly #layout: Layout;
  readonly #bins: TimeOrderedBins;
  readonly #reject: boolean;
  readonly #locate: NonNullable<StayOptions['locate']>;
  readonly #maxIssues: number;
  /** By column, once a unit is named: its converter (undefined: canonical), and the unit. */
  #converters: Array<UnitConverter | undefined> | undefined;
  #units: Map<number, string> | undefined;
  readonly #issues: FieldIssue[] = [];
  readonly #dropped: FieldIssue[] = [];
  readonly header: StayHeader = {};
  #arrival = 0;

  constructor(manifest: Manifest, options: StayOptions) {
    this.#manifest = manifest;
    this.#layout = layoutOf(manifest);
    this.#bins = new TimeOrderedBins(manifest);
    this.#reject = options.outOfRange === 'reject';
    this.#locate = options.locate ?? nowhere;
    this.#maxIssues = options.maxIssues ?? MAX_ISSUES;
  }

  /**
   * The range rule: true when a canonical value of a variable (or of a numeric descriptor, by its
   * manifest name or field) is within the manifest's bounds, inclusive. False for any other name.
   */
  inRange(name: string, canonical: number): boolean {
    const j = this.#layout.columns.get(name);
    if (j !== undefined) return this.#inBounds(j, canonical);
    const field = descriptorOf(name);
    const bounds = field === 'age' || field === 'height' ? numericDescriptor(this.#manifest, field)?.bounds : undefined;
    return bounds !== undefined && canonical >= bounds.min && canonical <= bounds.max;
  }

  #inBounds(j: number, canonical: number): boolean {
    return canonical >= (this.#layout.mins[j] as number) && canonical <= (this.#layout.maxs[j] as number);
  }

  /** Hours so far: from 0 to the last one with a value (at least one), or as many as extend() asked for. */
  get hours(): number {
    return this.#bins.hours;
  }

  /** The manifest column of a variable, or -1. */
  column(variable: string): number {
    return this.#layout.columns.get(variable) ?? -1;
  }

  /** A problem that fails the stay, at the reader's own location. */
  fail(path: FieldIssue['path'], message: string): void {
    if (this.#issues.length < this.#maxIssues) this.#issues.push({ path, message });
  }

  /** Problems so far. */
  get issueCount(): number {
    return this.#issues.length;
  }

  /**
   * The values of `variable` from here on come in `unit` (a JSON body's units.<name>, a CSV unit
   * column). False, with the problem recorded at `at`, when the unit is not accepted, the variable
   * is not an input, or another unit was named for it before (one unit per variable and stay).
   */
  unit(variable: string, unit: string, at = -1): boolean {
    const j = this.column(variable);
    if (j < 0) {
      this.fail(this.#locate(at, 'unit'), `units given for "${variable}", which is not an input of this model`);
      return false;
    }
    const spec = this.#manifest.variables[j] as VariableSpec;
    const previous = this.#units?.get(j);
    if (previous !== undefined) {
      if (previous === unit) return true;
      this.fail(
        this.#locate(at, 'unit'),
        `${variable} is given in both ${JSON.stringify(previous)} and ${JSON.stringify(unit)}; use one unit per variable and patient`,
      );
      return false;
    }
    const conversion = unitConversion(spec, unit);
    if (!conversion.ok) {
      // The message names the variable: a reader's location (a CSV row and column) may not.
      this.fail(
        this.#locate(at, 'unit'),
        `unit not accepted for ${variable}: ${
          conversion.problem ?? `not a UCUM unit convertible to ${spec.unit} (e.g. ${acceptedUnits(spec).join(', ')})`
        }`,
      );
      return false;
    }
    (this.#units ??= new Map()).set(j, unit);
    this.#converters ??= new Array<UnitConverter | undefined>(this.#manifest.variables.length);
    if (unit !== spec.unit) this.#converters[j] = conversion.convert;
    return true;
  }

  /**
   * One measurement: `hour` since admission (hourOf in binning.ts for a time), a manifest variable,
   * its value in the unit named by unit() (else the canonical one). `at` is its position in the
   * source, for locate(); `order` ranks an hour's values of a `last` variable (default: arrival).
   */
  add(hour: number, variable: string, value: number, at = -1, order = this.#arrival): void {
    const j = this.#layout.columns.get(variable);
    if (j === undefined) {
      if (this.#reject) this.fail(this.#locate(at, 'variable'), unknownMeasurementMessage(this.#manifest, variable));
      return;
    }
    this.addAt(hour, j, value, at, order);
  }

  /** add() by the variable's manifest column. */
  addAt(hour: number, j: number, value: number, at = -1, order = this.#arrival): void {
    this.#arrival++;
    if (!(hour >= 0 && hour < MAX_HOURS_RECEIVED)) {
      this.fail(this.#locate(at, 'time'), `time is after the longest stay read, ${MAX_HOURS_RECEIVED} hours`);
      return;
    }
    const convert = this.#converters?.[j];
    const canonical = convert === undefined ? value : convert(value);
    if (!this.#inBounds(j, canonical)) {
      this.#outOfRange(j, at);
      return;
    }
    this.#bins.set(hour, j, canonical, order);
  }

  /** The stay has at least `hours` hours, though the last ones hold no value (a JSON body's rows). */
  extend(hours: number): void {
    if (hours > MAX_HOURS_RECEIVED) this.fail([], `more than the longest stay read, ${MAX_HOURS_RECEIVED} hours`);
    else this.#bins.extend(hours);
  }

  /**
   * A descriptor by its manifest static name (as records name them) or its API field, in any case;
   * `weight` is the weight variable's admission value. Codes and labels are the manifest's. False
   * when `name` is no descriptor; a value the manifest does not accept is a problem at `at`
   * (reject) or unknown (drop).
   */
  descriptor(name: string, value: number | string | null, at = -1): boolean {
    const field = descriptorOf(name);
    if (field === undefined) return false;
    if (value === null) {
      this.header[field] = null;
      return true;
    }
    const problem = this.#setDescriptor(field, value);
    if (problem !== undefined) {
      if (this.#reject) this.fail(this.#locate(at, 'value'), problem);
      else {
        this.header[field] = null;
        this.#note(this.#locate(at, 'value'), problem);
      }
    }
    return true;
  }

  /** The header's field from a descriptor's value, or what is wrong with the value. */
  #setDescriptor(field: DescriptorField | 'weight', value: number | string): string | undefined {
    const manifest = this.#manifest;
    const number = typeof value === 'number' ? value : value.trim() === '' ? Number.NaN : Number(value);
    if (field === 'sex') {
      const spec = categoricalDescriptor(manifest, 'sex');
      const labels = spec?.labels ?? ['female', 'male'];
      const codes = spec?.categories ?? [0, 1];
      const label = typeof value === 'string' && labels.includes(value.toLowerCase()) ? value.toLowerCase() : undefined;
      const sex = label ?? labels[codes.indexOf(number)];
      if (sex !== 'female' && sex !== 'male')
        return `sex must be ${labels.map((l, i) => `${l} or ${codes[i]}`).join(', ')}`;
      this.header.sex = sex;
      return undefined;
    }
    if (!Number.isFinite(number)) return `${field} is not a number`;
    if (field === 'icuType') {
      const codes = categoricalDescriptor(manifest, 'icuType')?.categories ?? [1, 2, 3, 4];
      if (!codes.includes(number) || !(number === 1 || number === 2 || number === 3 || number === 4))
        return `icuType must be one of ${codes.join(', ')}`;
      this.header.icuType = number;
      return undefined;
    }
    if (field === 'weight') {
      this.header.weight = number;
      return undefined;
    }
    const bounds = numericDescriptor(manifest, field)?.bounds;
    if (bounds !== undefined && !this.inRange(field, number))
      return `${field} outside the range this model reads, ${bounds.min} to ${bounds.max}`;
    this.header[field] = number;
    return undefined;
  }

  #outOfRange(j: number, at: number): void {
    // A dropped value past the cap of noted ones costs no message (PhysioNet records drop many).
    if (!this.#reject && this.#dropped.length >= MAX_ISSUES) return;
    const spec = this.#manifest.variables[j] as VariableSpec;
    const unit = this.#units?.get(j);
    const message = boundsMessage(spec, unit !== undefined && unit !== spec.unit, unit !== undefined);
    if (this.#reject) this.fail(this.#locate(at, 'value'), message);
    else this.#note(this.#locate(at, 'value'), message);
  }

  #note(path: FieldIssue['path'], message: string): void {
    if (this.#dropped.length < MAX_ISSUES) this.#dropped.push({ path, message });
  }

  /** The validated stay, or every problem found (each at its place in the source). */
  build(): StayOutcome {
    const { weightColumn: wj } = this.#layout;
    const weight = this.header.weight;
    let admissionWeight: number | undefined;
    if (wj >= 0 && typeof weight === 'number') {
      // The range check is the weight variable's, in the unit named for it.
      const convert = this.#converters?.[wj];
      const canonical = convert === undefined ? weight : convert(weight);
      if (this.#inBounds(wj, canonical)) admissionWeight = canonical;
      else {
        const spec = this.#manifest.variables[wj] as VariableSpec;
        const message = boundsMessage(spec, false, this.#units?.has(wj) === true);
        if (this.#reject) this.fail(['weight'], message);
        else this.#note(['weight'], message);
      }
    }
    if (this.#issues.length > 0) return { ok: false, issues: this.#issues };
    const patient = stayFromMatrix(
      this.#manifest,
      this.header,
      this.#bins.hours,
      this.#bins.matrix(),
      undefined,
      admissionWeight,
    );
    return { ok: true, patient, dropped: this.#dropped };
  }
}

const fieldsByLowerCase = new Map<string, DescriptorField>(DESCRIPTOR_FIELDS.map((f) => [f.toLowerCase(), f]));

/**
 * The header field a descriptor name stands for: the manifest's static name, the API field in any
 * case (a CSV's Sex), or `weight` (the JSON body's; Weight is the series).
 */
function descriptorOf(name: string): DescriptorField | 'weight' | undefined {
  return name === 'weight' ? 'weight' : (descriptorField(name) ?? fieldsByLowerCase.get(name.toLowerCase()));
}

/**
 * A ValidPatient from a matrix of `received` hours whose values are canonical and within bounds,
 * cut to the model's last maxHours. `observed`: the scanner's flags for the hours used, when it has
 * them. `weight`: the admission weight, canonical and within bounds.
 */
export function stayFromMatrix(
  manifest: Manifest,
  header: StayHeader,
  received: number,
  all: Float64Array,
  observed?: Uint8Array,
  weight?: number | null,
): ValidPatient {
  const V = manifest.variables.length;
  const used = Math.min(received, manifest.maxHours);
  const wj = layoutOf(manifest).weightColumn;
  // Training reads the Weight descriptor as an observation of the Weight series at hour 0, when that hour has none.
  if (wj >= 0 && typeof weight === 'number' && Number.isNaN(all[wj] as number)) {
    all[wj] = weight;
    // Hour 0 is among the hours used only when none were cut.
    if (observed !== undefined && used === received) observed[wj] = 1;
  }
  const values = used === received ? all : all.slice((received - used) * V);
  const note = header.noteEmbedding;
  return validPatient(
    {
      id: header.id,
      age: header.age ?? null,
      sex: header.sex ?? null,
      icuType: header.icuType ?? null,
      height: header.height ?? null,
      noteEmbedding: note === undefined ? undefined : Float32Array.from(note),
    },
    received,
    used,
    values,
    observed ?? observedColumns(values, used, V),
  );
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
  const missing: string[] = [];
  manifest.variables.forEach((v, j) => {
    if (patient.observed[j] === 0) missing.push(v.name);
  });
  return missing;
}

/**
 * A stay already built against one manifest. It stands for the parsed JSON object wherever an
 * unvalidated input is passed (a request body's patients, a stream's or a file's records);
 * raw() gives that object when it is needed after all (another model version reads it).
 */
export abstract class ValidatedStay {
  constructor(
    readonly manifest: Manifest,
    readonly patient: ValidPatient,
  ) {}

  /** The client's id, as a parsed object would carry it. */
  get id(): string | undefined {
    return this.patient.id;
  }

  /** The object JSON.parse would give for this stay's JSON form. */
  abstract raw(): unknown;
}

/** A stay built by a reader other than JSON: its JSON form is made from the patient when asked. */
export class BuiltStay extends ValidatedStay {
  raw(): PatientInput {
    return patientJson(this.manifest, this.patient);
  }
}

/**
 * A ValidPatient as the JSON body that validates to it (values canonical, units omitted, the weight
 * already in hour 0): what a reader's stay looks like to a client, and to another model version.
 */
export function patientJson(manifest: Manifest, patient: ValidPatient): PatientInput {
  return {
    ...(patient.id === undefined ? {} : { id: patient.id }),
    age: patient.age,
    sex: patient.sex,
    icuType: patient.icuType,
    height: patient.height,
    hours: matrixRows(manifest, patient.values, patient.hoursUsed),
    ...(patient.noteEmbedding === undefined ? {} : { noteEmbedding: Array.from(patient.noteEmbedding) }),
  };
}
