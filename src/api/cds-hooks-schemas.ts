import { z } from 'zod';

/** The request and response schemas and the description of the CDS Hooks routes (src/api/cds-hooks.ts). */

export const callResponseSchema = z.object({
  cards: z.array(z.looseObject({ uuid: z.string(), summary: z.string() })),
});
export const discoveryResponseSchema = z.object({
  services: z.array(z.looseObject({ hook: z.string(), id: z.string(), description: z.string() })),
});

export const CALL_DESCRIPTION = `CDS Hooks 2.0 \`patient-view\`: answers \`{ cards: [card] }\` with the mortality probability (summary),
an indicator from RISK_MODERATE_THRESHOLD / RISK_HIGH_THRESHOLD (info / warning / critical) and a source naming the model
with a link to its model card (MODEL_CARD_URL).

Data come from \`prefetch.patient\`, \`prefetch.vitals\`, \`prefetch.labs\` (and \`prefetch.encounter\` if an EHR sends it).
Omitted keys are fetched from \`fhirServer\` with \`fhirAuthorization.access_token\` when that server is allow-listed (CDS_FHIR_SERVERS);
a key sent as \`null\` (the EHR has no such data) is scored as empty and not fetched;
the Encounter \`context.encounterId\` is fetched the same way and gives the ICU admission time.
**412** when the Patient or the vital signs are neither prefetched nor fetchable (reason in \`message\`).
**200 with no cards** when the data hold nothing the model can use, the patient is outside the model's age range,
or CDS_SILENT=true (shadow mode: scored and audited, not shown). The mapping rules are those of \`POST /fhir/RiskAssessment/$predict\`.`;

/**
 * One Feedback entry (CDS Hooks 2.0, "Feedback"): `card` is the uuid of a card this service
 * returned; `accepted` requires `acceptedSuggestions`; an `overrideReason` (a Coding and/or a
 * user comment) goes only with `overridden`; `outcomeTimestamp` is an ISO 8601 instant.
 */
const codingSchema = z.looseObject({
  system: z.string().optional(),
  code: z.string().optional(),
  display: z.string().optional(),
});
const feedbackBase = {
  card: z.uuid().meta({ description: 'The uuid of the card the user acted on' }),
  outcomeTimestamp: z.iso
    .datetime({ offset: true })
    .meta({ description: 'When the user acted (ISO 8601, with a time zone)' }),
};
export const feedbackSchema = z.discriminatedUnion('outcome', [
  z.looseObject({
    ...feedbackBase,
    outcome: z.literal('accepted'),
    acceptedSuggestions: z
      .array(z.looseObject({ id: z.string().min(1) }))
      .min(1)
      .meta({ description: 'Required with accepted: the suggestions taken' }),
    overrideReason: z.never().optional(),
  }),
  z.looseObject({
    ...feedbackBase,
    outcome: z.literal('overridden'),
    acceptedSuggestions: z.never().optional(),
    overrideReason: z
      .looseObject({ reason: codingSchema.optional(), userComment: z.string().max(10_000).optional() })
      .optional(),
  }),
]);
