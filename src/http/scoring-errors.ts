import { QueueFullError, RequestExceedsQueueError } from '../inference/errors.js';
import type { Metrics } from '../observability/metrics.js';
import { ModelNotFoundError } from '../scoring/repository.js';
import { ApiError } from './errors.js';
import type { RequestSignal } from './request-signal.js';

/** Inference-layer errors -> API errors (one shape, Retry-After on 503). */
export function mapScoringError(error: unknown, signal: RequestSignal | undefined, metrics: Metrics): unknown {
  if (error instanceof ModelNotFoundError) return new ApiError(404, 'model_not_found', error.message);
  if (error instanceof RequestExceedsQueueError) return new ApiError(413, 'request_too_large', error.message);
  if (error instanceof QueueFullError) {
    return new ApiError(
      503,
      error.name === 'BatcherDrainingError' ? 'shutting_down' : 'queue_full',
      error.message,
      [],
      error.retryAfterSeconds,
    );
  }
  if (error instanceof DOMException && error.name === 'AbortError') {
    if (signal?.timedOut()) {
      metrics.rejected.inc({ reason: 'timeout' });
      return new ApiError(
        503,
        'timeout',
        'the prediction did not finish within the request timeout; retry later',
        [],
        1,
      );
    }
    // The client has gone: nothing will read the answer.
    return new ApiError(499, 'client_closed_request', 'the client closed the request');
  }
  return error;
}
