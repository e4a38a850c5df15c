import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';

/**
 * One audit line per scoring call, on a child logger marked `audit: true` so that a log
 * shipper can route audit records apart from application logs. A line says who (principal
 * id: key name or token issuer|subject), which route, how many patients, the model version,
 * the outcome (HTTP status) and the request id. The count is logged as `patientCount`: the
 * logger redacts any `patients` key. Never a token, never patient data: handlers
 * report only counts and the model version through `request.audit`.
 *
 * Scoring routes are those with `config.scope: 'predict'` and those declaring
 * `config.audit: true` (the CDS Hooks service). A call refused by authentication is audited too.
 */

export interface AuditFacts {
  patients?: number;
  model?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by scoring handlers: counts and model version only. */
    audit: AuditFacts | null;
  }
  interface FastifyContextConfig {
    /** Write an audit line for every call of this route (implied by scope 'predict'). */
    audit?: boolean;
  }
}

/** Records what a scoring handler did, for its audit line. */
export function recordAudit(request: FastifyRequest, facts: AuditFacts): void {
  request.audit = { ...(request.audit ?? {}), ...facts };
}

function isAudited(request: FastifyRequest): boolean {
  const config = request.routeOptions.config;
  return config?.audit === true || config?.scope === 'predict';
}

async function auditPlugin(app: FastifyInstance): Promise<void> {
  const log = app.log.child({ audit: true });
  app.decorateRequest('audit', null);
  app.addHook('onResponse', async (request, reply) => {
    if (!isAudited(request)) return;
    const status = reply.statusCode;
    log.info(
      {
        reqId: request.id,
        principal: request.principal?.id ?? null,
        method: request.method,
        route: request.routeOptions.url ?? null,
        // Not 'patients': the logger redacts that key as a guard against patient data.
        patientCount: request.audit?.patients ?? null,
        model: request.audit?.model ?? null,
        status,
        outcome: status < 400 ? 'success' : status === 401 || status === 403 ? 'denied' : status < 500 ? 'rejected' : 'error',
      },
      'scoring call',
    );
  });
}

export const audit = fp(auditPlugin, { name: 'audit', fastify: '5.x', dependencies: ['auth'] });
