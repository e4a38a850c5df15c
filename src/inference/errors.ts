/**
 * Errors of the inference layer. The API maps them to responses: QueueFullError (and its
 * BatcherDrainingError subclass) -> 503 with Retry-After, RequestExceedsQueueError -> 413,
 * EngineRunError -> 500, an AbortError DOMException -> the client has gone, nothing to send.
 */

/** A batch failed in the engine (or while its tensor was built): only that batch's requests get it. */
export class EngineRunError extends Error {
  override readonly name = 'EngineRunError';
}

/** The batcher's bounded queue cannot take the request's stays now. */
export class QueueFullError extends Error {
  override readonly name: string = 'QueueFullError';
  /** A hint for the HTTP Retry-After header: whole seconds, at least 1. */
  readonly retryAfterSeconds: number;

  constructor(message: string, retryAfterSeconds: number) {
    super(message);
    this.retryAfterSeconds = Math.max(1, Math.ceil(retryAfterSeconds));
  }
}

/**
 * The request needs more engine rows than the queue, or one caller's share of it, can ever hold:
 * retrying cannot help, so it is not a QueueFullError (no 503, no Retry-After).
 */
export class RequestExceedsQueueError extends Error {
  override readonly name = 'RequestExceedsQueueError';
}

/**
 * The batcher is draining for shutdown and takes no new work. A QueueFullError subclass so
 * that code mapping overload to 503 + Retry-After handles shutdown the same way (another
 * replica answers the retry).
 */
export class BatcherDrainingError extends QueueFullError {
  override readonly name = 'BatcherDrainingError';

  constructor() {
    super('the service is shutting down and accepts no new predictions', 1);
  }
}

/** The rejection of a submit whose AbortSignal fired: a DOMException named AbortError, as fetch uses. */
export function abortError(): DOMException {
  return new DOMException('the request was aborted before its prediction finished', 'AbortError');
}
