import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { ProviderName } from '../../inference/engine.js';
import { ModelRepository, type ModelFactories } from '../../model/repository.js';
import { modelFactories } from '../../model/runtime.js';

declare module 'fastify' {
  interface FastifyInstance {
    models: ModelRepository;
  }
}

/** What it reads from the app's configuration (src/config.ts). */
export interface ModelsConfig {
  modelDir: string;
  modelName: string;
  modelVersion: string;
  modelWatch: boolean;
  providers: ProviderName[];
  intraOpThreads: number;
  engineWorkers: number;
  engineAllowSpinning: boolean;
  maxBatchSize: number;
  maxQueueDelayMs: number;
  maxQueueSize: number;
  callerQueueShare?: number;
}

export interface ModelsPluginOptions {
  config: ModelsConfig;
  /** A repository built by the caller (tests, CLI); otherwise one is built from config. */
  repository?: ModelRepository;
  factories?: Partial<ModelFactories>;
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
        ...modelFactories({
          providers: config.providers,
          intraOpThreads: config.intraOpThreads,
          workers: config.engineWorkers,
          allowSpinning: config.engineAllowSpinning,
          maxBatchSize: config.maxBatchSize,
          maxQueueDelayMs: config.maxQueueDelayMs,
          maxQueueSize: config.maxQueueSize,
          callerQueueShare: config.callerQueueShare,
          logger: app.log,
          metrics: app.metrics,
        }),
        ...opts.factories,
        onServing: (model) =>
          app.metrics.modelInfo.set({ model: model.name, version: model.version, provider: model.provider }, 1),
        onRetired: (model) =>
          app.metrics.modelInfo.remove({ model: model.name, version: model.version, provider: model.provider }),
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
