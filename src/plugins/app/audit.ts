import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';

/**
 * Exactly one audit line per call of a scoring route (scope `predict`, or `config.audit`),
 * aborted and refused calls included: who, which route, how many patients, which model, the
 * outcome. Counts only (`patientCount`: the logger redacts `patients`), never a token.
 */

export interface AuditFacts {
  patients?: number;
  model?: string;
  /** Why a stream ended before its input did (e.g. shutting_down, error_limit). */
  cut?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by scoring handlers: counts and model version only. */
    audit: AuditFacts | null;
    auditWritten: boolean;
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

function outcomeOf(status: number, finished: boolean): string {
  if (!finished) return 'aborted';
  if (status < 400) return 'success';
  if (status === 401 || status === 403) return 'denied';
  return status < 500 ? 'rejected' : 'error';
}

async function auditPlugin(app: FastifyInstance): Promise<void> {
  const log = app.log.child({ audit: true });
  app.decorateRequest('audit', null);
  app.decorateRequest('auditWritten', false);

  const write = (request: FastifyRequest, reply: FastifyReply): void => {
    if (request.auditWritten) return;
    request.auditWritten = true;
    const status = reply.statusCode;
    const facts = request.audit;
    log.info(
      {
        reqId: request.id,
        principal: request.principal?.id ?? null,
        method: request.method,
        route: request.routeOptions.url ?? null,
        // Not 'patients': the logger redacts that key as a guard against patient data.
        patientCount: facts?.patients ?? null,
        model: facts?.model ?? null,
        status: reply.raw.headersSent ? status : null,
        outcome: outcomeOf(status, reply.raw.writableEnded),
        ...(facts?.cut === undefined ? {} : { cut: facts.cut }),
      },
      'scoring call',
    );
  };

  app.addHook('onRequest', async (request, reply) => {
    if (!isAudited(request)) return;
    // 'close' comes after 'finish' on a completed response, and alone when the client went away.
    reply.raw.once('close', () => write(request, reply));
  });
  app.addHook('onResponse', async (request, reply) => {
    if (isAudited(request)) write(request, reply);
  });
}

export const audit = fp(auditPlugin, { name: 'audit', fastify: '5.x', dependencies: ['auth'] });
