import { z, type ZodType } from 'zod';
import { hourRowSchema, MAX_HOURS_RECEIVED, MAX_ID_LENGTH, patientInputSchema } from '../clinical/schemas.js';
import type { HourRow } from '../clinical/types.js';
import type { Manifest } from '../model/manifest.js';
import type { Delivery } from '../scoring/encounters.js';

/** The request of `POST /v1/encounters/{id}/observations` (src/api/encounters.ts): documented, checked, read. */

export const DESCRIPTION = `Scores an ICU encounter as its hours arrive: each call adds hours and answers the stay as it now
stands, as one \`POST /v1/predict\` result (\`probability\`, \`hoursUsed\`, \`inputProfile\`; \`trajectory\` and
\`contributions\` with \`"explain": true\`).

**Rows.** \`hours\` holds rows \`{ "hour": h, "HR": 88, ... }\`, \`h\` the 0-based hour since admission (the row's position
in \`/v1/predict\`'s \`hours\`), or \`{ "at": "2026-01-02T03:04:05Z", ... }\` when the encounter has an \`admittedAt\`.
Names, units (\`units\`) and bounds are those of \`/v1/predict\`. Hours never sent are empty hours.

**Late and repeated values.** A row for an hour already scored (a late lab) and a repeated delivery are merged, and the
answer is the whole stay scored anew on the stored hours: it equals \`/v1/predict\` on the same hours. A row sent by
\`hour\` is that hour's value and replaces what was there; timed rows keep an hour's last value (urine output: the sum
of its distinct instants), the rule the readers bin records with.

**Descriptors** (\`age\`, \`sex\`, \`icuType\`, \`height\`, \`weight\`, a hybrid model's \`noteEmbedding\`) come with the first
contact; sent again, they replace the stored ones. \`admittedAt\` is fixed by the first contact.

**Window.** The model reads the last maxHours hours of a stay. Past them each call rescores that window: a recurrent
state cannot forget its first hours, so the stored hours are cut to the window and replayed. Hours before the window
are accepted and change nothing, as in \`/v1/predict\`.

**Storage.** The encounter (descriptors and hours, measured values) is kept in the prediction store under an HMAC of
its id, shared by every replica and kept across restarts, until \`DELETE\` or ENCOUNTER_IDLE_TTL_MS without a call.
A model reload rescores the stored hours with the new version at the next call.

**Errors.** 400 names the field: a malformed row, an hour before admission or in the future, an instant without
\`admittedAt\`; 503 when ENCOUNTER_MAX_HELD encounters are held; 409 when concurrent calls kept overtaking this one.`;

/** Rows in one call: a day of one row a minute. */
export const MAX_ROWS_PER_DELIVERY = 1440;
/** A call's body: rows of every variable, a hybrid model's note embedding. */
export const ENCOUNTER_BODY_LIMIT_BYTES = 1024 * 1024;

const instant = z.iso.datetime({ offset: true });

export const paramsSchema = z.object({
  id: z
    .string()
    .min(1)
    .max(MAX_ID_LENGTH)
    .meta({ description: 'The client’s encounter id: stored only as an HMAC, never logged.' }),
});

const placement = {
  hour: z
    .number()
    .int()
    .min(0)
    .max(MAX_HOURS_RECEIVED - 1)
    .optional()
    .meta({ description: 'Hour since admission, from 0 (the row’s position in /v1/predict’s hours).' }),
  at: instant.optional().meta({ description: 'The instant of the values, with its zone; needs admittedAt.' }),
};

const onePlacement = (row: { hour?: unknown; at?: unknown }) => (row.hour === undefined) !== (row.at === undefined);
const placementMessage = { message: 'each row needs either hour or at (not both)' };

/** What the route checks itself; the measurements are validated as /v1/predict validates them, by the service. */
export const envelopeSchema = z.strictObject({
  age: z.unknown().optional(),
  sex: z.unknown().optional(),
  icuType: z.unknown().optional(),
  height: z.unknown().optional(),
  weight: z.unknown().optional(),
  units: z.unknown().optional(),
  noteEmbedding: z.unknown().optional(),
  admittedAt: instant.optional(),
  explain: z.boolean().optional(),
  hours: z
    .array(z.looseObject(placement).refine(onePlacement, placementMessage))
    .max(MAX_ROWS_PER_DELIVERY)
    .default([]),
});

export type Envelope = z.output<typeof envelopeSchema>;

/** The body as documented, with the model's names, units and bounds; checked as the envelope (envelopeSchema). */
export function documentedBody(manifest: Manifest): ZodType<Envelope> {
  const patient = patientInputSchema(manifest);
  return z
    .strictObject({
      age: patient.shape.age,
      sex: patient.shape.sex,
      icuType: patient.shape.icuType,
      height: patient.shape.height,
      weight: patient.shape.weight,
      units: patient.shape.units,
      noteEmbedding: patient.shape.noteEmbedding,
      admittedAt: instant.optional().meta({ description: 'Admission instant, with its zone (first contact).' }),
      explain: z.boolean().optional().meta({ description: 'Add trajectory and contributions, as /v1/predict.' }),
      hours: z
        .array(hourRowSchema(manifest).extend(placement).refine(onePlacement, placementMessage))
        .max(MAX_ROWS_PER_DELIVERY)
        .default([]),
    })
    .meta({ id: 'EncounterObservations' }) as unknown as ZodType<Envelope>;
}

/** The envelope as the scoring service takes it; the service validates the descriptors as /v1/predict does. */
export function deliveryOf(body: Envelope): Delivery {
  const rows = body.hours.map(({ hour, at, ...values }) => ({
    ...(hour === undefined ? {} : { hour }),
    ...(at === undefined ? {} : { at: Date.parse(at) }),
    values: values as HourRow,
  }));
  const { age, sex, icuType, height, weight, units, noteEmbedding, admittedAt } = body;
  // The validator checks the descriptors' types and bounds (the same messages as /v1/predict).
  return {
    ...(age === undefined ? {} : { age: age as Delivery['age'] }),
    ...(sex === undefined ? {} : { sex: sex as Delivery['sex'] }),
    ...(icuType === undefined ? {} : { icuType: icuType as Delivery['icuType'] }),
    ...(height === undefined ? {} : { height: height as Delivery['height'] }),
    ...(weight === undefined ? {} : { weight: weight as Delivery['weight'] }),
    ...(units === undefined ? {} : { units: units as Record<string, string> }),
    ...(noteEmbedding === undefined ? {} : { noteEmbedding: noteEmbedding as number[] }),
    ...(admittedAt === undefined ? {} : { admittedAt: Date.parse(admittedAt) }),
    rows,
  };
}
