import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The service's Prometheus metrics, one registry per app instance (tests build several apps
 * in one process). Labels carry route templates, status codes, model names and versions
 * only: never a raw URL, an id or a measured value.
 */

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
// Batch sizes are whole numbers: bounds half-way between them put each size in a bucket of its
// own up to 2 (histogram_quantile then reads 1 for batches of one, not the 0.5 of a [0, 1] bucket).
const BATCH_SIZE_BUCKETS = [0.5, 1.5, 2.5, 4.5, 8.5, 16.5, 32.5, 64.5, 128.5, 256.5, 512.5, 1024.5, 2048.5, 4096.5];
/** Every reason the service counts, exported at 0 from start-up so that dashboards show a line, not "No data". */
export const REJECTION_REASONS = ['queue_full', 'too_large', 'draining', 'under_pressure', 'timeout'] as const;
const PROBABILITY_BUCKETS = [0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99];

export interface Metrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  batchSize: Histogram<'model' | 'version'>;
  batchDuration: Histogram<'model' | 'version'>;
  batchPadding: Histogram<'model' | 'version'>;
  queueDepth: Gauge<'model' | 'version'>;
  queueWait: Histogram<'model' | 'version'>;
  rejected: Counter<'reason'>;
  probability: Histogram<'model' | 'version'>;
  predictions: Counter<'model' | 'version' | 'outcome'>;
  modelInfo: Gauge<'model' | 'version' | 'provider'>;
  reloads: Counter<'outcome'>;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const rejected = new Counter({
    name: 'rejected_requests_total',
    help: 'Requests refused for load: queue full, under pressure, draining, timeout',
    labelNames: ['reason'],
    registers,
  });
  for (const reason of REJECTION_REASONS) rejected.labels(reason).inc(0);
  return {
    registry,
    httpRequests: new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests by method, route template and status',
      labelNames: ['method', 'route', 'status'],
      registers,
    }),
    httpDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency by method, route template and status',
      labelNames: ['method', 'route', 'status'],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    batchSize: new Histogram({
      name: 'engine_batch_size',
      help: 'Stays per engine run',
      labelNames: ['model', 'version'],
      buckets: BATCH_SIZE_BUCKETS,
      registers,
    }),
    batchDuration: new Histogram({
      name: 'engine_batch_duration_seconds',
      help: 'Engine run latency per batch',
      labelNames: ['model', 'version'],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    batchPadding: new Histogram({
      name: 'engine_batch_padding_fraction',
      help: 'Fraction of each batch tensor that is padding',
      labelNames: ['model', 'version'],
      buckets: [0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1],
      registers,
    }),
    queueDepth: new Gauge({
      name: 'batcher_queue_depth',
      help: 'Stays waiting in the batcher queue',
      labelNames: ['model', 'version'],
      registers,
    }),
    queueWait: new Histogram({
      name: 'batcher_queue_wait_seconds',
      help: 'Time stays wait in the queue before their batch runs',
      labelNames: ['model', 'version'],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    rejected,
    probability: new Histogram({
      name: 'prediction_probability',
      help: 'Predicted probabilities per model version (drift monitoring)',
      labelNames: ['model', 'version'],
      buckets: PROBABILITY_BUCKETS,
      registers,
    }),
    predictions: new Counter({
      name: 'predictions_total',
      help: 'Stays scored or refused per model version',
      labelNames: ['model', 'version', 'outcome'],
      registers,
    }),
    modelInfo: new Gauge({
      name: 'model_info',
      help: 'Loaded model versions (1 = serving) and execution provider',
      labelNames: ['model', 'version', 'provider'],
      registers,
    }),
    reloads: new Counter({
      name: 'model_reloads_total',
      help: 'Model reload attempts by outcome',
      labelNames: ['outcome'],
      registers,
    }),
  };
}
