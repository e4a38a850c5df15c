/** The description of `POST /fhir/RiskAssessment/$predict` in the OpenAPI document (src/api/fhir.ts). */
export const PREDICT_DESCRIPTION = `FHIR R4 operation: predicts in-hospital mortality from the Observations of one ICU stay and answers a **RiskAssessment**.

**Request** (\`application/fhir+json\`): a \`Bundle\` (type \`collection\` or \`searchset\`) or a \`Parameters\` resource whose
parameters carry the resources (or a Bundle); \`Parameters\` may also give \`predictionTime\` (valueDateTime).
It must hold exactly **one Patient** (age in completed years at the prediction time from \`birthDate\`; sex from \`gender\`),
optionally an **Encounter** whose \`period.start\` is the ICU admission (ICU type from a coding in
\`urn:icu-mortality:fhir:icu-type\`, codes 1-4), and **Observations**.

**Observations** are matched by **code, never by display text**: the LOINC codes the model manifest lists
(vital-signs profile codes: heart rate 8867-4, oxygen saturation 2708-6, mean arterial pressure 8478-0, respiratory rate 9279-1,
body temperature 8310-5; lactate 2524-7/32693-4/2518-9, GCS 9269-2, BUN 3094-0, creatinine 2160-0 and the other labs; body height 8302-2,
body weight 29463-7; invasive arterial pressures 76215-3/76213-8/76214-6), or a coding in \`urn:icu-mortality:fhir:variable\` whose code
is a model variable name, which wins when present (the generic blood pressure codes 8480-6/8462-4/8478-0 alone are read as the
non-invasive cuff series, and an information issue says so). **Mechanical ventilation** has no LOINC observation: an Observation of a ventilator setting (HL7 SANER
"Ventilator Observations": 19835-8, 19994-3, 20077-4, 20079-0, 20103-8; or 33438-3) marks its hour \`MechVent\` = 1. Panels with **components** (blood pressure 85354-9) are read
component by component. Pulse-oximetry SpO2 (59408-5) is **not** used: the model was trained on arterial SaO2.
Values must be \`valueQuantity\` with a **UCUM** code, converted by the NLM's UCUM library to the canonical unit: commensurable
units, and mass/moles/equivalents where the manifest gives a molar mass and charge (creatinine umol/L, glucose mmol/L, sodium meq/L). Status must be final, amended, corrected or preliminary; time from effectiveDateTime,
effectiveInstant or effectivePeriod (end), with a time zone.

**Time.** Time zero is \`Encounter.period.start\` when given, else the earliest usable observation. The prediction time is
\`predictionTime\` when given, else \`Encounter.period.end\`, else the latest usable observation (never after now); when it is more
than FHIR_STALE_AFTER_HOURS (24) before now, a warning says so. Observations before time zero or after the prediction time are not used. Observations are binned into hours by the same code as training
(src/clinical/binning.ts: last value of the hour, urine summed), and the model reads the last maxHours hours.

**Whose data:** an Observation is used only when its \`subject\` is exactly the Patient of the request: \`Patient/<id>\` or the
Patient entry's \`fullUrl\` (a relative reference resolves against its own entry's fullUrl base); a Patient without \`id\` or
\`fullUrl\` is a 400. Different values of one variable at one instant are not used (urine outputs add up).

**Nothing is used silently:** every Observation not used (unknown code, unconvertible unit, implausible value, wrong status,
no time or an effectivePeriod ending before its start, no subject or another one, contradictory values) is listed, with its location, in an \`OperationOutcome\` contained in the RiskAssessment and referenced by
the extension \`urn:icu-mortality:fhir:StructureDefinition:input-warnings\`.

**Response**: RiskAssessment (status final, subject, encounter, occurrenceDateTime = prediction time, method = model name and
version, basis = the Patient, Encounter and Observations used, prediction with outcome "in-hospital death" (SNOMED CT 419099009),
\`probabilityDecimal\` **between 0 and 1** (not a percentage) and \`qualitativeRisk\` low/moderate/high from
RISK_MODERATE_THRESHOLD/RISK_HIGH_THRESHOLD).

**Errors**: 400 malformed Bundle/Parameters (OperationOutcome with FHIRPath expressions); 422 nothing usable, no Patient or
age outside the model's range; 404, 413, 503 and the other statuses as on \`/v1/predict\` (one error table), each an
OperationOutcome. Scope: \`predict\`.`;
