import { z } from 'zod';
import {
  categoricalDescriptor,
  DESCRIPTORS,
  numericDescriptor,
  type Manifest,
  type VariableSpec,
} from '../model/manifest.js';
import { acceptedUnits, MAX_UNIT_LENGTH, unitConversion, unitStringProblem } from './units.js';
import type { Sex } from './types.js';

/**
 * The patient's zod schemas, generated from the manifest (the one definition of names, units and
 * bounds). Bounds hold in the canonical unit after any `units` conversion, so a patient-level
 * refinement checks them and reports each offending value's path.
 */

/** Longest stay accepted before cutting to the model's last maxHours rows (one year of hours). */
export const MAX_HOURS_RECEIVED = 24 * 366;
export const MAX_ID_LENGTH = 256;

/**
 * Names clients commonly send for a model variable. They are rejected with a message naming
 * the model's variable rather than silently mapped: SpO2 (pulse oximetry) is not the arterial
 * SaO2 the model was trained on, and the clinician should decide whether the substitution holds.
 */
const ALIASES: Record<string, { target: string; why?: string }> = {
  SpO2: {
    target: 'SaO2',
    why: 'SpO2 (pulse oximetry) is not an input of this model, which was trained on arterial oxygen saturation; send arterial saturation as SaO2',
  },
  Spo2: {
    target: 'SaO2',
    why: 'SpO2 (pulse oximetry) is not an input of this model, which was trained on arterial oxygen saturation; send arterial saturation as SaO2',
  },
  HeartRate: { target: 'HR' },
  Pulse: { target: 'HR' },
  RR: { target: 'RespRate' },
  RespiratoryRate: { target: 'RespRate' },
  Temperature: { target: 'Temp' },
  MeanArterialPressure: { target: 'MAP' },
  Lactic: { target: 'Lactate' },
  Bicarbonate: { target: 'HCO3' },
  Potassium: { target: 'K' },
  Sodium: { target: 'Na' },
  Magnesium: { target: 'Mg' },
  Hematocrit: { target: 'HCT' },
  Haematocrit: { target: 'HCT' },
  PH: { target: 'pH' },
  ph: { target: 'pH' },
  FIO2: { target: 'FiO2' },
  Fio2: { target: 'FiO2' },
};

/** Message for a key that is not one of the manifest's variables. */
export function unknownMeasurementMessage(manifest: Manifest, key: string): string {
  const alias = ALIASES[key];
  if (alias && manifest.variables.some((v) => v.name === alias.target)) {
    return alias.why ?? `unknown measurement "${key}": this model calls it "${alias.target}"`;
  }
  const lower = key.toLowerCase();
  const near = manifest.variables.find((v) => v.name.toLowerCase() === lower);
  if (near) return `unknown measurement "${key}": names are case-sensitive, send "${near.name}"`;
  return `unknown measurement "${key}": not an input of model ${manifest.name} ${manifest.version} (see GET /v1/models)`;
}

function describeVariable(v: VariableSpec): string {
  const alts = v.alternativeUnits.map((a) => a.unit);
  const altText = alts.length > 0 ? `; also accepted in ${alts.join(', ')} when units.${v.name} says so` : '';
  return `${v.label}, in ${v.unit} (plausible ${v.bounds.min} to ${v.bounds.max} ${v.unit}${altText}). null or absent = not measured this hour.`;
}

/** One hourly row: every manifest variable optional, number or null, nothing else allowed. */
export function hourRowSchema(manifest: Manifest) {
  const shape: Record<string, z.ZodType> = {};
  for (const v of manifest.variables) {
    shape[v.name] = z
      .number()
      .nullable()
      .optional()
      .meta({ description: describeVariable(v), 'x-unit': v.unit, 'x-bounds': v.bounds, 'x-loinc': v.loinc });
  }
  return z.strictObject(shape).meta({
    description:
      'One hour of measurements, keyed by variable name. Several values in one hour: send the last one (urine output: the sum over the hour).',
  });
}

function boundedStatic(manifest: Manifest, field: 'age' | 'height', unit: string, label: string) {
  const spec = numericDescriptor(manifest, field);
  const base = spec ? z.number().min(spec.bounds.min).max(spec.bounds.max) : z.number();
  const range = spec ? ` (${spec.bounds.min} to ${spec.bounds.max})` : '';
  return base
    .nullable()
    .optional()
    .meta({
      description: `${label}, in ${spec?.unit ?? unit}${range}. null or absent = unknown.`,
      'x-unit': spec?.unit ?? unit,
    });
}

/** Units map: only manifest variables, only their canonical or alternative units. */
function unitsSchema(manifest: Manifest) {
  const examples = manifest.variables
    .filter((v) => v.alternativeUnits.length > 0)
    .map((v) => `${v.name}: ${acceptedUnits(v).join(' | ')}`);
  // maxLength shows in the OpenAPI document; the other checks are the one rule in units.ts.
  const unit = z
    .string()
    .max(MAX_UNIT_LENGTH, { error: (issue) => unitStringProblem(String(issue.input)) })
    .superRefine((u, ctx) => {
      const problem = u.length > MAX_UNIT_LENGTH ? undefined : unitStringProblem(u);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    });
  return z
    .record(z.string(), unit)
    .optional()
    .meta({
      description: `Units the request uses where they differ from the canonical ones, by variable name: any UCUM unit convertible to the variable's unit (mass, moles and equivalents where the model lists a molar mass, as for creatinine in umol/L or sodium in meq/L). For example: ${examples.join('; ') || 'none'}.`,
    });
}

/** The sex labels a patient may carry: the manifest's, or both where it names none. */
export function sexLabels(manifest: Manifest): readonly Sex[] {
  const labels = (categoricalDescriptor(manifest, 'sex')?.labels ?? []).filter(
    (l): l is Sex => l === 'female' || l === 'male',
  );
  return labels.length > 0 ? labels : ['female', 'male'];
}

/** The ICU type codes a patient may carry (PhysioNet 2012: 1 to 4): the manifest's, or all four where it names none. */
export function icuTypeCodes(manifest: Manifest): ReadonlyArray<1 | 2 | 3 | 4> {
  const codes = (categoricalDescriptor(manifest, 'icuType')?.categories ?? []).filter(
    (c): c is 1 | 2 | 3 | 4 => c === 1 || c === 2 || c === 3 || c === 4,
  );
  return codes.length > 0 ? codes : [1, 2, 3, 4];
}

/**
 * The schema of one patient as a client sends it. Validation happens in one pass so that
 * every offending field is reported, including bounds after unit conversion.
 */
export function patientInputSchema(manifest: Manifest, options: { rows?: 'check' | 'skip' } = {}) {
  const checkRows = options.rows !== 'skip';
  const variables = new Map(manifest.variables.map((v) => [v.name, v]));
  const weightVariable = manifest.staticWeightVariable ? variables.get(manifest.staticWeightVariable) : undefined;
  const icuTypes = icuTypeCodes(manifest);
  const icuLabels = categoricalDescriptor(manifest, 'icuType')?.labels ?? [];

  return z
    .strictObject({
      id: z
        .string()
        .max(MAX_ID_LENGTH)
        .optional()
        .meta({ description: 'Client identifier, echoed back in the result and never logged.' }),
      age: boundedStatic(manifest, 'age', 'a', 'Age in years'),
      sex: z
        .enum(sexLabels(manifest) as [Sex, ...Sex[]])
        .nullable()
        .optional()
        .meta({ description: 'Sex; null or absent = unknown.' }),
      icuType: z
        .literal(icuTypes as Array<1 | 2 | 3 | 4>)
        .nullable()
        .optional()
        .meta({
          description: `ICU type (PhysioNet 2012 coding): ${icuTypes.map((c, i) => `${c} ${icuLabels[i] ?? ''}`.trim()).join(', ')}.`,
        }),
      height: boundedStatic(manifest, 'height', 'cm', DESCRIPTORS.height),
      weight: z
        .number()
        .nullable()
        .optional()
        .meta({
          description: weightVariable
            ? `Admission weight in ${weightVariable.unit} (plausible ${weightVariable.bounds.min} to ${weightVariable.bounds.max}); used as a ${weightVariable.name} observation at hour 0 when the first row has none.`
            : 'Admission weight in kg (not used by this model).',
        }),
      units: unitsSchema(manifest),
      hours: z
        .array(checkRows ? hourRowSchema(manifest) : z.unknown())
        .min(1)
        .max(MAX_HOURS_RECEIVED)
        .meta({
          description: `Hourly rows, oldest first. Stays longer than ${manifest.maxHours} rows are scored on their last ${manifest.maxHours} rows (the result says truncated: true).`,
        }),
      noteEmbedding: noteEmbeddingSchema(manifest),
    })
    .superRefine(
      (patient, ctx) => {
        // Runs even when other fields failed, so that every offending value is reported at once.
        // That includes inputs that are not objects at all (null): the type issue already says so.
        if (!isRecord(patient)) return;
        const p = patient as unknown as Record<string, unknown>;
        const units = isRecord(p.units) ? p.units : {};
        const converters = new Map<string, (v: number) => number>();
        for (const [name, unit] of Object.entries(units)) {
          const variable = variables.get(name);
          if (!variable) {
            ctx.addIssue({
              code: 'custom',
              path: ['units', name],
              message: `units given for "${name}", which is not an input of this model`,
            });
            continue;
          }
          // A malformed unit string is reported by the units schema; only well-formed ones are parsed.
          if (typeof unit === 'string' && unitStringProblem(unit) !== undefined) continue;
          const conversion = typeof unit === 'string' ? unitConversion(variable, unit) : undefined;
          if (!conversion?.ok) {
            ctx.addIssue({
              code: 'custom',
              path: ['units', name],
              message:
                conversion?.problem ??
                `unit not accepted for ${name}: not a UCUM unit convertible to ${variable.unit} (e.g. ${acceptedUnits(variable).join(', ')})`,
            });
            continue;
          }
          converters.set(name, conversion.convert);
        }
        const noteIssue = noteEmbeddingIssue(manifest, p.noteEmbedding);
        if (noteIssue !== undefined) ctx.addIssue({ code: 'custom', path: ['noteEmbedding'], message: noteIssue });
        const hours = checkRows && Array.isArray(p.hours) ? p.hours : [];
        hours.forEach((row: unknown, t: number) => {
          if (!isRecord(row)) return;
          for (const [name, value] of Object.entries(row)) {
            const variable = variables.get(name);
            if (!variable || typeof value !== 'number' || !Number.isFinite(value)) continue;
            const canonical = (converters.get(name) ?? identity)(value);
            if (canonical < variable.bounds.min || canonical > variable.bounds.max) {
              ctx.addIssue({
                code: 'custom',
                path: ['hours', t, name],
                message: boundsMessage(
                  variable,
                  converters.has(name) && units[name] !== variable.unit,
                  units[name] !== undefined,
                ),
              });
            }
          }
        });
        if (weightVariable && typeof p.weight === 'number' && Number.isFinite(p.weight)) {
          const canonical = (converters.get(weightVariable.name) ?? identity)(p.weight);
          if (canonical < weightVariable.bounds.min || canonical > weightVariable.bounds.max) {
            ctx.addIssue({
              code: 'custom',
              path: ['weight'],
              message: boundsMessage(weightVariable, false, units[weightVariable.name] !== undefined),
            });
          }
        }
      },
      { when: () => true },
    );
}

/** Longest embedding read for any model: bounds the work a hostile array costs before the length check. */
const MAX_NOTE_DIMENSION = 65536;
/** The largest finite float32 (IEEE 754 binary32): the graph reads the embedding as 32-bit floats. */
const FLOAT32_MAX = 3.4028234663852886e38;

function noteEmbeddingSchema(manifest: Manifest) {
  const note = manifest.noteEmbedding;
  return z
    .array(
      z.number().refine((x) => Math.abs(x) <= FLOAT32_MAX, {
        message: `beyond the float32 range (±${FLOAT32_MAX}): the model reads the embedding as 32-bit floats`,
      }),
    )
    .max(note?.dimension ?? MAX_NOTE_DIMENSION)
    .optional()
    .meta({
      description: note
        ? `Required by this model: ${note.dimension} numbers, the clinical-note embedding made by ${note.encoder} (${note.normalisation}).`
        : 'Only for a hybrid model (GET /v1/models shows its noteEmbedding: dimension, encoder, normalisation): the clinical-note embedding, exactly that many numbers. Models without one refuse it.',
    });
}

/**
 * What is wrong with a patient's noteEmbedding for this model, if anything: for a JSON array the
 * types and the upper size are the schema's; a built stay's Float32Array is held to the exact size.
 */
export function noteEmbeddingIssue(manifest: Manifest, value: unknown): string | undefined {
  const note = manifest.noteEmbedding;
  const model = `model ${manifest.name} ${manifest.version}`;
  if (note === undefined)
    return value === undefined
      ? undefined
      : `${model} reads no note embedding: send noteEmbedding only to a hybrid model`;
  if (value === undefined || value === null)
    return `${model} needs noteEmbedding: ${note.dimension} numbers from ${note.encoder}`;
  if (
    (Array.isArray(value) && value.length < note.dimension) ||
    (value instanceof Float32Array && value.length !== note.dimension)
  )
    return `noteEmbedding has ${value.length} numbers; ${model} needs ${note.dimension} (from ${note.encoder})`;
  return undefined;
}

const identity = (v: number) => v;

export function boundsMessage(variable: VariableSpec, converted: boolean, unitDeclared: boolean): string {
  // The value itself is not repeated: messages may reach logs, values must not.
  const range = `${variable.label} outside the plausible range ${variable.bounds.min} to ${variable.bounds.max} ${variable.unit}`;
  if (converted) return `${range} (after unit conversion)`;
  // A hint, never a guess: values are not converted unless units.<name> says so.
  const alternatives = variable.alternativeUnits.map((a) => a.unit);
  if (unitDeclared || alternatives.length === 0) return range;
  return `${range}; if the values are in another unit, name it in units.${variable.name} (a UCUM code such as ${alternatives.join(' or ')})`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export type PatientInputSchema = ReturnType<typeof patientInputSchema>;
