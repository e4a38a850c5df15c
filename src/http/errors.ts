import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { errorAnswer, INTERNAL_ERROR, type ErrorAnswer } from './error-table.js';

export { ApiError, issuesToDetails } from './error-table.js';

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

function send(reply: FastifyReply, status: number, body: ErrorBody, retryAfter?: number): FastifyReply {
  if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter));
  // Bypasses response schemas: the error shape is the same on every route.
  return reply.code(status).type('application/json; charset=utf-8').serializer(JSON.stringify).send(body);
}

/** The error table's answer in the service's JSON shape. */
export function sendError(reply: FastifyReply, out: ErrorAnswer): FastifyReply {
  return send(
    reply,
    out.status,
    { error: out.code, message: out.message, details: out.details },
    out.retryAfterSeconds,
  );
}

/** Every thrown value, Error or not, gets the one error shape; a 5xx is logged once, with the request. */
export function errorHandler(
  this: FastifyInstance,
  err: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  try {
    return sendError(reply, errorAnswer(err, request, reply));
  } catch (failure) {
    request.log.error({ err: failure, original: err }, 'the error handler failed');
    return sendError(reply, INTERNAL_ERROR);
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
