/** The store did not answer in time (down, or stalled): a read that needs it answers 503. */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
}

/** Too many computations of the monitoring figures are waiting: GET /v1/monitoring answers 503. */
export class MonitoringBusyError extends Error {
  override readonly name = 'MonitoringBusyError';
}
