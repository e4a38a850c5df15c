import type { FastifyReply, FastifyRequest } from 'fastify';

export interface RequestSignal {
  signal: AbortSignal;
  timedOut(): boolean;
  dispose(): void;
}

/**
 * Fires when the client goes away before the answer is sent, or when the request runs past
 * its timeout: the batcher then drops the request's queued stays, so no work is left behind.
 */
export function requestSignal(_request: FastifyRequest, reply: FastifyReply, timeoutMs: number): RequestSignal {
  const controller = new AbortController();
  let timedOut = false;
  const onClose = (): void => {
    if (!reply.raw.writableFinished) controller.abort(new Error('client disconnected'));
  };
  // Only the response's 'close' means the client went away: since Node 16 the request's own
  // 'close' fires as soon as its body has been read, which would abort every real request.
  reply.raw.on('close', onClose);
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new Error('request timed out'));
  }, timeoutMs);
  timer.unref();
  return {
    signal: controller.signal,
    timedOut: () => timedOut,
    dispose: () => {
      clearTimeout(timer);
      reply.raw.off('close', onClose);
    },
  };
}
