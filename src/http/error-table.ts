import type { FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import type { FieldIssue } from '../clinical/types.js';
import { CdsPrefetchError } from '../fhir/cds-prefetch.js';
import { FhirInputError, type InputIssue } from '../fhir/outcome.js';
import { EngineRunError, QueueFullError, RequestExceedsQueueError } from '../inference/errors.js';
import type { Metrics } from '../observability/metrics.js';
import { ModelLoadError, ModelNotFoundError } from '../model/repository.js';
import { EncounterInputError } from '../scoring/encounters.js';
import { MonitoringBusyError, StoreUnavailableError } from '../store/errors.js';
import type { RequestSignal } from './request-signal.js';

/**
 * The one error table: every thrown value -> status, stable code, message, details. The JSON
 * error handler sends it as `{ error, message, details }`; the FHIR handler as an
 * OperationOutcome. No route maps a domain error itself, so one error gets one status everywhere.
 */

export interface ErrorDetail {
  path: string;
  message: string;
}

export interface ErrorAnswer {
  status: number;
  code: string;
  /** Safe to send: a 5xx's own message is replaced (and logged by errorAnswer). */
  message: string;
  details: ErrorDetail[];
  retryAfterSeconds?: number;
  /** A refusal for load (a full queue, a limit reached): counted by its caller, not logged as a fault. */
  refusal?: true;
  /** The FHIR issues an error carries itself (FhirInputError); an OperationOutcome lists them as they are. */
  issues?: InputIssue[];
}

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details: ErrorDetail[] = [],
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

export function pathString(path: ReadonlyArray<string | number>): string {
  return path.map(String).join('.');
}

export function issuesToDetails(
  issues: readonly FieldIssue[],
  prefix: ReadonlyArray<string | number> = [],
): ErrorDetail[] {
  return issues.map((i) => ({ path: pathString([...prefix, ...i.path]), message: i.message }));
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The setting behind this route's own bodyLimit, named in its 413 (the server's is BODY_LIMIT_BYTES). */
    bodyLimitSetting?: string;
  }
}

function byteSize(bytes: number): string {
  const [unit, size] = bytes >= 2 ** 20 ? ['MiB', bytes / 2 ** 20] : ['KiB', bytes / 2 ** 10];
  return `${bytes} bytes (${Number(size.toFixed(2))} ${unit})`;
}

/** What a 413 says: the route's limit and the setting that raises it (none for a route's fixed limit). */
export function bodyTooLargeMessage(request: FastifyRequest): string {
  const limit = request.routeOptions.bodyLimit;
  const setting =
    request.routeOptions.config?.bodyLimitSetting ??
    (limit === request.server.initialConfig.bodyLimit ? 'BODY_LIMIT_BYTES' : undefined);
  return `request body is larger than the limit of ${byteSize(limit)}${setting ? `, set by ${setting}` : ' of this route'}`;
}

/**
 * An aborted prediction, told apart by the request's own signal: past the request timeout it is
 * a 503 to retry; otherwise the client has gone (499, nothing reads it). Other errors pass through.
 */
export function mapScoringError(error: unknown, signal: RequestSignal | undefined, metrics: Metrics): unknown {
  if (!(error instanceof DOMException && error.name === 'AbortError')) return error;
  if (signal?.timedOut()) {
    metrics.rejected.inc({ reason: 'timeout' });
    return new ApiError(503, 'timeout', 'the prediction did not finish within the request timeout; retry later', [], 1);
  }
  return new ApiError(499, 'client_closed_request', 'the client closed the request');
}

const CLIENT_CODES: Record<string, { status: number; code: string; message: string }> = {
  // Node's JSON.parse messages quote the body around the error: never echo them.
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'invalid_json', message: 'request body is not valid JSON' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'invalid_json', message: 'request body is empty' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    status: 415,
    code: 'unsupported_media_type',
    message: 'send the request body as application/json',
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    status: 400,
    code: 'invalid_content_length',
    message: 'content-length does not match the body',
  },
};

/** A thrown value's string `code`, if it has one (a DOMException's is a number). */
function codeOf(thrown: unknown): string | undefined {
  const code = typeof thrown === 'object' && thrown !== null ? (thrown as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

function statusOf(thrown: unknown): number {
  const status =
    typeof thrown === 'object' && thrown !== null ? (thrown as { statusCode?: unknown }).statusCode : undefined;
  return typeof status === 'number' && Number.isInteger(status) && status >= 400 && status <= 599 ? status : 500;
}

function answer(status: number, code: string, message: string, details: ErrorDetail[] = []): ErrorAnswer {
  return { status, code, message, details };
}

export const INTERNAL_ERROR = answer(500, 'internal_error', 'internal server error');

/**
 * The table itself, without side effects: what `thrown` answers on every route. Without the
 * request (an NDJSON line's own failure) only the parser's 413 and a plugin's Retry-After are generic.
 */
export function describeError(thrown: unknown, request?: FastifyRequest, reply?: FastifyReply): ErrorAnswer {
  if (thrown instanceof ApiError) {
    const out = answer(thrown.statusCode, thrown.code, thrown.message, thrown.details);
    return thrown.retryAfterSeconds === undefined ? out : { ...out, retryAfterSeconds: thrown.retryAfterSeconds };
  }
  if (hasZodFastifySchemaValidationErrors(thrown)) {
    const details = thrown.validation.map((v) => ({
      path: [
        thrown.validationContext === 'body' ? '' : thrown.validationContext,
        ...v.instancePath.split('/').filter(Boolean),
      ]
        .filter(Boolean)
        .join('.'),
      message: v.message ?? 'invalid value',
    }));
    // One problem is said in the message itself: a client that shows only `message` still tells the user what to fix.
    const only = details.length === 1 ? details[0] : undefined;
    const what = `invalid ${thrown.validationContext ?? 'request'}`;
    return answer(
      400,
      'validation_failed',
      only ? `${what}: ${only.path ? `${only.path}: ` : ''}${only.message}` : what,
      details,
    );
  }
  if (thrown instanceof FhirInputError) {
    const details = thrown.issues
      .filter((i) => i.severity === 'error' || i.severity === 'fatal')
      .map((i) => ({ path: i.expression?.join(', ') ?? '', message: i.message }));
    const code = thrown.statusCode === 400 ? 'invalid_fhir' : 'unprocessable_input';
    return { ...answer(thrown.statusCode, code, thrown.message, details), issues: thrown.issues };
  }
  if (thrown instanceof CdsPrefetchError) return answer(thrown.statusCode, thrown.code, thrown.message, thrown.details);
  if (thrown instanceof EncounterInputError) {
    const out = answer(thrown.status, thrown.code, thrown.message, issuesToDetails(thrown.issues));
    // Its 503 is ENCOUNTER_MAX_HELD reached.
    return thrown.status === 503 ? { ...out, refusal: true } : out;
  }
  if (thrown instanceof ModelNotFoundError) return answer(404, 'model_not_found', thrown.message);
  if (thrown instanceof MonitoringBusyError) {
    const out = answer(503, 'monitoring_busy', 'the figures are being computed for other callers; retry later');
    return { ...out, retryAfterSeconds: 5, refusal: true };
  }
  if (thrown instanceof StoreUnavailableError)
    return { ...answer(503, 'store_unavailable', 'the store is unavailable; retry later'), retryAfterSeconds: 5 };
  if (thrown instanceof ModelLoadError) return answer(422, 'model_load_failed', thrown.message);
  if (thrown instanceof RequestExceedsQueueError) return answer(413, 'request_too_large', thrown.message);
  if (thrown instanceof QueueFullError) {
    const code = thrown.name === 'BatcherDrainingError' ? 'shutting_down' : 'queue_full';
    return { ...answer(503, code, thrown.message), retryAfterSeconds: thrown.retryAfterSeconds, refusal: true };
  }
  if (thrown instanceof EngineRunError) {
    // Only the requests of the failed batch get this; the engine's own message stays in the log.
    return answer(
      500,
      'inference_failed',
      'the inference batch holding this request failed; other requests are unaffected, retry',
    );
  }
  const code = codeOf(thrown);
  if (thrown instanceof SyntaxError || code?.startsWith('FST_ERR_CTP_INVALID_JSON'))
    return answer(400, 'invalid_json', 'request body is not valid JSON');
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return answer(413, 'body_too_large', request ? bodyTooLargeMessage(request) : 'request body is too large');
  const known = code === undefined ? undefined : CLIENT_CODES[code];
  if (known) return answer(known.status, known.code, known.message);
  const status = statusOf(thrown);
  if (status === 503) {
    // @fastify/under-pressure and others: keep their Retry-After header.
    const retry = Number(reply?.getHeader('retry-after'));
    return {
      ...answer(503, 'service_unavailable', 'the service is overloaded; retry later'),
      retryAfterSeconds: Number.isFinite(retry) && retry > 0 ? retry : 1,
    };
  }
  if (status >= 500) return { ...INTERNAL_ERROR, status };
  // Other 4xx from plugins (rate limit, auth, etc.): their messages are written without patient data.
  return answer(
    status,
    code ? code.toLowerCase() : 'bad_request',
    thrown instanceof Error ? thrown.message : 'bad request',
  );
}

/** describeError, and a 5xx logged once with the request (its own message is only in the log). */
export function errorAnswer(thrown: unknown, request: FastifyRequest, reply: FastifyReply): ErrorAnswer {
  const out = describeError(thrown, request, reply);
  if (out.status >= 500 && !(thrown instanceof ApiError) && out.refusal !== true) {
    request.log.error({ err: thrown }, thrown instanceof EngineRunError ? 'inference batch failed' : 'request failed');
  }
  return out;
}
