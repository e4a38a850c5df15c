import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AppConfig } from '../config.js';
import { assess } from '../fhir/assess.js';
import {
  hookRequestSchema,
  modelCardLink,
  PREFETCH,
  riskCard,
  serviceDescription,
  SERVICE_ID,
  type Card,
  type HookRequest,
} from '../fhir/cds.js';
import { cardIds, type CardIds } from '../fhir/card-id.js';
import { createFhirClient, FhirFetchError, originAllowed, withDeadline } from '../fhir/client.js';
import { gatherResources } from '../fhir/gather.js';
import { FhirInputError } from '../fhir/outcome.js';
import { recordAudit } from '../plugins/app/audit.js';
import { rateLimitKey } from '../plugins/external/rate-limit.js';
import { ApiError, errorSchema } from '../http/errors.js';
import { requestSignal } from '../http/request-signal.js';
import { mapScoringError } from '../http/error-table.js';
import { cdsPatientViewExample } from './examples.js';
import './scope.js';

/**
 * CDS Hooks 2.0 `patient-view` service, discovery and feedback. Omitted prefetch keys are
 * fetched from an allow-listed `fhirServer`; a null key means the EHR has no such data; what is
 * omitted and cannot be fetched is a 412, as the specification asks.
 */

const callResponseSchema = z.object({ cards: z.array(z.looseObject({ uuid: z.string(), summary: z.string() })) });
const discoveryResponseSchema = z.object({
  services: z.array(z.looseObject({ hook: z.string(), id: z.string(), description: z.string() })),
});

const CALL_DESCRIPTION = `CDS Hooks 2.0 \`patient-view\`: answers \`{ cards: [card] }\` with the mortality probability (summary),
an indicator from RISK_MODERATE_THRESHOLD / RISK_HIGH_THRESHOLD (info / warning / critical) and a source naming the model
with a link to its model card (MODEL_CARD_URL).

Data come from \`prefetch.patient\`, \`prefetch.vitals\`, \`prefetch.labs\` (and \`prefetch.encounter\` if an EHR sends it).
Omitted keys are fetched from \`fhirServer\` with \`fhirAuthorization.access_token\` when that server is allow-listed (CDS_FHIR_SERVERS);
a key sent as \`null\` (the EHR has no such data) is scored as empty and not fetched;
the Encounter \`context.encounterId\` is fetched the same way and gives the ICU admission time.
**412** when the Patient or the vital signs are neither prefetched nor fetchable (reason in \`message\`).
**200 with no cards** when the data hold nothing the model can use, the patient is outside the model's age range,
or CDS_SILENT=true (shadow mode: scored and audited, not shown). The mapping rules are those of \`POST /fhir/RiskAssessment/$predict\`.`;

interface Collected {
  bundle: { resourceType: 'Bundle'; type: 'collection'; entry: Array<{ fullUrl?: string; resource: unknown }> };
  notes: string[];
}

function preconditionFailed(message: string): ApiError {
  return new ApiError(412, 'precondition_failed', message);
}

function asResources(value: unknown): unknown[] {
  if (typeof value !== 'object' || value === null) return [];
  const v = value as { resourceType?: unknown; entry?: Array<{ resource?: unknown; search?: { mode?: string } }> };
  if (v.resourceType === 'Bundle')
    return (v.entry ?? [])
      .filter((e) => e.resource !== undefined && e.search?.mode !== 'outcome')
      .map((e) => e.resource);
  return [value];
}

/**
 * `url` without its trailing slashes. A loop, not /\/+$/: that regex backtracks over every run of
 * slashes, so a fhirServer of a long run followed by one more character cost seconds per 40 KB.
 */
function withoutTrailingSlashes(url: string): string {
  let end = url.length;
  while (end > 0 && url.charCodeAt(end - 1) === 0x2f) end--;
  return url.slice(0, end);
}

async function collect(body: HookRequest, config: AppConfig, signal: AbortSignal): Promise<Collected> {
  const prefetch = body.prefetch ?? {};
  // CDS Hooks 2.0: a key is null when the client has no such data, and omitted when it could not
  // prefetch it; only an omitted key is fetched from fhirServer.
  const have = (key: string): boolean => prefetch[key] !== undefined;
  const notes: string[] = [];
  const entries: unknown[] = [];
  const missing = (['patient', 'vitals', 'labs'] as const).filter((k) => !have(k));
  const wantEncounter = body.context.encounterId !== undefined && !have('encounter');
  for (const key of ['patient', 'vitals', 'labs', 'encounter'])
    if (have(key) && prefetch[key] !== null) entries.push(...asResources(prefetch[key]));

  if (missing.length > 0 || wantEncounter) {
    const token = body.fhirAuthorization?.access_token;
    const server = body.fhirServer;
    const canFetch = server !== undefined && token !== undefined && originAllowed(server, config.fhir.cdsFhirServers);
    if (canFetch) {
      const client = createFhirClient({
        baseUrl: server,
        accessToken: token,
        allowedOrigins: config.fhir.cdsFhirServers,
        signal,
      });
      const patientId = encodeURIComponent(body.context.patientId);
      const fill = (template: string): string => template.replaceAll('{{context.patientId}}', patientId);
      try {
        const fetched = await Promise.all([
          ...missing.map((key) =>
            key === 'patient'
              ? client.read(fill(PREFETCH.patient)).then((r) => [r])
              : client.search(fill(PREFETCH[key])),
          ),
          ...(wantEncounter
            ? [client.read(`Encounter/${encodeURIComponent(body.context.encounterId as string)}`).then((r) => [r])]
            : []),
        ]);
        for (const resources of fetched) entries.push(...resources);
      } catch (error) {
        if (error instanceof FhirFetchError)
          throw preconditionFailed(
            `prefetch incomplete (${missing.join(', ') || 'encounter'}) and fetching from fhirServer failed: ${error.message}`,
          );
        throw error;
      }
    } else if (missing.includes('patient') || missing.includes('vitals')) {
      const why =
        server === undefined || token === undefined
          ? 'no fhirServer with fhirAuthorization was given'
          : "fhirServer is not on this service's allow-list (CDS_FHIR_SERVERS)";
      throw preconditionFailed(`prefetch lacks ${missing.join(', ')} and ${why}`);
    } else if (missing.includes('labs')) {
      notes.push('Laboratory results were not available to the service (no prefetch, no FHIR server access).');
    }
  }
  // A prefetch for another patient than the hook's context is an EHR error, not something to score;
  // a Patient without id cannot be checked, nor can the Observations' subjects against it.
  for (const r of entries) {
    const res = r as { resourceType?: unknown; id?: unknown };
    if (res?.resourceType === 'Patient' && typeof res.id !== 'string') {
      throw new ApiError(400, 'invalid_prefetch', 'the prefetched Patient has no id', [
        { path: 'prefetch.patient.id', message: 'is required: it must equal context.patientId' },
      ]);
    }
    if (res?.resourceType === 'Patient' && res.id !== body.context.patientId) {
      throw new ApiError(400, 'invalid_prefetch', 'the prefetched Patient is not context.patientId', [
        { path: 'prefetch.patient.id', message: 'does not match context.patientId' },
      ]);
    }
  }
  // The Patient's URL on fhirServer: an absolute subject reference is this patient only on that server.
  const base = body.fhirServer === undefined ? undefined : withoutTrailingSlashes(body.fhirServer);
  const patientUrl = base === undefined ? undefined : `${base}/Patient/${body.context.patientId}`;
  return {
    bundle: {
      resourceType: 'Bundle',
      type: 'collection',
      entry: entries.map((resource) =>
        patientUrl !== undefined && (resource as { resourceType?: unknown })?.resourceType === 'Patient'
          ? { fullUrl: patientUrl, resource }
          : { resource },
      ),
    },
    notes,
  };
}

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
const feedbackSchema = z.discriminatedUnion('outcome', [
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

/** Feedback is a few small JSON objects; the service's 64 MiB default is for batches of stays. */
export const FEEDBACK_BODY_LIMIT_BYTES = 64 * 1024;

export interface CdsHooksRoutesOptions {
  config: AppConfig;
  now?: () => Date;
}

export async function cdsHooksRoutes(app: FastifyInstance, opts: CdsHooksRoutesOptions): Promise<void> {
  const { config } = opts;
  const now = opts.now ?? (() => new Date());
  const cards = cardIds(config.fhir.cdsCardKey);

  app.get(
    '/cds-services',
    {
      config: { scope: 'cds' },
      schema: {
        operationId: 'discoverCdsServices',
        tags: ['cds-hooks'],
        summary: 'CDS Hooks 2.0 discovery',
        description: "Lists the patient-view service with its prefetch templates. Requires the EHR's JWT (scope cds).",
        response: { 200: discoveryResponseSchema },
      },
    },
    async () => {
      const model = app.models.active;
      return { services: [serviceDescription(model ? { name: model.name, version: model.version } : undefined)] };
    },
  );

  app.withTypeProvider<ZodTypeProvider>().post(
    `/cds-services/${SERVICE_ID}`,
    {
      config: { scope: 'cds', audit: true, bodyLimitSetting: 'FHIR_BODY_LIMIT_BYTES' },
      bodyLimit: config.fhir.bodyLimitBytes,
      schema: {
        operationId: 'callCdsService',
        tags: ['cds-hooks'],
        summary: 'CDS Hooks 2.0 patient-view: ICU mortality risk card',
        description: CALL_DESCRIPTION,
        body: hookRequestSchema.meta({ examples: [cdsPatientViewExample] }),
        response: {
          200: callResponseSchema,
          400: errorSchema,
          401: errorSchema,
          403: errorSchema,
          404: errorSchema,
          412: errorSchema,
          413: errorSchema,
          503: errorSchema,
        },
      },
      serializerCompiler: () => (data) => JSON.stringify(data),
    },
    async (request, reply) => {
      const { body } = request;
      recordAudit(request, { patients: 1 });
      if (body.hook !== 'patient-view')
        throw new ApiError(400, 'unsupported_hook', `this service answers the patient-view hook, not "${body.hook}"`, [
          { path: 'hook', message: 'expected patient-view' },
        ]);
      const signal = requestSignal(request, reply, config.requestTimeoutMs);
      const fetchDeadline = withDeadline(signal.signal, config.fhir.fetchTimeoutMs);
      try {
        const collected = await collect(body, config, fetchDeadline.signal).finally(() => fetchDeadline.dispose());
        return reply.send(
          await cardsFor(app, request, collected, { config, now: now(), signal: signal.signal, cards }),
        );
      } catch (error) {
        if (error instanceof ApiError) {
          if (error.statusCode === 412)
            request.log.info({ cds: 'precondition-failed' }, 'CDS hook without the data it needs');
          throw error;
        }
        throw mapScoringError(error, signal, app.metrics);
      } finally {
        signal.dispose();
      }
    },
  );

  app.withTypeProvider<ZodTypeProvider>().post(
    `/cds-services/${SERVICE_ID}/feedback`,
    {
      config: { scope: 'cds' },
      bodyLimit: FEEDBACK_BODY_LIMIT_BYTES,
      schema: {
        operationId: 'sendCdsFeedback',
        tags: ['cds-hooks'],
        summary: 'CDS Hooks 2.0 feedback: whether a card was accepted or overridden',
        body: z.object({ feedback: z.array(feedbackSchema).min(1).max(1000) }),
        response: {
          200: z.strictObject({}).meta({ description: 'Feedback recorded (counts only are logged)' }),
          400: errorSchema,
          413: errorSchema,
        },
      },
    },
    async (request, reply) => {
      const { feedback } = request.body;
      const unknown = feedback.flatMap((f, i) =>
        cards.verify(f.card)
          ? []
          : [{ path: `feedback.${i}.card`, message: 'is not the uuid of a card this service issued' }],
      );
      if (unknown.length > 0)
        throw new ApiError(
          400,
          'unknown_card',
          'feedback names a card this service did not issue',
          unknown.slice(0, 20),
        );
      // Counts only: card ids and reasons may identify a patient encounter.
      const accepted = feedback.filter((f) => f.outcome === 'accepted').length;
      request.log.info({ cds: 'feedback', accepted, overridden: feedback.length - accepted }, 'CDS card feedback');
      return reply.code(200).send({});
    },
  );
}

/** The hook's answer for the collected resources: the risk card, or no card when the data cannot be scored. */
async function cardsFor(
  app: FastifyInstance,
  request: FastifyRequest,
  collected: Awaited<ReturnType<typeof collect>>,
  context: { config: AppConfig; now: Date; signal: AbortSignal; cards: CardIds },
): Promise<{ cards: Card[] }> {
  const { config } = context;
  let assessment;
  try {
    assessment = await assess(gatherResources(collected.bundle), {
      models: app.models,
      now: context.now,
      staleAfterHours: config.fhir.staleAfterHours,
      thresholds: config.fhir.thresholds,
      signal: context.signal,
      metrics: app.metrics,
      caller: rateLimitKey(request),
    });
  } catch (error) {
    if (!(error instanceof FhirInputError)) throw error;
    const reason = error.issues.find((i) => i.severity === 'error')?.message ?? error.message;
    if (error.statusCode === 400)
      throw new ApiError(400, 'invalid_prefetch', `the prefetched resources are not valid FHIR: ${reason}`);
    request.log.info({ cds: 'no-card', reason }, 'CDS hook answered without cards');
    return { cards: [] };
  }
  const { result, mapped } = assessment;
  recordAudit(request, { model: `${result.model.name}@${result.model.version}` });
  if (config.fhir.cdsSilent) return { cards: [] };
  const cardUrl = modelCardLink(config.fhir.modelCardUrl, result.model);
  const alerts: string[] = [];
  if (mapped.otherSubjects > 0) {
    // The count only: which Observations, and whose, stay out of the log.
    request.log.info({ cds: 'other-subject', observations: mapped.otherSubjects }, 'CDS prefetch held other subjects');
    alerts.push(
      `**${mapped.otherSubjects} Observation(s) were not used: their subject is not this patient** (none, another patient, or a patient on another FHIR server). The estimate uses this patient's data only; the EHR's data should be checked.`,
    );
  }
  const card = riskCard({
    uuid: context.cards.issue(),
    alerts,
    result,
    thresholds: config.fhir.thresholds,
    ...(cardUrl ? { modelCardUrl: cardUrl } : {}),
    bootstrap: app.models.active?.manifest.bootstrap ?? false,
    warnings: mapped.issues.filter((i) => i.severity === 'warning').map((i) => i.message),
    notes: collected.notes,
  });
  return { cards: [card] };
}
