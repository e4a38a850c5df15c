import type { FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import type { DestinationStream, LoggerOptions } from 'pino';

/**
 * Logger options: structured pino with request ids, and nothing that could carry patient
 * data. Requests are logged by method, route template and request id only (a raw URL can
 * hold a patient id: /fhir/Patient/123, ?patient=...), bodies and headers never, and the
 * redaction list is a second line of defence for anything that attaches them by mistake.
 */

export const REDACT_PATHS = [
  'req.body',
  'req.headers',
  'req.query',
  'req.params',
  'body',
  'patients',
  'patient',
  'hours',
  'id',
  'headers.authorization',
  'authorization',
  'token',
  'access_token',
  'err.input',
  'err.validation',
  'err.details',
];

/** The part of a pino logger the engine, the model repository and the CLI use (a pino Logger satisfies it). */
export interface LogSink {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** The route template of a request: never the raw URL. */
export function routeOf(request: FastifyRequest): string {
  return request.routeOptions?.url ?? 'unmatched';
}

export function loggerOptions(level: LoggerOptions['level']): LoggerOptions {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: {
      req(request: FastifyRequest) {
        return { method: request.method, route: routeOf(request), remoteAddress: request.ip };
      },
      res(reply: FastifyReply) {
        return { statusCode: reply.statusCode };
      },
      err(error: Error & { code?: string; statusCode?: number }) {
        // Messages of client errors are built without values; stacks stay for 5xx diagnosis.
        return {
          type: error.name,
          code: error.code,
          statusCode: error.statusCode,
          message: error.message,
          stack: error.stack,
        };
      },
    },
  };
}

/** Fastify's `logger`/`loggerInstance` option from level and an optional destination (tests capture logs). */
export function fastifyLoggerOption(
  level: LoggerOptions['level'],
  stream?: DestinationStream,
): Pick<FastifyServerOptions, 'logger'> {
  const options = loggerOptions(level);
  return { logger: stream ? { ...options, stream } : options } as Pick<FastifyServerOptions, 'logger'>;
}
