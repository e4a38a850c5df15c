import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { AppConfig } from '../config.js';
import { assess } from '../fhir/assess.js';
import { hookRequestSchema, modelCardLink, riskCard, serviceDescription, SERVICE_ID, type Card } from '../fhir/cds.js';
import { cardIds, type CardIds } from '../fhir/card-id.js';
import { withDeadline } from '../fhir/client.js';
import { CdsPrefetchError, collectPrefetch, type Collected } from '../fhir/cds-prefetch.js';
import { gatherResources } from '../fhir/gather.js';
import { FhirInputError } from '../fhir/outcome.js';
import { recordAudit } from '../plugins/app/audit.js';
import { rateLimitKey } from '../plugins/external/rate-limit.js';
import { ApiError, errorSchema } from '../http/errors.js';
import { requestSignal } from '../http/request-signal.js';
import { mapScoringError } from '../http/error-table.js';
import { cdsPatientViewExample } from './examples.js';
import { SMART_LAUNCH_PATH } from './smart-app.js';
import { CALL_DESCRIPTION, callResponseSchema, discoveryResponseSchema } from './cds-hooks-schemas.js';
import { cdsFeedbackRoute } from './cds-feedback.js';
import './scope.js';

/**
 * CDS Hooks 2.0 `patient-view` service, discovery and feedback. Omitted prefetch keys are
 * fetched from an allow-listed `fhirServer`; a null key means the EHR has no such data; what is
 * omitted and cannot be fetched is a 412, as the specification asks.
 */

export interface CdsHooksRoutesOptions {
  config: AppConfig;
  now?: () => Date;
}

export async function cdsHooksRoutes(app: FastifyInstance, opts: CdsHooksRoutesOptions): Promise<void> {
  const { config } = opts;
  const now = opts.now ?? (() => new Date());
  const cards = cardIds(config.fhir.cdsCardKey);
  if (config.fhir.smartApp.launchUrl === undefined && (config.auth.jwt?.cds.issuers.length ?? 0) > 0)
    app.log.warn(
      { smartLaunchUrl: 'unset' },
      'SMART_LAUNCH_URL unset: CDS cards carry no SMART app link except on a loopback host',
    );

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
        const collected = await collectPrefetch(body, config.fhir.cdsFhirServers, fetchDeadline.signal).finally(() =>
          fetchDeadline.dispose(),
        );
        return reply.send(
          await cardsFor(app, request, collected, {
            config,
            now: now(),
            signal: signal.signal,
            cards,
            patientId: body.context.patientId,
          }),
        );
      } catch (error) {
        if (error instanceof CdsPrefetchError && error.statusCode === 412)
          request.log.info({ cds: 'precondition-failed' }, 'CDS hook without the data it needs');
        throw mapScoringError(error, signal, app.metrics);
      } finally {
        signal.dispose();
      }
    },
  );

  cdsFeedbackRoute(app, cards);
}

/**
 * The card's SMART link: SMART_LAUNCH_URL, or this request's origin only on a loopback host (a
 * local run). Elsewhere Host is the caller's to choose and, behind a proxy, an internal name: no link.
 */
function launchLink(configured: string | undefined, request: FastifyRequest): { appLaunchUrl?: string } {
  if (configured !== undefined) return { appLaunchUrl: configured };
  const loopback = /^(localhost|127(\.\d{1,3}){3}|\[::1\]|::1)$/i.test(request.hostname);
  return loopback ? { appLaunchUrl: `${request.protocol}://${request.host}${SMART_LAUNCH_PATH}` } : {};
}

/** The hook's answer for the collected resources: the risk card, or no card when the data cannot be scored. */
async function cardsFor(
  app: FastifyInstance,
  request: FastifyRequest,
  collected: Collected,
  context: { config: AppConfig; now: Date; signal: AbortSignal; cards: CardIds; patientId: string },
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
      observe: { to: app.observers, route: 'cds', silent: config.fhir.cdsSilent },
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
  const decision = await app.alerting.decide(context.patientId, result.probability, context.now);
  if (decision.suppressed) {
    request.log.info({ cds: 'suppressed', tier: decision.tier.name }, 'CDS card suppressed by the alert policy');
    return { cards: [] };
  }
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
    policy: app.alerting.policy,
    ...(cardUrl ? { modelCardUrl: cardUrl } : {}),
    ...launchLink(config.fhir.smartApp.launchUrl, request),
    bootstrap: app.models.active?.manifest.bootstrap ?? false,
    warnings: mapped.issues.filter((i) => i.severity === 'warning').map((i) => i.message),
    notes: collected.notes,
  });
  return { cards: [card] };
}
