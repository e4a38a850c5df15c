import { hourOf } from '../clinical/binning.js';
import { MAX_HOURS_RECEIVED, MAX_ID_LENGTH } from '../clinical/schemas.js';
import { BuiltStay, StayBuilder } from '../clinical/stay.js';
import type { PatientInput, Sex } from '../clinical/types.js';
import { numericDescriptor, type Manifest } from '../model/manifest.js';
import { ICU_TYPE_SYSTEM, LOINC, VENTILATOR_OBSERVATION_CODES } from './codes.js';
import { refersToSubject, type Gathered, type GatheredResource } from './gather.js';
import { IssueCollector } from './issues.js';
import { FhirInputError, type InputIssue } from './outcome.js';
import {
  encounterSchema,
  observationSchema,
  patientSchema,
  type CodeableConcept,
  type Encounter,
  type Observation,
  type Patient,
} from './resources.js';
import { parseFhirDate, parseFhirDateTime, completedYears } from './time.js';
import { resolveUnit, ucumCodeOf } from './ucum.js';
import { codeIndex, resolveCode, type CodeIndex } from './variables.js';

/**
 * One patient's FHIR resources -> the stay builder every other reader ends in. The rules
 * (time zero, prediction time, binning, which observations count) are the OpenAPI description in
 * src/api/fhir.ts; every observation not used is reported, never dropped silently.
 */

/** Statuses whose value stands (R4 ObservationStatus); registered/cancelled/entered-in-error/unknown do not. */
const USABLE_STATUS = new Set(['final', 'amended', 'corrected', 'preliminary']);

export interface MappingOptions {
  manifest: Manifest;
  /** The time of the prediction (RiskAssessment.occurrenceDateTime), when the caller gives one. */
  predictionTime?: Date;
  /** The wall clock (default: the given predictionTime, else the system clock). */
  now?: Date;
  /** Data whose prediction time is older than this before now get a warning (default: never). */
  staleAfterHours?: number;
}

export interface MappedPatient {
  /** The built stay, for the scoring core. */
  stay: BuiltStay;
  /** Reference to the Patient, for RiskAssessment.subject. */
  subject: { reference?: string; display?: string };
  encounter?: { reference: string };
  timeZero: Date;
  timeZeroSource: 'encounter' | 'earliest-observation';
  predictionTime: Date;
  predictionTimeSource: 'given' | 'encounter-end' | 'latest-observation';
  /** References of the resources used: the Patient, the Encounter and each Observation in the hours used. */
  basis: string[];
  /** Observations (or components) whose values went into the hours used. */
  measurementsUsed: number;
  /** Warnings and information: inputs not used and why. */
  issues: InputIssue[];
  /** Observations not used because their subject is not the request's Patient (none, another, another server's). */
  otherSubjects: number;
}

interface Measurement {
  ms: number;
  variable: string;
  value: number;
  ref: string | undefined;
  order: number;
  path: string;
}

function firstRef(r: GatheredResource): string | undefined {
  return r.refs[0];
}

function requireOnePatient(resources: GatheredResource[]): { patient: Patient; entry: GatheredResource } {
  const found = resources.filter((r) => r.resource.resourceType === 'Patient');
  if (found.length === 0) {
    throw new FhirInputError(422, [
      {
        severity: 'error',
        code: 'required',
        message: 'a Patient resource is required (age from birthDate, sex from gender)',
        expression: ['Bundle.entry'],
      },
    ]);
  }
  if (found.length > 1) {
    throw new FhirInputError(400, [
      {
        severity: 'error',
        code: 'not-supported',
        message: 'one patient per request: the Bundle holds several Patient resources',
        expression: found.map((f) => f.path),
      },
    ]);
  }
  const entry = found[0] as GatheredResource;
  if (entry.resource.id === undefined && entry.fullUrl === undefined) {
    // Nothing could then be checked to be this patient's: every subject would be a guess.
    throw new FhirInputError(400, [
      {
        severity: 'error',
        code: 'required',
        message:
          "Patient.id is required (or the entry's fullUrl): Observations are used only when their subject references this Patient",
        expression: [`${entry.path}.id`],
      },
    ]);
  }
  const parsed = patientSchema.safeParse(entry.resource);
  if (!parsed.success) {
    throw new FhirInputError(
      400,
      parsed.error.issues.slice(0, 20).map((i) => ({
        severity: 'error',
        code: 'structure',
        message: `Patient.${i.path.join('.')}: ${i.message}`,
        expression: [`${entry.path}.${i.path.join('.')}`],
      })),
    );
  }
  return { patient: parsed.data, entry };
}

/** Why a resource's subject is not the request's Patient, or undefined when it is exactly that Patient. */
function otherSubject(
  type: 'Observation' | 'Encounter',
  reference: string | undefined,
  from: GatheredResource,
  patient: GatheredResource,
): InputIssue | undefined {
  if (reference === undefined)
    return {
      severity: 'warning',
      code: 'business-rule',
      message: `${type} not used: it has no subject.reference, so it cannot be shown to be this Patient's`,
      expression: [`${from.path}.subject`],
    };
  if (refersToSubject(reference, from, patient)) return undefined;
  return {
    severity: 'warning',
    code: 'business-rule',
    message: `${type} not used: its subject is not the Patient in the request (another patient, or a patient on another FHIR server)`,
    expression: [`${from.path}.subject`],
  };
}

function chooseEncounter(
  resources: GatheredResource[],
  patient: GatheredResource,
  at: Date,
  issues: IssueCollector,
): { encounter: Encounter; entry: GatheredResource } | undefined {
  const usable: Array<{ encounter: Encounter; entry: GatheredResource; start: number | undefined }> = [];
  for (const entry of resources.filter((r) => r.resource.resourceType === 'Encounter')) {
    const parsed = encounterSchema.safeParse(entry.resource);
    if (!parsed.success) {
      issues.add({
        severity: 'warning',
        code: 'structure',
        message: 'Encounter not read: it does not have the R4 Encounter structure',
        expression: [entry.path],
      });
      continue;
    }
    // Encounter.subject is optional (R4 0..1) and an Encounter only places the stay in time, so
    // one without a subject is used; one naming a subject must name exactly this Patient.
    const reference = parsed.data.subject?.reference;
    const other = reference === undefined ? undefined : otherSubject('Encounter', reference, entry, patient);
    if (other) {
      issues.add(other);
      continue;
    }
    const startText = parsed.data.period?.start;
    const start = startText === undefined ? undefined : parseFhirDateTime(startText);
    if (startText !== undefined && start === undefined) {
      issues.add({
        severity: 'warning',
        code: 'value',
        message: 'Encounter.period.start is not a dateTime with a time and a time zone: ICU admission time not used',
        expression: [`${entry.path}.period.start`],
      });
    }
    if (start !== undefined && start > at.getTime()) {
      issues.add({
        severity: 'warning',
        code: 'business-rule',
        message: 'Encounter not used: it starts after the prediction time',
        expression: [`${entry.path}.period.start`],
      });
      continue;
    }
    usable.push({ encounter: parsed.data, entry, start });
  }
  if (usable.length === 0) return undefined;
  // Several stays: the ICU admission is the most recent one that has started.
  usable.sort((a, b) => (b.start ?? -Infinity) - (a.start ?? -Infinity));
  if (usable.length > 1) {
    issues.add({
      severity: 'information',
      code: 'informational',
      message: 'several Encounters: the one with the latest period.start is taken as the ICU stay',
      expression: [(usable[0] as (typeof usable)[0]).entry.path],
    });
  }
  const chosen = usable[0] as (typeof usable)[0];
  return { encounter: chosen.encounter, entry: chosen.entry };
}

function icuTypeOf(encounter: Encounter | undefined): PatientInput['icuType'] {
  const concepts: CodeableConcept[] = [
    ...(encounter?.type ?? []),
    ...(encounter?.serviceType ? [encounter.serviceType] : []),
  ];
  for (const concept of concepts) {
    for (const c of concept.coding ?? []) {
      if (c.system !== ICU_TYPE_SYSTEM) continue;
      if (c.code === '1' || c.code === '2' || c.code === '3' || c.code === '4') return Number(c.code) as 1 | 2 | 3 | 4;
    }
  }
  return null;
}

function effectiveTime(obs: Observation): { ms?: number; problem?: string; where: string } {
  // A period's end is when an interval measurement (urine since the last record) is complete.
  const candidates: Array<[string | undefined, string]> = [
    [obs.effectiveDateTime, 'effectiveDateTime'],
    [obs.effectiveInstant, 'effectiveInstant'],
    [
      obs.effectivePeriod?.end ?? obs.effectivePeriod?.start,
      obs.effectivePeriod?.end !== undefined ? 'effectivePeriod.end' : 'effectivePeriod.start',
    ],
  ];
  for (const [text, where] of candidates) {
    if (text === undefined) continue;
    const ms = parseFhirDateTime(text);
    const start = where === 'effectivePeriod.end' ? parseFhirDateTime(obs.effectivePeriod?.start ?? '') : undefined;
    // R4 per-1: a Period does not end before it starts; which of its two times is wrong is unknown.
    if (ms !== undefined && start !== undefined && start > ms)
      return {
        problem: 'effectivePeriod.end is before effectivePeriod.start (R4 invariant per-1)',
        where: 'effectivePeriod',
      };
    return ms === undefined
      ? { problem: `${where} is not a dateTime with a time and a time zone`, where }
      : { ms, where };
  }
  return { problem: 'no effective[x] time', where: 'effectiveDateTime' };
}

interface MeasurementSink {
  /** The stay the measurements go to: its range check decides which are used. */
  stay: StayBuilder;
  measurements: Measurement[];
  heights: Array<{ ms: number; value: number; ref: string | undefined }>;
  otherSubjects: number;
}

/** One coded value (an Observation or one of its components) -> a measurement, or an issue. */
function readValue(
  part: Pick<Observation, 'code' | 'valueQuantity' | 'dataAbsentReason'>,
  path: string,
  ms: number,
  ref: string | undefined,
  index: CodeIndex,
  issues: IssueCollector,
  sink: MeasurementSink,
  order: number,
): void {
  const resolution = resolveCode(part.code, index);
  if (resolution.kind === 'unknown') {
    const codes = resolution.codes.length > 0 ? resolution.codes.join(', ') : 'no coding';
    issues.add({
      severity: 'warning',
      code: 'not-supported',
      message: `not used: code ${codes} is not an input of this model`,
      expression: [`${path}.code`],
    });
    return;
  }
  if (resolution.kind === 'rejected') {
    issues.add({
      severity: 'warning',
      code: 'not-supported',
      message: `not used: ${resolution.reason}`,
      expression: [`${path}.code`],
    });
    return;
  }
  const name = resolution.kind === 'variable' ? resolution.variable.name : resolution.height.name;
  const q = part.valueQuantity;
  if (q === undefined) {
    // An explicit dataAbsentReason says "not measured": nothing to report.
    if (part.dataAbsentReason === undefined) {
      issues.add({
        severity: 'warning',
        code: 'value',
        message: `${name} not used: the value is not a valueQuantity`,
        expression: [path],
      });
    }
    return;
  }
  if (q.value === undefined || !Number.isFinite(q.value)) {
    issues.add({
      severity: 'warning',
      code: 'value',
      message: `${name} not used: valueQuantity has no value`,
      expression: [`${path}.valueQuantity.value`],
    });
    return;
  }
  if (q.comparator !== undefined) {
    issues.add({
      severity: 'warning',
      code: 'value',
      message: `${name} not used: a censored value (valueQuantity.comparator) is not a measurement`,
      expression: [`${path}.valueQuantity.comparator`],
    });
    return;
  }
  const code = ucumCodeOf(q);
  if (!code.ok) {
    issues.add({
      severity: 'warning',
      code: 'value',
      message: `${name} not used: ${code.reason}`,
      expression: [`${path}.valueQuantity`],
    });
    return;
  }
  const spec =
    resolution.kind === 'variable' ? resolution.variable : { name, unit: resolution.height.unit, alternativeUnits: [] };
  const unit = resolveUnit(spec, code.code);
  if (!unit.ok) {
    issues.add({
      severity: 'warning',
      code: 'value',
      message: `${name} not used: ${unit.reason}`,
      expression: [`${path}.valueQuantity.code`],
    });
    return;
  }
  const value = unit.convert(q.value);
  const bounds = resolution.kind === 'variable' ? resolution.variable.bounds : resolution.height.bounds;
  if (!sink.stay.inRange(name, value)) {
    // The value itself stays out of the message: issues are logged as well as returned.
    issues.add({
      severity: 'warning',
      code: 'value',
      message: `${name} not used: outside the plausible range ${bounds.min} to ${bounds.max} ${spec.unit}`,
      expression: [`${path}.valueQuantity.value`],
    });
    return;
  }
  if (resolution.kind === 'height') sink.heights.push({ ms, value, ref });
  else sink.measurements.push({ ms, variable: name, value, ref, order, path });
  if (resolution.kind === 'variable' && resolution.readAs !== undefined)
    issues.add({
      severity: 'information',
      code: 'informational',
      message: resolution.readAs,
      expression: [`${path}.code`],
    });
}

/**
 * Observations giving one variable different values at the same instant: one is wrong (or
 * another patient's) and nothing says which, so none of them is used and the answer says so.
 * Summed variables (urine) are exempt: two outputs at one instant add up, as binning does.
 */
function dropContradictions(measurements: Measurement[], manifest: Manifest, issues: IssueCollector): Measurement[] {
  const summed = new Set(manifest.variables.filter((v) => v.aggregation === 'sum').map((v) => v.name));
  const groups = new Map<string, Measurement[]>();
  for (const m of measurements) {
    const key = `${m.variable}|${m.ms}`;
    const group = groups.get(key);
    if (group) group.push(m);
    else groups.set(key, [m]);
  }
  const kept: Measurement[] = [];
  for (const group of groups.values()) {
    const first = group[0] as Measurement;
    // Equal up to rounding: the same quantity sent in two units converts to nearly the same number.
    if (
      summed.has(first.variable) ||
      group.every((m) => Math.abs(m.value - first.value) <= 1e-9 * Math.abs(first.value))
    ) {
      kept.push(...group);
      continue;
    }
    issues.add({
      severity: 'warning',
      code: 'business-rule',
      message: `${first.variable} not used at one instant: Observations give it different values at the same time (none of them is used)`,
      expression: group.map((m) => m.path),
    });
  }
  return kept;
}

function readObservation(
  entry: GatheredResource,
  patient: GatheredResource,
  index: CodeIndex,
  issues: IssueCollector,
  sink: MeasurementSink,
  order: number,
): void {
  const parsed = observationSchema.safeParse(entry.resource);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const where = first ? `.${first.path.join('.')}` : '';
    issues.add({
      severity: 'warning',
      code: 'structure',
      message: `Observation not used: it does not have the R4 Observation structure (${first?.message ?? 'invalid'} at Observation${where})`,
      expression: [`${entry.path}${where}`],
    });
    return;
  }
  const obs = parsed.data;
  if (!USABLE_STATUS.has(obs.status)) {
    issues.add({
      severity: 'warning',
      code: 'business-rule',
      message: `Observation not used: status "${obs.status}" is not final, amended, corrected or preliminary`,
      expression: [`${entry.path}.status`],
    });
    return;
  }
  const other = otherSubject('Observation', obs.subject?.reference, entry, patient);
  if (other) {
    issues.add(other);
    sink.otherSubjects++;
    return;
  }
  const time = effectiveTime(obs);
  if (time.ms === undefined) {
    issues.add({
      severity: 'warning',
      code: 'required',
      message: `Observation not used: ${time.problem ?? 'no time'}`,
      expression: [`${entry.path}.${time.where}`],
    });
    return;
  }
  const ref = firstRef(entry);
  if (index.byName.has(MECH_VENT) && isVentilatorObservation(obs.code)) {
    // Its value is a setting, not a model input: that it was charted is what counts.
    sink.measurements.push({ ms: time.ms, variable: MECH_VENT, value: 1, ref, order, path: entry.path });
    if (resolveCode(obs.code, index).kind !== 'variable') return;
  }
  const components = obs.component ?? [];
  // A panel (e.g. blood pressure 85354-9) carries its values in components; its own code is not an input.
  if (components.length === 0 || obs.valueQuantity !== undefined) {
    readValue(obs, entry.path, time.ms, ref, index, issues, sink, order);
  }
  components.forEach((component, i) =>
    readValue(component, `${entry.path}.component[${i}]`, time.ms as number, ref, index, issues, sink, order),
  );
}

const MECH_VENT = 'MechVent';
const VENTILATOR_CODES = new Set(VENTILATOR_OBSERVATION_CODES);

function isVentilatorObservation(code: CodeableConcept): boolean {
  return (code.coding ?? []).some((c) => c.system === LOINC && c.code !== undefined && VENTILATOR_CODES.has(c.code));
}

function ageAt(
  patient: Patient,
  entry: GatheredResource,
  at: Date,
  manifest: Manifest,
  issues: IssueCollector,
): number | null {
  if (patient.birthDate === undefined) {
    issues.add({
      severity: 'warning',
      code: 'incomplete',
      message: 'Patient.birthDate is absent: age is unknown to the model',
      expression: [`${entry.path}.birthDate`],
    });
    return null;
  }
  const birth = parseFhirDate(patient.birthDate);
  if (birth === undefined) {
    throw new FhirInputError(400, [
      {
        severity: 'error',
        code: 'value',
        message: 'Patient.birthDate is not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)',
        expression: [`${entry.path}.birthDate`],
      },
    ]);
  }
  const age = completedYears(birth, at);
  const spec = numericDescriptor(manifest, 'age');
  if (spec && (age < spec.bounds.min || age > spec.bounds.max)) {
    throw new FhirInputError(422, [
      {
        severity: 'error',
        code: 'business-rule',
        message: `the patient's age at the prediction time is outside the range this model was built for (${spec.bounds.min} to ${spec.bounds.max} years)`,
        expression: [`${entry.path}.birthDate`],
      },
    ]);
  }
  return age;
}

function sexOf(patient: Patient): Sex | null {
  return patient.gender === 'female' || patient.gender === 'male' ? patient.gender : null;
}

/**
 * When the stay is scored: the given time; else the Encounter's end (discharge or transfer out
 * of the ICU) when it has one before now; else the latest usable observation; else now. A
 * Bundle from 2020 is then scored as of 2020, its age then, and the answer says how old it is.
 */
function predictionTimeOf(
  options: MappingOptions,
  encounter: Encounter | undefined,
  measurements: readonly Measurement[],
  issues: IssueCollector,
): { time: Date; source: MappedPatient['predictionTimeSource'] } {
  if (options.predictionTime) return { time: options.predictionTime, source: 'given' };
  const now = (options.now ?? new Date()).getTime();
  const end = encounter?.period?.end === undefined ? undefined : parseFhirDateTime(encounter.period.end);
  // A loop, not Math.max(...): a large Bundle's observations would overflow the argument list.
  const latest = measurements.reduce<number | undefined>(
    (max, m) => (max === undefined || m.ms > max ? m.ms : max),
    undefined,
  );
  const chosen =
    end !== undefined && end <= now
      ? { ms: end, source: 'encounter-end' as const }
      : latest !== undefined
        ? { ms: latest, source: 'latest-observation' as const }
        : { ms: now, source: 'latest-observation' as const };
  const ageHours = (now - chosen.ms) / 3_600_000;
  const window = options.staleAfterHours ?? Infinity;
  if (ageHours > window) {
    // A duration, not a date: issues are logged as well as returned.
    const days = ageHours >= 48 ? `${Math.floor(ageHours / 24)} days` : `${Math.floor(ageHours)} hours`;
    issues.add({
      severity: 'warning',
      code: 'business-rule',
      message: `the data end ${days} before now (more than the ${window}-hour window): scored as of ${chosen.source === 'encounter-end' ? "the Encounter's end" : 'the latest observation'}, with the age then; give predictionTime to choose another time`,
    });
  }
  return { time: new Date(chosen.ms), source: chosen.source };
}

/**
 * A stay whose hourly rows would number more than MAX_HOURS_RECEIVED is refused from its two
 * instants, before a row is built: an Encounter starting in year 1 would otherwise be millions of rows.
 */
function refuseLongSpan(
  gathered: Gathered,
  /** The Encounter when its period.start is time zero. */
  chosen: { entry: GatheredResource } | undefined,
  measurements: readonly Measurement[],
  timeZero: number,
  manifest: Manifest,
): void {
  const latest = measurements.reduce((max, m) => (m.ms > max.ms ? m : max));
  if (hourOf((latest.ms - timeZero) / 60_000, manifest) < MAX_HOURS_RECEIVED) return;
  const earliest = measurements.reduce((min, m) => (m.ms < min.ms ? m : min));
  const start = chosen ? `${chosen.entry.path}.period.start` : timeExpression(gathered, earliest);
  const days = Math.floor((latest.ms - timeZero) / 86_400_000);
  throw new FhirInputError(422, [
    {
      severity: 'error',
      code: 'business-rule',
      message: `${chosen ? 'Encounter.period.start' : 'the earliest Observation'} is ${days} days before the latest Observation used: the stay would span more than ${MAX_HOURS_RECEIVED} hours (${MAX_HOURS_RECEIVED / 24} days), the longest one this service reads`,
      expression: [start, timeExpression(gathered, latest)],
    },
  ]);
}

/** FHIRPath of the time of the Observation a measurement came from, e.g. Bundle.entry[3].resource.effectiveDateTime. */
function timeExpression(gathered: Gathered, m: Measurement): string {
  const entry = gathered.resources[m.order] as GatheredResource;
  const parsed = observationSchema.safeParse(entry.resource);
  return `${entry.path}.${parsed.success ? effectiveTime(parsed.data).where : 'effective'}`;
}

/** Maps gathered resources to one patient's input; throws FhirInputError when nothing can be scored. */
export function mapToPatientInput(gathered: Gathered, options: MappingOptions): MappedPatient {
  const { manifest } = options;
  // Nothing after the given time, or after now, can be used; the data may end earlier.
  const limit = (options.predictionTime ?? options.now ?? new Date()).getTime();
  const index = codeIndex(manifest);
  const issues = new IssueCollector();
  const { patient, entry: patientEntry } = requireOnePatient(gathered.resources);
  const chosen = chooseEncounter(gathered.resources, patientEntry, new Date(limit), issues);

  // Values outside their range are reported here, by the mapping, in FHIR's terms.
  const stay = new StayBuilder(manifest, { outOfRange: 'drop' });
  const sink: MeasurementSink = { stay, measurements: [], heights: [], otherSubjects: 0 };
  const ignoredTypes = new Map<string, string[]>();
  gathered.resources.forEach((entry, order) => {
    const type = entry.resource.resourceType;
    if (type === 'Observation') readObservation(entry, patientEntry, index, issues, sink, order);
    else if (type !== 'Patient' && type !== 'Encounter')
      ignoredTypes.set(type, [...(ignoredTypes.get(type) ?? []), entry.path]);
  });
  sink.measurements = dropContradictions(sink.measurements, manifest, issues);
  for (const [type, paths] of ignoredTypes) {
    issues.add({
      severity: 'information',
      code: 'informational',
      message: `${type} resources are not read by this model (${paths.length})`,
      expression: paths.slice(0, 10),
    });
  }

  const when = predictionTimeOf(
    options,
    chosen?.encounter,
    sink.measurements.filter((m) => m.ms <= limit),
    issues,
  );
  const at = when.time.getTime();
  let measurements = sink.measurements.filter((m) => {
    if (m.ms <= at) return true;
    issues.add({
      severity: 'warning',
      code: 'business-rule',
      message: `${m.variable} not used: observed after the prediction time`,
      expression: [m.path],
    });
    return false;
  });
  const encounterStart =
    chosen?.encounter.period?.start === undefined ? undefined : parseFhirDateTime(chosen.encounter.period.start);
  const timeZeroSource = encounterStart === undefined ? 'earliest-observation' : 'encounter';
  const timeZero = encounterStart ?? measurements.reduce((min, m) => Math.min(min, m.ms), Infinity);
  measurements = measurements.filter((m) => {
    if (m.ms >= timeZero) return true;
    issues.add({
      severity: 'warning',
      code: 'business-rule',
      message: `${m.variable} not used: observed before the ICU admission (Encounter.period.start)`,
      expression: [m.path],
    });
    return false;
  });

  if (measurements.length === 0) {
    throw new FhirInputError(422, [
      {
        severity: 'error',
        code: 'incomplete',
        message:
          'no usable Observation: nothing in the request is a model input with a known code, a convertible UCUM unit and a time within the stay',
      },
      ...issues.list(),
    ]);
  }

  refuseLongSpan(gathered, encounterStart === undefined ? undefined : chosen, measurements, timeZero, manifest);

  // Binning keeps the last value of an hour "in input order": for FHIR that is time order
  // (a searchset is usually newest first), with the request's order breaking ties.
  measurements.sort((a, b) => a.ms - b.ms || a.order - b.order);
  const hoursOf = measurements.map((m) => hourOf((m.ms - timeZero) / 60_000, manifest));
  measurements.forEach((m, i) => stay.add(hoursOf[i] as number, m.variable, m.value, i));
  const firstHourUsed = Math.max(0, stay.hours - manifest.maxHours);

  const basis: string[] = [];
  const seen = new Set<string>();
  const addBasis = (ref: string | undefined): void => {
    if (ref === undefined || seen.has(ref)) return;
    seen.add(ref);
    basis.push(ref);
  };
  addBasis(firstRef(patientEntry));
  if (chosen) addBasis(firstRef(chosen.entry));
  let measurementsUsed = 0;
  hoursOf.forEach((hour, i) => {
    if (hour < firstHourUsed) return;
    measurementsUsed++;
    addBasis((measurements[i] as Measurement).ref);
  });
  const heights = sink.heights.filter((h) => h.ms <= at).sort((a, b) => a.ms - b.ms);
  const height = heights.at(-1);
  if (height) addBasis(height.ref);

  const { header } = stay;
  // The Patient's logical id keys its recorded result, so an outcome posted under that id joins it
  // (as a /v1/predict id); one longer than an API id (FHIR's are at most 64) stays unkeyed.
  if (patient.id !== undefined && patient.id.length <= MAX_ID_LENGTH) header.id = patient.id;
  header.age = ageAt(patient, patientEntry, when.time, manifest, issues);
  header.sex = sexOf(patient);
  header.icuType = icuTypeOf(chosen?.encounter);
  header.height = height?.value ?? null;
  const built = stay.build();
  // The values were checked as they were read: nothing is left to fail.
  if (!built.ok) throw new Error(`a FHIR stay failed its build: ${built.issues[0]?.message ?? ''}`);
  const valid = built.patient;
  const subjectRef = firstRef(patientEntry);
  const encounterRef = chosen ? firstRef(chosen.entry) : undefined;
  return {
    stay: new BuiltStay(manifest, valid),
    subject:
      subjectRef === undefined
        ? { display: 'the Patient of the request (no id or fullUrl)' }
        : { reference: subjectRef },
    ...(encounterRef === undefined ? {} : { encounter: { reference: encounterRef } }),
    timeZero: new Date(timeZero),
    timeZeroSource,
    predictionTime: when.time,
    predictionTimeSource: when.source,
    basis,
    measurementsUsed,
    issues: issues.list(),
    otherSubjects: sink.otherSubjects,
  };
}
