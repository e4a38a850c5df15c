import { stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultEngineThreads } from '../inference/engine.js';
import type { LogSink } from '../observability/logger.js';
import { ModelRepository, type ModelFactories } from '../model/repository.js';
import { modelFactories } from '../model/runtime.js';

/**
 * The model for a batch run, loaded through the service's own repository (manifest checks,
 * warm-up), engine and batcher, so a score from the CLI is a score from the service.
 */

/** models/icu-mortality of this package, wherever the command is run from. */
export const DEFAULT_MODEL_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../models/icu-mortality');

export interface CliModelOptions {
  /** A model folder holding <version>/ folders (the highest version is used), or one version's folder. */
  modelDir?: string;
  /** Intra-op threads of each ONNX Runtime session (default: defaultEngineThreads()). */
  threads?: number;
  /** Inference worker threads, one session each (default 1). */
  workers?: number;
  /** Stays per engine batch. */
  batchSize: number;
  /** Stays the batcher may hold queued (the pipeline keeps a few batches in flight). */
  queueSize: number;
  logger: LogSink;
  /** Replace the engine or batcher factory (tests: an engine that misbehaves on cue), as buildApp's deps do. */
  factories?: Partial<ModelFactories>;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** Where the repository should look: root, model name, and `latest` or the version folder given. */
export async function locateModel(modelDir: string): Promise<{ root: string; name: string; versionPolicy: string }> {
  const dir = resolve(modelDir);
  if (await isFile(resolve(dir, 'manifest.json'))) {
    const nameDir = dirname(dir);
    return { root: dirname(nameDir), name: basename(nameDir), versionPolicy: basename(dir) };
  }
  return { root: dirname(dir), name: basename(dir), versionPolicy: 'latest' };
}

export async function openModelRepository(opts: CliModelOptions): Promise<ModelRepository> {
  const where = await locateModel(opts.modelDir ?? DEFAULT_MODEL_DIR);
  const defaults = defaultEngineThreads();
  const workers = opts.workers ?? defaults.workers;
  const repository = new ModelRepository({
    ...where,
    logger: opts.logger,
    ...modelFactories({
      providers: ['cpu'],
      workers,
      intraOpThreads: opts.threads ?? defaults.intraOpThreads,
      maxBatchSize: opts.batchSize,
      // The pipeline submits whole batches: waiting for more stays would only add idle time.
      maxQueueDelayMs: 0,
      maxQueueSize: opts.queueSize,
      logger: opts.logger,
    }),
    ...opts.factories,
  });
  await repository.start();
  return repository;
}
