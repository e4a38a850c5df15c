import { EventEmitter } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ValidPatient } from '../clinical/types.js';
import { createPatientValidator, type PatientValidator } from '../clinical/validate.js';
import type { Batcher } from '../inference/batcher.js';
import type { Engine } from '../inference/engine.js';
import type { LogSink } from '../observability/logger.js';
import { compareSemver, isSemver, isVersionName } from './semver.js';
import { inputWidth, manifestSchema, takesInputTensor, type Manifest } from './manifest.js';

/**
 * Finds versions under <root>/<name>/<version>/, loads and warms up the one the policy picks and
 * swaps it in atomically. A request leases one model for its whole life; a model that fails to
 * load is refused and the current one keeps serving.
 */

/** What the repository needs of an engine and of a batcher: test doubles implement only this. */
export type ModelEngine = Pick<Engine, 'run' | 'provider' | 'close'>;
export type ModelBatcher = Pick<Batcher<ValidPatient>, 'submit' | 'admit' | 'depth' | 'drain'>;

export interface ModelFiles {
  name: string;
  version: string;
  dir: string;
  modelPath: string;
  manifest: Manifest;
}

export interface ModelFactories {
  createEngine(files: ModelFiles): Promise<ModelEngine>;
  createBatcher(engine: ModelEngine, files: ModelFiles): ModelBatcher;
}

export interface ModelRepositoryOptions extends ModelFactories {
  /** Folder holding <name>/<version>/ (the project's models/). */
  root: string;
  name: string;
  /** `latest` or an exact version. */
  versionPolicy: string;
  logger: LogSink;
  /** Called when a model starts serving and when it is retired (metrics). */
  onServing?(model: LoadedModel): void;
  onRetired?(model: LoadedModel): void;
}

export class ModelLoadError extends Error {
  override name = 'ModelLoadError';
}

export class ModelNotFoundError extends Error {
  override name = 'ModelNotFoundError';
}

/** One loaded, warmed-up model version and its batcher. */
export class LoadedModel {
  readonly loadedAt = new Date();
  #leases = 0;
  #retired = false;
  #closed: Promise<void> | undefined;
  #markDone!: () => void;
  readonly #done = new Promise<void>((resolveDone) => {
    this.#markDone = resolveDone;
  });

  constructor(
    readonly files: ModelFiles,
    readonly engine: ModelEngine,
    readonly batcher: ModelBatcher,
    readonly validator: PatientValidator,
  ) {}

  get manifest(): Manifest {
    return this.files.manifest;
  }
  get name(): string {
    return this.files.name;
  }
  get version(): string {
    return this.files.version;
  }
  get provider(): string {
    return this.engine.provider;
  }
  get leases(): number {
    return this.#leases;
  }

  /** Hold the model for one request; release() exactly once when the request is done. */
  lease(): ModelLease {
    this.#leases++;
    let released = false;
    return {
      model: this,
      release: () => {
        if (released) return;
        released = true;
        this.#leases--;
        if (this.#retired && this.#leases === 0) void this.close();
      },
    };
  }

  /** Mark replaced; resolves once the last in-flight request has finished and the engine is closed. */
  retire(): Promise<void> {
    this.#retired = true;
    if (this.#leases === 0) void this.close();
    return this.#done;
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      try {
        await this.batcher.drain();
        await this.engine.close();
      } finally {
        this.#markDone();
      }
    })();
    return this.#closed;
  }
}

export interface ModelLease {
  model: LoadedModel;
  release(): void;
}

export interface ReloadOutcome {
  changed: boolean;
  previous: string | undefined;
  current: string;
}

/** Emits 'serving' (LoadedModel) after each switch and 'rejected' (ModelLoadError) when a load fails. */
export class ModelRepository extends EventEmitter {
  readonly #opts: ModelRepositoryOptions;
  #active: LoadedModel | undefined;
  #reloading: Promise<unknown> = Promise.resolve();
  #watcher: FSWatcher | undefined;
  #watchTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(opts: ModelRepositoryOptions) {
    super();
    this.#opts = opts;
  }

  get name(): string {
    return this.#opts.name;
  }

  /** The serving model, if one is loaded. */
  get active(): LoadedModel | undefined {
    return this.#active;
  }

  /** Ready: a model is loaded and its warm-up inference succeeded. */
  get ready(): boolean {
    return this.#active !== undefined && !this.#closed;
  }

  /**
   * Loads the policy's version; throws ModelLoadError/ModelNotFoundError with a clear message if none can be served.
   */
  async start(): Promise<LoadedModel> {
    await this.reload({ force: true });
    return this.#active as LoadedModel;
  }

  /** Versions on disk, lowest first. */
  async versions(): Promise<string[]> {
    const dir = resolve(this.#opts.root, this.#opts.name);
    let entries: string[];
    try {
      entries = await readdir(dir);
    } catch {
      return [];
    }
    const found: string[] = [];
    for (const entry of entries) {
      try {
        if (isVersionName(entry) && (await stat(join(dir, entry, 'manifest.json'))).isFile()) found.push(entry);
      } catch {
        // not a model version folder
      }
    }
    return found.sort(compareSemver);
  }

  /** A lease on the serving model matching the request's optional name/version. */
  acquire(name?: string, version?: string): ModelLease {
    const model = this.#active;
    if (!model) throw new ModelNotFoundError('no model is loaded');
    if (name !== undefined && name !== model.name) {
      throw new ModelNotFoundError(`model "${name}" is not served here; this service serves "${model.name}"`);
    }
    if (version !== undefined && version !== model.version) {
      throw new ModelNotFoundError(
        `version "${version}" of ${model.name} is not loaded; the serving version is ${model.version}`,
      );
    }
    return model.lease();
  }

  /**
   * Loads the version the policy picks (or `version` when given) and, once it is warm,
   * swaps it in. Reloads run one at a time. Without `force`, reloading the serving version
   * is a no-op.
   */
  reload(options: { force?: boolean; version?: string } = {}): Promise<ReloadOutcome> {
    const run = this.#reloading.then(() => this.#reload(options));
    this.#reloading = run.catch(() => undefined);
    return run;
  }

  async #reload(options: { force?: boolean; version?: string }): Promise<ReloadOutcome> {
    if (this.#closed) throw new ModelLoadError('the model repository is closed');
    const version =
      options.version === undefined ? await this.#pickVersion() : await this.#existingVersion(options.version);
    const previous = this.#active;
    if (!options.force && previous && previous.version === version) {
      return { changed: false, previous: previous.version, current: version };
    }
    const loaded = await this.#load(version);
    this.#active = loaded;
    this.#opts.onServing?.(loaded);
    this.emit('serving', loaded);
    this.#opts.logger.info(
      { model: loaded.name, version: loaded.version, provider: loaded.provider, previous: previous?.version },
      'model serving',
    );
    if (previous) {
      void previous.retire().then(() => {
        this.#opts.onRetired?.(previous);
        this.#opts.logger.info({ model: previous.name, version: previous.version }, 'previous model version closed');
      });
    }
    return { changed: true, previous: previous?.version, current: loaded.version };
  }

  /** Only a version folder that exists under <root>/<name>/ (never a path given by a caller). */
  async #existingVersion(version: string): Promise<string> {
    const available = await this.versions();
    if (!isVersionName(version) || !available.includes(version)) {
      throw new ModelNotFoundError(
        `version "${isVersionName(version) ? version : '(invalid name)'}" is not in the model folder (available: ${available.join(', ') || 'none'})`,
      );
    }
    return version;
  }

  async #pickVersion(): Promise<string> {
    const policy = this.#opts.versionPolicy;
    const available = await this.versions();
    const where = resolve(this.#opts.root, this.#opts.name);
    if (policy !== 'latest') {
      if (!available.includes(policy)) {
        throw new ModelNotFoundError(
          `pinned model version ${policy} not found under ${where} (found: ${available.join(', ') || 'none'})`,
        );
      }
      return policy;
    }
    const semvers = available.filter(isSemver);
    const latest = semvers.at(-1) ?? available.at(-1);
    if (latest === undefined)
      throw new ModelNotFoundError(`no model found: expected ${where}/<version>/manifest.json and model.onnx`);
    return latest;
  }

  async #load(version: string): Promise<LoadedModel> {
    const dir = resolve(this.#opts.root, this.#opts.name, version);
    const files = await readModelFiles(dir, this.#opts.name, version);
    let engine: ModelEngine | undefined;
    try {
      engine = await this.#opts.createEngine(files);
      await warmUp(engine, files.manifest);
      const batcher = this.#opts.createBatcher(engine, files);
      return new LoadedModel(files, engine, batcher, createPatientValidator(files.manifest));
    } catch (error) {
      await engine?.close().catch(() => undefined);
      const reason = error instanceof Error ? error.message : String(error);
      this.#opts.logger.error(
        { model: this.#opts.name, version, dir, reason },
        'model rejected: it failed to load or warm up; the current model keeps serving',
      );
      const failure = new ModelLoadError(
        `model ${this.#opts.name} ${version} could not be loaded: ${withoutPaths(reason, dir, `${this.#opts.name}/${version}`)}`,
      );
      if (this.listenerCount('rejected') > 0) this.emit('rejected', failure);
      throw failure;
    }
  }

  /** Reload when the model folder changes (a new version copied in). Debounced; failures are logged, never thrown. */
  watch(debounceMs = 1000): void {
    if (this.#watcher) return;
    const dir = resolve(this.#opts.root, this.#opts.name);
    this.#watcher = watch(dir, { recursive: true }, () => {
      clearTimeout(this.#watchTimer);
      this.#watchTimer = setTimeout(() => {
        this.reload().catch(() => {
          // already logged by #load
        });
      }, debounceMs);
      this.#watchTimer.unref();
    });
    this.#watcher.unref();
  }

  /** Stop watching, then drain the serving model's queue and close its engine. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher?.close();
    clearTimeout(this.#watchTimer);
    await this.#reloading;
    const active = this.#active;
    if (active) await active.retire();
  }
}

async function readModelFiles(dir: string, name: string, version: string): Promise<ModelFiles> {
  // Messages name files relative to the version folder: they reach API clients (reload's 422).
  const where = `${name}/${version}`;
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
  } catch (error) {
    const why =
      error instanceof SyntaxError ? 'not valid JSON' : ((error as NodeJS.ErrnoException).code ?? 'unreadable');
    throw new ModelLoadError(`cannot read ${where}/manifest.json (${why})`);
  }
  if (takesInputTensor(raw)) {
    throw new ModelLoadError(
      `${where} takes the input tensor x, not values and statics: python3 -m training.repackage <its folder> converts it`,
    );
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ModelLoadError(`invalid manifest ${where}/manifest.json: ${issues.join('; ')}`);
  }
  const manifest = parsed.data;
  if (manifest.name !== name)
    throw new ModelLoadError(`manifest in ${where} names model "${manifest.name}", expected "${name}"`);
  const width = inputWidth(manifest);
  if (manifest.architecture.nInputs !== width) {
    throw new ModelLoadError(
      `manifest in ${where} declares nInputs ${manifest.architecture.nInputs} but its variables and statics define ${width}`,
    );
  }
  const modelPath = join(dir, manifest.onnx.file);
  try {
    await stat(modelPath);
  } catch {
    throw new ModelLoadError(`model file ${where}/${manifest.onnx.file} not found`);
  }
  // The folder name is the version clients ask for; the manifest's own version is reported too.
  return { name, version, dir, modelPath, manifest };
}

/** A reason without absolute paths (ONNX Runtime names the file it failed to load). */
function withoutPaths(reason: string, dir: string, where: string): string {
  return reason.replaceAll(dir, where).replace(/(?:[A-Za-z]:)?[\\/](?:[^\s'"\\/]+[\\/])+[^\s'"]*/g, '<path>');
}

/**
 * One full-length stay with nothing measured: exercises every time step, and a probability that
 * is not a finite number in (0, 1) means the file is broken even though it loaded.
 */
async function warmUp(engine: ModelEngine, manifest: Manifest): Promise<void> {
  const time = manifest.maxHours;
  const nVariables = manifest.variables.length;
  const nStatics = manifest.statics.length;
  const noteDim = manifest.noteEmbedding?.dimension;
  const out = await engine.run({
    values: new Float64Array(time * nVariables).fill(NaN),
    statics: new Float64Array(nStatics).fill(NaN),
    lengths: Int32Array.of(time),
    batch: 1,
    time,
    nVariables,
    nStatics,
    ...(noteDim === undefined ? {} : { note: new Float32Array(noteDim), noteDim }),
  });
  const p = out[0];
  if (out.length !== 1 || p === undefined || !Number.isFinite(p) || p <= 0 || p >= 1) {
    throw new ModelLoadError(
      `warm-up inference returned ${out.length === 1 ? String(p) : `${out.length} values`}, not one probability in (0, 1)`,
    );
  }
}
