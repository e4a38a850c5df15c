import { z } from 'zod';

/**
 * The parts of FHIR R4 resources this service reads. Loose on purpose (unknown elements pass): an
 * EHR's resources carry far more than we use; what we read is type-checked and reported if wrong.
 */

export const codingSchema = z.looseObject({
  system: z.string().optional(),
  version: z.string().optional(),
  code: z.string().optional(),
  display: z.string().optional(),
});

export const codeableConceptSchema = z.looseObject({
  coding: z.array(codingSchema).optional(),
  text: z.string().optional(),
});

export const referenceSchema = z.looseObject({
  reference: z.string().optional(),
  display: z.string().optional(),
});

export const quantitySchema = z.looseObject({
  value: z.number().optional(),
  comparator: z.string().optional(),
  unit: z.string().optional(),
  system: z.string().optional(),
  code: z.string().optional(),
});

export const periodSchema = z.looseObject({
  start: z.string().optional(),
  end: z.string().optional(),
});

const observationValueFields = {
  code: codeableConceptSchema,
  valueQuantity: quantitySchema.optional(),
  dataAbsentReason: codeableConceptSchema.optional(),
};

export const observationComponentSchema = z.looseObject(observationValueFields);

export const observationSchema = z.looseObject({
  resourceType: z.literal('Observation'),
  id: z.string().optional(),
  status: z.string(),
  ...observationValueFields,
  subject: referenceSchema.optional(),
  encounter: referenceSchema.optional(),
  effectiveDateTime: z.string().optional(),
  effectiveInstant: z.string().optional(),
  effectivePeriod: periodSchema.optional(),
  component: z.array(observationComponentSchema).optional(),
});

export const patientSchema = z.looseObject({
  resourceType: z.literal('Patient'),
  id: z.string().optional(),
  birthDate: z.string().optional(),
  gender: z.enum(['male', 'female', 'other', 'unknown']).optional(),
  deceasedBoolean: z.boolean().optional(),
  deceasedDateTime: z.string().optional(),
});

export const encounterSchema = z.looseObject({
  resourceType: z.literal('Encounter'),
  id: z.string().optional(),
  status: z.string().optional(),
  subject: referenceSchema.optional(),
  period: periodSchema.optional(),
  type: z.array(codeableConceptSchema).optional(),
  serviceType: codeableConceptSchema.optional(),
});

export const anyResourceSchema = z.looseObject({ resourceType: z.string().min(1), id: z.string().optional() });

export const bundleSchema = z.looseObject({
  resourceType: z.literal('Bundle'),
  type: z.enum(['collection', 'searchset', 'transaction', 'batch', 'document', 'message']),
  entry: z
    .array(
      z.looseObject({
        fullUrl: z.string().optional(),
        resource: anyResourceSchema.optional(),
      }),
    )
    .optional(),
  link: z.array(z.looseObject({ relation: z.string(), url: z.string() })).optional(),
});

export const parametersSchema = z.looseObject({
  resourceType: z.literal('Parameters'),
  parameter: z
    .array(
      z.looseObject({
        name: z.string(),
        resource: anyResourceSchema.optional(),
        valueDateTime: z.string().optional(),
      }),
    )
    .optional(),
});

export type Coding = z.infer<typeof codingSchema>;
export type CodeableConcept = z.infer<typeof codeableConceptSchema>;
export type Quantity = z.infer<typeof quantitySchema>;
export type Observation = z.infer<typeof observationSchema>;
export type ObservationComponent = z.infer<typeof observationComponentSchema>;
export type Patient = z.infer<typeof patientSchema>;
export type Encounter = z.infer<typeof encounterSchema>;
export type Bundle = z.infer<typeof bundleSchema>;
export type AnyResource = z.infer<typeof anyResourceSchema>;
