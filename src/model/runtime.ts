import { buildBatch } from '../clinical/preprocess.js';
import type { ValidPatient } from '../clinical/types.js';
import { Batcher, type BatcherObserver } from '../inference/batcher.js';
import { allocatorOf, createEngine, type ProviderName } from '../inference/engine.js';
import type { LogSink } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { ModelFactories, ModelFiles } from './repository.js';

/**
 * The one wiring of a model runtime: an ONNX engine per model version, a dynamic batcher whose
 * tensors the manifest's preprocessing builds into the engine's own buffers, and, when a
 * registry is given, the batcher's events as Prometheus metrics. The service and the CLI open
 * models through it.
 */

export interface RuntimeOptions {
  providers: ProviderName[];
  intraOpThreads: number;
  workers: number;
  allowSpinning?: boolean;
  maxBatchSize: number;
  maxQueueDelayMs: number;
  maxQueueSize: number;
  /** Share of maxQueueSize one caller may hold (default 1: no limit below the queue's). */
  callerQueueShare?: number;
  logger: LogSink;
  metrics?: Metrics;
}

export function modelFactories(options: RuntimeOptions): ModelFactories {
  return {
    createEngine: (files) =>
      createEngine({
        modelPath: files.modelPath,
        inputNames: files.manifest.onnx.inputs,
        outputName: files.manifest.onnx.output,
        ...(files.manifest.onnx.outputs?.perHour === undefined
          ? {}
          : { perHourOutputName: files.manifest.onnx.outputs.perHour }),
        providers: options.providers,
        intraOpThreads: options.intraOpThreads,
        workers: options.workers,
        allowSpinning: options.allowSpinning ?? false,
        logger: options.logger,
      }),
    createBatcher: (engine, files) => {
      const allocate = allocatorOf(engine);
      return new Batcher({
        engine,
        buildBatch: (patients: ValidPatient[]) => buildBatch(files.manifest, patients, allocate),
        lengthOf: (patient: ValidPatient) => patient.hoursUsed,
        maxBatchSize: options.maxBatchSize,
        maxQueueDelayMs: options.maxQueueDelayMs,
        maxQueueSize: options.maxQueueSize,
        maxQueuePerCaller: Math.max(1, Math.floor(options.maxQueueSize * (options.callerQueueShare ?? 1))),
        ...(options.metrics ? { observer: batcherObserver(options.metrics, files) } : {}),
      });
    },
  };
}

/** Batcher events -> Prometheus, labelled by model version so a reload's two versions stay apart. */
export function batcherObserver(metrics: Metrics, files: ModelFiles): BatcherObserver {
  const labels = { model: files.name, version: files.version };
  return {
    batchRun(size, seconds, paddingFraction) {
      metrics.batchSize.observe(labels, size);
      metrics.batchDuration.observe(labels, seconds);
      metrics.batchPadding.observe(labels, paddingFraction);
    },
    queueWait(seconds) {
      metrics.queueWait.observe(labels, seconds);
    },
    depthChanged(depth) {
      metrics.queueDepth.set(labels, depth);
    },
    rejected(reason) {
      metrics.rejected.inc({ reason });
    },
  };
}
