import { stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildBatch } from '../clinical/preprocess.js';
import type { ValidPatient } from '../clinical/types.js';
import { stayLength } from '../clinical/validate.js';
import { Batcher } from '../inference/batcher.js';
import { createEngine, defaultEngineThreads } from '../inference/engine.js';
import { ModelRepository, type RepositoryLogger } from '../model/repository.js';

/**
 * The model for a batch run, loaded through the service's own repository (manifest checks,
 * warm-up), engine and batcher, so a score from the CLI is a score from the service.
 */

/** models/icu-mortality of this package, wherever the command is run from. */
export const DEFAULT_MODEL_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../models/icu-mortality');

export interface CliModelOptions {
  /** A model folder holding <version>/ folders (the highest version is used), or one version's folder. */
  modelDir?: string;
  /** Intra-op threads of each ONNX Runtime session (default: cliEngineThreads()). */
  threads?: number;
  /** Inference worker threads, one session each (default 1). */
  workers?: number;
  /** Stays per engine batch. */
  batchSize: number;
  /** Stays the batcher may hold queued (the pipeline keeps a few batches in flight). */
  queueSize: number;
  logger: RepositoryLogger;
}

/**
 * A batch run keeps one core for reading, parsing and validating and gives the rest to
 * ONNX Runtime: the reader is busy the whole time, and an intra-op pool as wide as the
 * machine fights it for the same cores. Measured on the shared 2-core machine (5,000
 * 48-hour stays, the 8-member ensemble of models/icu-mortality/1.0.0, runs alternated):
 * 1 thread 539 and 389 stays/s, 2 threads 307 and 367, 2 workers x 1 thread 271 and 358
 * (and 482 MiB peak RSS against 355). --threads and --workers override it.
 */
export function cliEngineThreads(cores: number = availableParallelism()): number {
  return Math.max(1, cores - 1);
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
  const workers = opts.workers ?? defaultEngineThreads().workers;
  const repository = new ModelRepository({
    ...where,
    logger: opts.logger,
    createEngine: (files) =>
      createEngine({
        modelPath: files.modelPath,
        inputNames: files.manifest.onnx.inputs,
        outputName: files.manifest.onnx.output,
        providers: ['cpu'],
        workers,
        intraOpThreads: opts.threads ?? cliEngineThreads(),
        logger: opts.logger,
      }),
    createBatcher: (engine, files) =>
      new Batcher({
        engine,
        buildBatch: (patients: ValidPatient[]) => buildBatch(files.manifest, patients),
        lengthOf: stayLength,
        maxBatchSize: opts.batchSize,
        // The pipeline submits whole batches: waiting for more stays would only add idle time.
        maxQueueDelayMs: 0,
        maxQueueSize: opts.queueSize,
      }),
  });
  await repository.start();
  return repository;
}
