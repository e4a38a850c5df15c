/** The store did not answer in time (down, or stalled): a read that needs it answers 503. */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
}

/** Too many computations of the monitoring figures are waiting: GET /v1/monitoring answers 503. */
export class MonitoringBusyError extends Error {
  override readonly name = 'MonitoringBusyError';
}

/** `promise`, or a StoreUnavailableError once `ms` have passed without its answer. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreUnavailableError(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
