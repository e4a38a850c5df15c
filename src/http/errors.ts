import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { FieldIssue } from '../clinical/types.js';
import { EngineRunError, QueueFullError } from '../inference/errors.js';

/**
 * One error shape for every route: `{ error, message, details[] }`, where `error` is a stable
 * machine-readable code and each detail names the JSON path (dot-joined) of an offending
 * field. 5xx messages are replaced for clients and logged with the request id.
 */

export const errorDetailSchema = z.object({
  path: z.string().meta({ description: 'JSON path of the offending field, dot-joined, e.g. patients.3.hours.2.HR' }),
  message: z.string(),
});

export const errorSchema = z
  .object({
    error: z.string().meta({ description: 'Stable error code, e.g. validation_failed, queue_full' }),
    message: z.string(),
    details: z.array(errorDetailSchema),
  })
  .meta({
    id: 'Error',
    description: 'The error shape of every endpoint.',
    examples: [
      {
        error: 'validation_failed',
        message: 'none of the 1 patients is valid',
        details: [{ path: 'patients.0.hours.2.HR', message: 'Heart rate outside the plausible range 0 to 300 /min' }],
      },
    ],
  });

export type ErrorBody = z.infer<typeof errorSchema>;

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details: ErrorBody['details'] = [],
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
): ErrorBody['details'] {
  return issues.map((i) => ({ path: pathString([...prefix, ...i.path]), message: i.message }));
}

function send(reply: FastifyReply, status: number, body: ErrorBody, retryAfter?: number): FastifyReply {
  if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter));
  // Bypasses response schemas: the error shape is the same on every route.
  return reply.code(status).type('application/json; charset=utf-8').serializer(JSON.stringify).send(body);
}

export function sendApiError(reply: FastifyReply, err: ApiError): FastifyReply {
  return send(
    reply,
    err.statusCode,
    { error: err.code, message: err.message, details: err.details },
    err.retryAfterSeconds,
  );
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

const INTERNAL: ErrorBody = { error: 'internal_error', message: 'internal server error', details: [] };

function handleError(thrown: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (thrown instanceof ApiError) return sendApiError(reply, thrown);
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
    return send(reply, 400, {
      error: 'validation_failed',
      message: only ? `${what}: ${only.path ? `${only.path}: ` : ''}${only.message}` : what,
      details,
    });
  }
  if (thrown instanceof EngineRunError) {
    // Only the requests of the failed batch get this; the engine's own message stays in the log.
    request.log.error({ err: thrown }, 'inference batch failed');
    return send(reply, 500, {
      error: 'inference_failed',
      message: 'the inference batch holding this request failed; other requests are unaffected, retry',
      details: [],
    });
  }
  if (thrown instanceof QueueFullError) {
    return send(reply, 503, { error: 'queue_full', message: thrown.message, details: [] }, thrown.retryAfterSeconds);
  }
  const code = codeOf(thrown);
  if (thrown instanceof SyntaxError || code?.startsWith('FST_ERR_CTP_INVALID_JSON')) {
    return send(reply, 400, { error: 'invalid_json', message: 'request body is not valid JSON', details: [] });
  }
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return send(reply, 413, { error: 'body_too_large', message: bodyTooLargeMessage(request), details: [] });
  const known = code === undefined ? undefined : CLIENT_CODES[code];
  if (known) return send(reply, known.status, { error: known.code, message: known.message, details: [] });
  const status = statusOf(thrown);
  if (status >= 500) {
    request.log.error({ err: thrown }, 'request failed');
    if (status === 503) {
      // @fastify/under-pressure and others: keep their Retry-After header.
      const retry = Number(reply.getHeader('retry-after'));
      return send(
        reply,
        503,
        { error: 'service_unavailable', message: 'the service is overloaded; retry later', details: [] },
        Number.isFinite(retry) && retry > 0 ? retry : 1,
      );
    }
    return send(reply, status, INTERNAL);
  }
  // Other 4xx from plugins (rate limit, auth, etc.): their messages are written without patient data.
  const message = thrown instanceof Error ? thrown.message : 'bad request';
  return send(reply, status, { error: code ? code.toLowerCase() : 'bad_request', message, details: [] });
}

/** Every thrown value, Error or not, gets the one error shape; a 5xx is logged once, with the request. */
export function errorHandler(
  this: FastifyInstance,
  err: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  try {
    return handleError(err, request, reply);
  } catch (failure) {
    request.log.error({ err: failure, original: err }, 'the error handler failed');
    return send(reply, 500, INTERNAL);
  }
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/**
 * The methods routed at the request's path, for an Allow header; none when nothing is, or only a
 * catch-all OPTIONS (the CORS preflight). findRoute matches a concrete path, parameters included.
 */
export function allowedMethods(app: FastifyInstance, request: FastifyRequest): string[] {
  const url = request.url.split('?')[0] ?? '';
  const allowed = METHODS.filter((method) => app.findRoute({ method, url }) !== null);
  return allowed.some((m) => m !== 'OPTIONS') && !(allowed as readonly string[]).includes(request.method)
    ? allowed
    : [];
}

/** 404, or 405 with Allow when the path has routes for other methods (RFC 9110 §15.5.6). */
export function notFoundHandler(this: FastifyInstance, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const allowed = allowedMethods(this, request);
  if (allowed.length === 0)
    return send(reply, 404, {
      error: 'not_found',
      message: `no route for ${request.method} on this path`,
      details: [],
    });
  reply.header('allow', allowed.join(', '));
  return send(reply, 405, {
    error: 'method_not_allowed',
    message: `this path answers ${allowed.join(', ')}, not ${request.method}`,
    details: [],
  });
}
