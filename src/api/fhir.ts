import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AppConfig } from '../config.js';
import { assess } from '../fhir/assess.js';
import { capabilityStatement } from '../fhir/capability.js';
import { gatherResources } from '../fhir/gather.js';
import { operationOutcome, type InputIssue, type IssueCode } from '../fhir/outcome.js';
import { recordAudit } from '../plugins/app/audit.js';
import { rateLimitKey } from '../plugins/external/rate-limit.js';
import { allowedMethods } from '../http/errors.js';
import { requestSignal } from '../http/request-signal.js';
import { errorAnswer, mapScoringError } from '../http/error-table.js';
import { fhirBundleExample } from './examples.js';
import { PREDICT_DESCRIPTION } from './fhir-docs.js';
import './scope.js';

/**
 * FHIR R4 entry point: `POST /fhir/RiskAssessment/$predict`, an operation on the
 * RiskAssessment type (FHIR's `$` convention for operations). Speaks FHIR: accepts and answers
 * `application/fhir+json` (plain `application/json` too), errors are OperationOutcome.
 * That includes authentication failures (401/403), refused before the route.
 */

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';

const requestSchema = z
  .looseObject({
    resourceType: z.enum(['Bundle', 'Parameters']),
  })
  .meta({
    description: 'FHIR R4 Bundle or Parameters (see the operation description).',
    examples: [fhirBundleExample],
  });

const riskAssessmentSchema = z
  .looseObject({ resourceType: z.literal('RiskAssessment') })
  .meta({ description: 'FHIR R4 RiskAssessment; input warnings in a contained OperationOutcome.' });

const capabilityStatementSchema = z
  .looseObject({ resourceType: z.literal('CapabilityStatement') })
  .meta({ description: 'FHIR R4 CapabilityStatement' });

const operationOutcomeSchema = z
  .looseObject({ resourceType: z.literal('OperationOutcome') })
  .meta({ description: 'FHIR R4 OperationOutcome' });

/**
 * FHIR IssueType (https://hl7.org/fhir/R4/valueset-issue-type.html) of each status: `transient` is
 * "the system may be able to resubmit the same content once an underlying issue is resolved".
 */
const ISSUE_TYPE_OF_STATUS: Record<number, IssueCode> = {
  // A 400 under /fhir is a body that is not JSON or not a Bundle/Parameters of the expected shape.
  400: 'structure',
  401: 'login',
  403: 'forbidden',
  404: 'not-found',
  405: 'not-supported',
  412: 'incomplete',
  413: 'too-costly',
  415: 'not-supported',
  429: 'throttled',
  500: 'exception',
  503: 'transient',
};

function sendOutcome(reply: FastifyReply, status: number, issues: InputIssue[]): FastifyReply {
  return reply.code(status).type(FHIR_JSON).serializer(JSON.stringify).send(operationOutcome(issues));
}

/** The error table's answer (src/http/error-table.ts) as an OperationOutcome: same status, same log. */
export function fhirErrorHandler(
  this: FastifyInstance,
  err: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  const out = errorAnswer(err, request, reply);
  if (out.retryAfterSeconds !== undefined) reply.header('retry-after', String(out.retryAfterSeconds));
  if (out.issues) return sendOutcome(reply, out.status, out.issues);
  const code = ISSUE_TYPE_OF_STATUS[out.status] ?? (out.status >= 500 ? 'exception' : 'processing');
  const message =
    out.code === 'unsupported_media_type' ? 'send the request body as application/fhir+json' : out.message;
  if (out.details.length === 0) return sendOutcome(reply, out.status, [{ severity: 'error', code, message }]);
  return sendOutcome(
    reply,
    out.status,
    out.details.map((d) => ({
      severity: 'error',
      code,
      message: `${d.path || '/'}: ${d.message}`,
      expression: [d.path || 'resourceType'],
    })),
  );
}

export interface FhirRoutesOptions {
  config: AppConfig;
  /** Wall clock: the prediction time (age, occurrenceDateTime). */
  now?: () => Date;
}

export async function fhirRoutes(app: FastifyInstance, opts: FhirRoutesOptions): Promise<void> {
  const { config } = opts;
  const now = opts.now ?? (() => new Date());
  app.addContentTypeParser(
    'application/fhir+json',
    { parseAs: 'string', bodyLimit: config.fhir.bodyLimitBytes },
    app.getDefaultJsonParser('error', 'error'),
  );
  // FHIR JSON only (and plain JSON): a text body is an unsupported media type, not a malformed resource.
  app.removeContentTypeParser('text/plain');
  // Registered under the /fhir prefix: every answer here, errors and unknown paths included, is FHIR.
  app.setErrorHandler(fhirErrorHandler);
  app.setNotFoundHandler(
    app.hasDecorator('rateLimit') ? { preHandler: app.rateLimit() } : {},
    function fhirNotFound(request, reply) {
      const allowed = allowedMethods(this, request);
      if (allowed.length === 0)
        return sendOutcome(reply, 404, [
          { severity: 'error', code: 'not-found', message: `no FHIR interaction for ${request.method} on this path` },
        ]);
      reply.header('allow', allowed.join(', '));
      return sendOutcome(reply, 405, [
        {
          severity: 'error',
          code: 'not-supported',
          message: `this path answers ${allowed.join(', ')}, not ${request.method}`,
        },
      ]);
    },
  );

  app.get(
    '/metadata',
    {
      config: { scope: 'public' },
      schema: {
        operationId: 'getFhirCapabilityStatement',
        tags: ['fhir'],
        summary: 'FHIR R4 CapabilityStatement: the $predict operation and how to authenticate',
        response: { 200: capabilityStatementSchema },
      },
      serializerCompiler: () => (data) => JSON.stringify(data),
    },
    async (_request, reply) => {
      const model = app.models.active;
      return reply
        .type(FHIR_JSON)
        .send(capabilityStatement(model ? { name: model.name, version: model.version } : undefined, now()));
    },
  );

  app.post(
    '/RiskAssessment/$predict',
    {
      config: { scope: 'predict', smartApp: true, bodyLimitSetting: 'FHIR_BODY_LIMIT_BYTES' },
      bodyLimit: config.fhir.bodyLimitBytes,
      schema: {
        operationId: 'predictRiskAssessment',
        tags: ['fhir'],
        summary: 'FHIR R4: predict in-hospital mortality from a Bundle of Observations; answers a RiskAssessment',
        description: PREDICT_DESCRIPTION,
        body: requestSchema,
        response: {
          200: riskAssessmentSchema,
          400: operationOutcomeSchema,
          401: operationOutcomeSchema,
          403: operationOutcomeSchema,
          404: operationOutcomeSchema,
          413: operationOutcomeSchema,
          422: operationOutcomeSchema,
          503: operationOutcomeSchema,
        },
      },
      serializerCompiler: () => (data) => JSON.stringify(data),
    },
    async (request, reply) => {
      recordAudit(request, { patients: 1 });
      const gathered = gatherResources(request.body);
      const signal = requestSignal(request, reply, config.requestTimeoutMs);
      try {
        const { riskAssessment, result } = await assess(gathered, {
          models: app.models,
          now: now(),
          staleAfterHours: config.fhir.staleAfterHours,
          thresholds: config.fhir.thresholds,
          signal: signal.signal,
          observe: { to: app.observers, route: 'fhir' },
          caller: rateLimitKey(request),
        });
        recordAudit(request, { model: `${result.model.name}@${result.model.version}` });
        return reply.code(200).type(FHIR_JSON).send(riskAssessment);
      } catch (error) {
        throw mapScoringError(error, signal, app.metrics);
      } finally {
        signal.dispose();
      }
    },
  );
}
