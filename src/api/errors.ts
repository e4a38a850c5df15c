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
    examples: [{ error: 'validation_failed', message: 'none of the 1 patients is valid', details: [{ path: 'patients.0.hours.2.HR', message: 'Heart rate outside the plausible range 0 to 300 /min' }] }],
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

export function issuesToDetails(issues: readonly FieldIssue[], prefix: ReadonlyArray<string | number> = []): ErrorBody['details'] {
  return issues.map((i) => ({ path: pathString([...prefix, ...i.path]), message: i.message }));
}

function send(reply: FastifyReply, status: number, body: ErrorBody, retryAfter?: number): FastifyReply {
  if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter));
  // Bypasses response schemas: the error shape is the same on every route.
  return reply.code(status).type('application/json; charset=utf-8').serializer(JSON.stringify).send(body);
}

export function sendApiError(reply: FastifyReply, err: ApiError): FastifyReply {
  return send(reply, err.statusCode, { error: err.code, message: err.message, details: err.details }, err.retryAfterSeconds);
}

const CLIENT_CODES: Record<string, { status: number; code: string; message: string }> = {
  // Node's JSON.parse messages quote the body around the error: never echo them.
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'invalid_json', message: 'request body is not valid JSON' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'invalid_json', message: 'request body is empty' },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'body_too_large', message: 'request body is larger than the configured limit' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'unsupported_media_type', message: 'send the request body as application/json' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'invalid_content_length', message: 'content-length does not match the body' },
};

export function errorHandler(this: FastifyInstance, err: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err instanceof ApiError) return sendApiError(reply, err);
  if (hasZodFastifySchemaValidationErrors(err)) {
    const details = err.validation.map((v) => ({
      path: [err.validationContext === 'body' ? '' : err.validationContext, ...v.instancePath.split('/').filter(Boolean)].filter(Boolean).join('.'),
      message: v.message ?? 'invalid value',
    }));
    return send(reply, 400, { error: 'validation_failed', message: `invalid ${err.validationContext ?? 'request'}`, details });
  }
  if (err instanceof EngineRunError) {
    // Only the requests of the failed batch get this; the engine's own message stays in the log.
    request.log.error({ err }, 'inference batch failed');
    return send(reply, 500, { error: 'inference_failed', message: 'the inference batch holding this request failed; other requests are unaffected, retry', details: [] });
  }
  if (err instanceof QueueFullError) {
    return send(reply, 503, { error: 'queue_full', message: err.message, details: [] }, err.retryAfterSeconds);
  }
  if (err instanceof SyntaxError || (err.code && err.code.startsWith('FST_ERR_CTP_INVALID_JSON'))) {
    return send(reply, 400, { error: 'invalid_json', message: 'request body is not valid JSON', details: [] });
  }
  const known = err.code ? CLIENT_CODES[err.code] : undefined;
  if (known) return send(reply, known.status, { error: known.code, message: known.message, details: [] });
  const status = typeof err.statusCode === 'number' && err.statusCode >= 400 ? err.statusCode : 500;
  if (status >= 500) {
    request.log.error({ err }, 'request failed');
    if (status === 503) {
      // @fastify/under-pressure and others: keep their Retry-After header.
      const retry = reply.getHeader('retry-after');
      return send(reply, 503, { error: 'service_unavailable', message: 'the service is overloaded; retry later', details: [] }, retry === undefined ? 1 : Number(retry));
    }
    return send(reply, status, { error: 'internal_error', message: 'internal server error', details: [] });
  }
  // Other 4xx from plugins (rate limit, auth, etc.): their messages are written without patient data.
  return send(reply, status, { error: err.code ? err.code.toLowerCase() : 'bad_request', message: err.message, details: [] });
}

export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return send(reply, 404, { error: 'not_found', message: `no route for ${request.method} on this path`, details: [] });
}
