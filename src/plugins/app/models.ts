import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { buildBatch } from '../../clinical/preprocess.js';
import type { ValidPatient } from '../../clinical/types.js';
import { stayLength } from '../../clinical/validate.js';
import type { AppConfig } from '../../config.js';
import { Batcher, type BatcherObserver } from '../../inference/batcher.js';
import { allocatorOf, createEngine } from '../../inference/engine.js';
import { ModelRepository, type ModelFactories, type ModelFiles } from '../../model/repository.js';
import type { Metrics } from '../../observability/metrics.js';

declare module 'fastify' {
  interface FastifyInstance {
    models: ModelRepository;
  }
}

export interface ModelsPluginOptions {
  config: AppConfig;
  /** A repository built by the caller (tests, CLI); otherwise one is built from config. */
  repository?: ModelRepository;
  factories?: Partial<ModelFactories>;
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

/** The real engine and batcher, configured from the environment. */
export function defaultFactories(config: AppConfig, metrics: Metrics, logger: FastifyInstance['log']): ModelFactories {
  return {
    createEngine: (files) =>
      createEngine({
        modelPath: files.modelPath,
        inputNames: files.manifest.onnx.inputs,
        outputName: files.manifest.onnx.output,
        providers: config.providers,
        intraOpThreads: config.intraOpThreads,
        workers: config.engineWorkers,
        allowSpinning: config.engineAllowSpinning,
        logger,
      }),
    createBatcher: (engine, files) => {
      const allocate = allocatorOf(engine);
      return new Batcher({
        engine,
        // Tensors go into the buffers the engine's workers hand back (src/inference/engine.ts).
        buildBatch: (patients: ValidPatient[]) => buildBatch(files.manifest, patients, allocate),
        lengthOf: stayLength,
        maxBatchSize: config.maxBatchSize,
        maxQueueDelayMs: config.maxQueueDelayMs,
        maxQueueSize: config.maxQueueSize,
        observer: batcherObserver(metrics, files),
      });
    },
  };
}

/**
 * Decorates `app.models`, the model repository, and loads the serving model before the app
 * is ready (no model = the app does not start, with a message naming the folder searched).
 * Closing the app drains the batcher's queue and closes the engine.
 */
export default fp(
  async (app: FastifyInstance, opts: ModelsPluginOptions) => {
    const { config } = opts;
    const repository =
      opts.repository ??
      new ModelRepository({
        root: config.modelDir,
        name: config.modelName,
        versionPolicy: config.modelVersion,
        logger: app.log,
        ...defaultFactories(config, app.metrics, app.log),
        ...opts.factories,
        onServing: (model) => app.metrics.modelInfo.set({ model: model.name, version: model.version, provider: model.provider }, 1),
        onRetired: (model) => app.metrics.modelInfo.remove({ model: model.name, version: model.version, provider: model.provider }),
      });
    app.decorate('models', repository);
    if (!repository.active) await repository.start();
    if (config.modelWatch) repository.watch();
    app.addHook('onClose', async () => {
      await repository.close();
    });
  },
  { name: 'models', dependencies: ['metrics'] },
);
