import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { recordAudit } from '../plugins/app/audit.js';
import { ApiError, errorSchema } from '../http/errors.js';
import { upsertOutcomes, type OutcomeRow } from '../store/outcomes.js';
import type { Store } from '../store/store.js';
import './scope.js';

/**
 * `POST /v1/outcomes`: in-hospital deaths and survivals as they become known, stored under the
 * subject key of their id and joined to that id's predictions by live monitoring. Each entry is
 * validated on its own: one bad entry is reported and the others are stored.
 */

export const MAX_OUTCOMES_PER_REQUEST = 5000;
/** 5000 entries of a 256-character id and a timestamp fit well within 2 MiB. */
export const OUTCOMES_BODY_LIMIT_BYTES = 2 * 1024 * 1024;
/** An outcome is known when it is posted: a time later than now (beyond clock skew) is a mistake. */
const FUTURE_TOLERANCE_MS = 5 * 60_000;

export const outcomeEntrySchema = z.strictObject({
  id: z.string().min(1).max(256).meta({ description: "The patient's or encounter's id, as sent when it was scored" }),
  died: z.boolean().meta({ description: 'true: died in hospital; false: left hospital alive' }),
  at: z.iso
    .datetime({ offset: true })
    .meta({ description: 'When the outcome was known (death or discharge), ISO 8601 with offset' }),
});

const envelopeSchema = z.strictObject({ outcomes: z.array(z.unknown()).min(1).max(MAX_OUTCOMES_PER_REQUEST) });

const documentedBody = z
  .strictObject({ outcomes: z.array(outcomeEntrySchema).min(1).max(MAX_OUTCOMES_PER_REQUEST) })
  .meta({
    examples: [
      {
        outcomes: [
          { id: '132539', died: false, at: '2026-03-02T10:00:00Z' },
          { id: '132540', died: true, at: '2026-03-03T04:30:00+01:00' },
        ],
      },
    ],
  });

const entryErrorSchema = z.object({
  index: z.number().int(),
  id: z.string().optional(),
  error: errorSchema,
});

export const outcomesResponseSchema = z
  .object({
    stored: z.number().int().meta({ description: 'New outcomes' }),
    updated: z.number().int().meta({ description: 'Outcomes that changed a stored one (died or at)' }),
    unchanged: z.number().int().meta({ description: 'Repeats of a stored outcome: nothing written' }),
    unmatched: z
      .number()
      .int()
      .meta({ description: 'Outcomes stored whose id has no prediction at or before their time (yet)' }),
    failed: z.number().int().meta({ description: 'Invalid entries, each in errors' }),
    errors: z.array(entryErrorSchema),
  })
  .meta({ id: 'OutcomesAnswer' });

const DESCRIPTION = `Stores in-hospital outcomes of scored patients, for live monitoring (\`GET /v1/monitoring\`).

Each entry is \`{ id, died, at }\`: the id the patient (or encounter) was scored with, whether they died in hospital,
and when that was known. The id is stored only as an HMAC under the site key. An outcome joins the id's latest
prediction at or before \`at\`; one with none is stored and counted in \`unmatched\`.

Idempotent: posting the same outcome again changes nothing (\`unchanged\`); a different \`died\` or \`at\` for an id
replaces the stored one (\`updated\`). Invalid entries are reported in \`errors\` (paths relative to the entry) and the
others stored; when every entry is invalid the answer is **400**. At most ${MAX_OUTCOMES_PER_REQUEST} entries a request.
Requires scope \`outcomes:write\`.`;

export async function outcomeRoutes(app: FastifyInstance, opts: { store: Store; now?: () => Date }): Promise<void> {
  const { store } = opts;
  const now = opts.now ?? (() => new Date());
  app.withTypeProvider<ZodTypeProvider>().post(
    '/v1/outcomes',
    {
      config: { scope: 'outcomes:write', audit: true },
      bodyLimit: OUTCOMES_BODY_LIMIT_BYTES,
      schema: {
        operationId: 'postOutcomes',
        tags: ['monitoring'],
        summary: 'Store in-hospital outcomes of scored patients',
        description: DESCRIPTION,
        body: documentedBody,
        response: { 200: outcomesResponseSchema, 400: errorSchema, 413: errorSchema, 503: errorSchema },
      },
      // Entries are validated one by one in the handler; the request itself only for its envelope.
      validatorCompiler: () => (data) => {
        const parsed = envelopeSchema.safeParse(data);
        return parsed.success ? { value: parsed.data } : { error: parsed.error };
      },
    },
    async (request, reply) => {
      const entries = (request.body as { outcomes: unknown[] }).outcomes;
      recordAudit(request, { patients: entries.length });
      const at = now().getTime();
      const rows: OutcomeRow[] = [];
      const rowIndex: number[] = [];
      const errors: z.infer<typeof entryErrorSchema>[] = [];
      entries.forEach((entry, index) => {
        const parsed = outcomeEntrySchema.safeParse(entry);
        const details = parsed.success
          ? Date.parse(parsed.data.at) > at + FUTURE_TOLERANCE_MS
            ? [{ path: 'at', message: 'is in the future' }]
            : []
          : parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
        if (parsed.success && details.length === 0) {
          rows.push({
            subjectKey: store.subjectKey(parsed.data.id),
            died: parsed.data.died,
            at: Date.parse(parsed.data.at),
          });
          rowIndex.push(index);
          return;
        }
        const id = (entry as { id?: unknown } | null)?.id;
        errors.push({
          index,
          ...(typeof id === 'string' && id.length <= 256 ? { id } : {}),
          error: { error: 'validation_failed', message: 'this outcome is invalid', details },
        });
      });
      if (rows.length === 0)
        throw new ApiError(
          400,
          'validation_failed',
          `none of the ${entries.length} outcomes is valid`,
          errors.flatMap((e) =>
            e.error.details.map((d) => ({ ...d, path: `outcomes.${e.index}${d.path ? `.${d.path}` : ''}` })),
          ),
        );
      let written;
      try {
        await store.ready();
        written = await upsertOutcomes(store.client, rows, at);
        store.report(true);
      } catch (error) {
        store.report(false);
        request.log.warn({ store: store.backend, reason: (error as Error).message }, 'outcomes not stored');
        throw new ApiError(
          503,
          'store_unavailable',
          'the store is unavailable: nothing was stored; retry later',
          [],
          5,
        );
      }
      const count = (status: string) => written.filter((w) => w.status === status).length;
      return reply.send({
        stored: count('stored'),
        updated: count('updated'),
        unchanged: count('unchanged'),
        unmatched: written.filter((w) => !w.matched).length,
        failed: errors.length,
        errors,
      });
    },
  );
}
