/**
 * Code systems and fixed codes of the FHIR mapping. The service's own systems
 * (SERVICE_SYSTEM_BASE) cover what no public code does: variable names that share a LOINC code
 * or have none, the PhysioNet ICU types, the model identity.
 */

export const LOINC = 'http://loinc.org';
export const UCUM = 'http://unitsofmeasure.org';
export const SNOMED = 'http://snomed.info/sct';
export const RISK_PROBABILITY = 'http://terminology.hl7.org/CodeSystem/risk-probability';

/** Base of the service's own code systems (stable URIs: they identify meaning, nothing is fetched from them). */
export const SERVICE_SYSTEM_BASE = 'urn:icu-mortality:fhir';
/** Code = a manifest variable name (e.g. MechVent, SysABP). Wins over LOINC when both are present. */
export const VARIABLE_SYSTEM = `${SERVICE_SYSTEM_BASE}:variable`;
/** Code = PhysioNet 2012 ICU type 1..4, in Encounter.type or Encounter.serviceType. */
export const ICU_TYPE_SYSTEM = `${SERVICE_SYSTEM_BASE}:icu-type`;
/** Code = model name, version = model version, in RiskAssessment.method. */
export const MODEL_SYSTEM = `${SERVICE_SYSTEM_BASE}:model`;
/** Extension on RiskAssessment pointing at the contained OperationOutcome with the input warnings. */
export const INPUT_WARNINGS_EXTENSION = `${SERVICE_SYSTEM_BASE}:StructureDefinition:input-warnings`;
/** RiskAssessment extension: the validated input profile the stay matched (scenario code, held-out AUROC). */
export const INPUT_PROFILE_EXTENSION = `${SERVICE_SYSTEM_BASE}:StructureDefinition:input-profile`;

/** RiskAssessment extension: the probability after each hour used (`point` with `hour` and `probability`). */
export const TRAJECTORY_EXTENSION = `${SERVICE_SYSTEM_BASE}:StructureDefinition:trajectory`;
/**
 * RiskAssessment extension: each variable's effect on the probability (`contribution` with `variable` and `effect`).
 */
export const CONTRIBUTIONS_EXTENSION = `${SERVICE_SYSTEM_BASE}:StructureDefinition:contributions`;

/** LOINC pulse-oximetry SpO2: not the arterial SaO2 the model was trained on (US Core pulse-ox also carries 2708-6). */
export const LOINC_PULSE_OXIMETRY = '59408-5';
/** LOINC body height; the model's Height static. */
export const LOINC_BODY_HEIGHT = '8302-2';

/**
 * The generic blood pressure codes are method-less; without a VARIABLE_SYSTEM coding naming
 * the invasive variable they are read as the non-invasive (cuff) series, which is what a
 * vital-signs profile Observation without further detail usually is.
 */
export const NON_INVASIVE_DEFAULT: Readonly<Record<string, string>> = {
  SysABP: 'NISysABP',
  DiasABP: 'NIDiasABP',
  MAP: 'NIMAP',
};

/**
 * Mechanical ventilation has no LOINC observation: EHRs chart the ventilator's settings. Any of
 * these in an hour means MechVent = 1 then (HL7 SANER's "Ventilator Observations" value set,
 * hl7.org/fhir/uv/saner/ValueSet/VentilatorObservations, and MII ICU's 33438-3).
 */
export const VENTILATOR_OBSERVATION_CODES: readonly string[] = [
  '19835-8',
  '19994-3',
  '20077-4',
  '20079-0',
  '20103-8',
  '33438-3',
];

/** SNOMED CT 419099009 "Dead (finding)": the predicted outcome, qualified as in-hospital in the text. */
export const OUTCOME_DEATH = { system: SNOMED, code: '419099009', display: 'Dead' } as const;
export const OUTCOME_TEXT = 'in-hospital death';
