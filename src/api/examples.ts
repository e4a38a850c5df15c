import type { Manifest } from '../model/manifest.js';

/**
 * Example requests shown in the OpenAPI document. Those of the FHIR and CDS Hooks routes are in the
 * README too (test/api/examples.test.ts posts each one and compares the README's copies). One stay:
 * a 70-year-old woman in a medical ICU: three hours of heart rate, one of respiratory rate and
 * temperature, a lactate.
 */

const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';
const CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';

const patient = { resourceType: 'Patient', id: 'example', gender: 'female', birthDate: '1955-05-20' };

const encounter = {
  resourceType: 'Encounter',
  id: 'icu-stay',
  status: 'in-progress',
  class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' },
  // ICU type 3, medical (the PhysioNet 2012 coding; src/api/fhir.ts describes the system).
  type: [{ coding: [{ system: 'urn:icu-mortality:fhir:icu-type', code: '3' }] }],
  subject: { reference: 'Patient/example' },
  period: { start: '2026-03-14T06:00:00Z' },
};

function observation(
  id: string,
  category: 'vital-signs' | 'laboratory',
  loinc: string,
  text: string,
  at: string,
  value: number,
  unit: string,
) {
  return {
    resourceType: 'Observation',
    id,
    status: 'final',
    category: [{ coding: [{ system: CATEGORY, code: category }] }],
    code: { coding: [{ system: LOINC, code: loinc }], text },
    subject: { reference: 'Patient/example' },
    effectiveDateTime: at,
    valueQuantity: { value, unit, system: UCUM, code: unit },
  };
}

const vitals = [
  observation('hr-1', 'vital-signs', '8867-4', 'Heart rate', '2026-03-14T06:10:00Z', 104, '/min'),
  observation('rr-1', 'vital-signs', '9279-1', 'Respiratory rate', '2026-03-14T06:10:00Z', 22, '/min'),
  observation('temp-1', 'vital-signs', '8310-5', 'Body temperature', '2026-03-14T06:10:00Z', 38.3, 'Cel'),
  observation('hr-2', 'vital-signs', '8867-4', 'Heart rate', '2026-03-14T07:10:00Z', 110, '/min'),
  observation('hr-3', 'vital-signs', '8867-4', 'Heart rate', '2026-03-14T08:10:00Z', 98, '/min'),
];

const labs = [observation('lactate-1', 'laboratory', '2524-7', 'Lactate', '2026-03-14T06:40:00Z', 3.1, 'mmol/L')];

/** POST /fhir/RiskAssessment/$predict: a collection Bundle of the Patient, the ICU Encounter and the Observations. */
export const fhirBundleExample = {
  resourceType: 'Bundle',
  type: 'collection',
  entry: [patient, encounter, ...vitals, ...labs].map((resource) => ({ resource })),
};

const searchset = (resources: readonly object[]) => ({
  resourceType: 'Bundle',
  type: 'searchset',
  entry: resources.map((resource) => ({ resource })),
});

/** POST /cds-services/icu-mortality: the patient-view hook with the three prefetch keys the discovery asks for. */
export const cdsPatientViewExample = {
  hook: 'patient-view',
  hookInstance: 'd1577c69-dfbe-44ad-ba6d-3e05e953b2ea',
  context: { userId: 'Practitioner/example', patientId: 'example' },
  prefetch: { patient, vitals: searchset(vitals), labs: searchset(labs) },
};

/** A `POST /v1/predict` request with the serving model's variables only. */
export function predictRequestExample(manifest: Manifest): unknown {
  const names = new Set(manifest.variables.map((v) => v.name));
  const pick = (row: Record<string, number | null>) =>
    Object.fromEntries(Object.entries(row).filter(([k]) => names.has(k)));
  return {
    patients: [
      {
        id: 'bed-12',
        age: 71,
        sex: 'female',
        icuType: 3,
        height: 162,
        weight: 70.5,
        units: names.has('Temp') ? { Temp: '[degF]' } : {},
        hours: [
          pick({ HR: 104, MAP: 68, RespRate: 22, Temp: 100.9, SaO2: 94, Lactate: 3.1 }),
          pick({ HR: 110, MAP: 64, RespRate: null, Temp: null, SaO2: 93 }),
          pick({ HR: 98, MAP: 71, RespRate: 20 }),
        ],
      },
    ],
  };
}
