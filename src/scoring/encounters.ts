import {
  dropBeforeWindow,
  hourSinceAdmission,
  lastHourOf,
  mergeRows,
  stayRows,
  type DeliveredRow,
  type EncounterHeader,
  type EncounterHours,
} from '../clinical/encounter-hours.js';
import type { FieldIssue, HourRow, PatientInput, PredictionResult, Sex } from '../clinical/types.js';
import type { PatientValidator } from '../clinical/validate.js';
import type { Manifest } from '../model/manifest.js';
import {
  countEncounters,
  deleteEncounter,
  deleteIdleEncounters,
  readEncounter,
  saveEncounter,
  type EncounterRecord,
} from '../store/encounters.js';
import type { SqlClient } from '../store/sql-client.js';
import type { SubjectKey } from '../store/subject-key.js';
import type { ScoringObserver } from './observer.js';
import type { LoadedModel, ModelRepository } from '../model/repository.js';
import { scorePatients } from './score.js';
import { decodeState, encodeState, EncounterSteps, type StepState } from './encounter-steps.js';
import { isUsableOutput, OUTPUT_NOT_A_PROBABILITY } from './output-check.js';
import { predictionResult } from '../clinical/result.js';
import { EngineRunError } from '../inference/errors.js';

/**
 * Stepwise scoring of an encounter: each delivery of hours is merged into the stored ones and
 * the answer is the stay as /v1/predict would score it on those hours (replayed from the store),
 * so late values, repeats and model reloads need no special case.
 */

/** One delivered row as the route read it: `hour`, or `at` (epoch ms), and the measurements as sent. */
export interface DeliveryRow {
  hour?: number;
  at?: number;
  values: HourRow;
}

/** A delivery: descriptors (first contact, or a correction), units as /v1/predict takes them, rows. */
export interface Delivery {
  age?: number | null;
  sex?: Sex | null;
  icuType?: 1 | 2 | 3 | 4 | null;
  height?: number | null;
  weight?: number | null;
  noteEmbedding?: number[];
  units?: Record<string, string>;
  /** Epoch ms of admission. */
  admittedAt?: number;
  rows: DeliveryRow[];
}

export interface EncounterAnswer {
  result: PredictionResult;
}

/** A delivery the service refuses: the route answers `status` with `code` and the issues' paths. */
export class EncounterInputError extends Error {
  override name = 'EncounterInputError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues: FieldIssue[] = [],
  ) {
    super(message);
  }
}

export interface EncounterServiceOptions {
  models: ModelRepository;
  sql: SqlClient;
  subjectKey: SubjectKey;
  /** Told of each answer with route 'encounter'. */
  observer?: ScoringObserver;
  /** Wall clock: instants in the future, idle time. */
  now: () => Date;
  /** An encounter without a delivery for this long is removed. */
  idleTtlMs: number;
  /** Encounters held at most; a new one past it is refused. */
  maxEncounters: number;
  /** false: rescore the whole stay at every delivery, never step (the bench's baseline). */
  stepGraphs?: boolean;
  /** A step graph that failed to open (its encounters are rescored whole instead). */
  onStepGraphError?(reason: string): void;
}

export interface ObserveOptions {
  explain?: boolean;
  signal?: AbortSignal;
  caller?: string;
}

/** Saves lost to another writer of the same encounter before the delivery is refused (409). */
const MAX_ATTEMPTS = 4;

export class EncounterService {
  readonly #opts: EncounterServiceOptions;
  readonly #steps: EncounterSteps;
  readonly #queues = new Map<string, Promise<void>>();

  constructor(opts: EncounterServiceOptions) {
    this.#opts = opts;
    this.#steps = new EncounterSteps(opts.models, (reason) => opts.onStepGraphError?.(reason));
  }

  /** Closes the step graphs' workers. */
  close(): Promise<void> {
    return this.#steps.close();
  }

  /** Merges `delivery` into encounter `id` and scores the stay as it now stands. */
  observe(id: string, delivery: Delivery, options: ObserveOptions = {}): Promise<PredictionResult> {
    // One delivery of an encounter at a time in this process; the revision check covers other processes.
    const key = this.#opts.subjectKey(id);
    const run = (this.#queues.get(key) ?? Promise.resolve()).then(() => this.#observe(key, id, delivery, options));
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.#queues.set(key, tail);
    void tail.then(() => {
      if (this.#queues.get(key) === tail) this.#queues.delete(key);
    });
    return run;
  }

  async #observe(key: string, id: string, delivery: Delivery, options: ObserveOptions): Promise<PredictionResult> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const lease = this.#opts.models.acquire();
      try {
        const result = await this.#attempt(id, key, lease.model, delivery, options);
        if (result !== undefined) return result;
      } finally {
        lease.release();
      }
    }
    throw new EncounterInputError(
      409,
      'encounter_busy',
      'other deliveries to this encounter kept landing first; send this one again',
    );
  }

  /** One read-merge-score-save; undefined when another writer saved the encounter first. */
  async #attempt(
    id: string,
    key: string,
    model: LoadedModel,
    delivery: Delivery,
    options: ObserveOptions,
  ): Promise<PredictionResult | undefined> {
    const now = this.#opts.now().getTime();
    const stored = await this.#read(key, now);
    if (stored === undefined) await this.#checkRoom();
    const header = mergeHeader(stored?.header, delivery, model.validator);
    const rows = deliveredRows(model.validator, header, delivery, now);
    const hours: EncounterHours = structuredClone(stored?.hours ?? {});
    const refused = mergeRows(model.manifest, hours, rows);
    if (refused.length > 0)
      throw new EncounterInputError(
        400,
        'validation_failed',
        `more timed values in one hour than an encounter keeps for ${refused.join(', ')}`,
        refused.map((v) => ({ path: ['hours'], message: `${v}: too many distinct instants in one hour` })),
      );
    const lastHour = lastHourOf(hours);
    if (lastHour < 0)
      throw new EncounterInputError(400, 'validation_failed', 'the encounter has no hour yet: send hours', [
        { path: ['hours'], message: 'at least one row is needed before the encounter can be scored' },
      ]);
    dropBeforeWindow(hours, lastHour, model.manifest.maxHours);
    const { result, state } = await this.#score(id, model, stored, header, hours, lastHour, rows, options);
    const record: EncounterRecord = {
      key,
      modelName: result.model.name,
      modelVersion: result.model.version,
      header,
      hours,
      lastHour,
      state: state === undefined ? null : encodeState(state),
      stateHour: state === undefined ? null : lastHour,
      revision: (stored?.revision ?? 0) + 1,
      createdAt: stored?.createdAt ?? now,
      updatedAt: now,
    };
    if (await saveEncounter(this.#opts.sql, record, stored?.revision)) {
      this.#opts.observer?.scored({
        route: 'encounter',
        id,
        result,
        model: result.model,
        at: new Date(now),
      });
      return result;
    }
    return undefined;
  }

  /** Ends encounter `id`; false when there was none. */
  end(id: string): Promise<boolean> {
    return deleteEncounter(this.#opts.sql, this.#opts.subjectKey(id));
  }

  /** Removes the encounters idle past the TTL; returns how many. */
  sweep(): Promise<number> {
    return deleteIdleEncounters(this.#opts.sql, this.#opts.now().getTime() - this.#opts.idleTtlMs);
  }

  /** The stored encounter, or undefined when there is none or it has been idle past the TTL (then removed). */
  async #read(key: string, now: number): Promise<EncounterRecord | undefined> {
    const stored = await readEncounter(this.#opts.sql, key);
    if (stored === undefined || stored.updatedAt >= now - this.#opts.idleTtlMs) return stored;
    await deleteEncounter(this.#opts.sql, key);
    return undefined;
  }

  async #checkRoom(): Promise<void> {
    if ((await countEncounters(this.#opts.sql)) < this.#opts.maxEncounters) return;
    if ((await this.sweep()) > 0 && (await countEncounters(this.#opts.sql)) < this.#opts.maxEncounters) return;
    throw new EncounterInputError(
      503,
      'encounter_limit',
      `the service holds its limit of ${this.#opts.maxEncounters} encounters (ENCOUNTER_MAX_HELD); end finished ones with DELETE, idle ones expire`,
    );
  }

  /**
   * One step per new hour from the stored state when the delivery only adds hours after it, with the
   * same descriptors and model version, inside the window; else the stay replayed from its first
   * hour, through the step graph (which gives the state for the next hour) or /v1/predict's path
   * (explain, past the window, versions without a step graph).
   */
  async #score(
    id: string,
    model: LoadedModel,
    stored: EncounterRecord | undefined,
    header: EncounterHeader,
    hours: EncounterHours,
    lastHour: number,
    rows: readonly DeliveredRow[],
    options: ObserveOptions,
  ): Promise<{ result: PredictionResult; state?: StepState }> {
    const { manifest } = model;
    const stepping = this.#opts.stepGraphs !== false && this.#steps.has(model);
    if (options.explain === true || lastHour >= manifest.maxHours || !stepping)
      return { result: await this.#replay(id, model, header, hours, lastHour, options) };
    const outcome = model.validator.validate(stayInput(manifest, id, header, hours, lastHour));
    if (!outcome.ok) throw invalidStay(outcome.issues);
    const resume =
      stored !== undefined &&
      stored.state !== null &&
      stored.stateHour === stored.lastHour &&
      stored.modelVersion === model.version &&
      stored.lastHour < lastHour &&
      JSON.stringify(stored.header) === JSON.stringify(header) &&
      rows.every((r) => r.hour > stored.lastHour);
    const from = resume ? (stored.lastHour as number) + 1 : 0;
    let stepped: Awaited<ReturnType<EncounterSteps['run']>>;
    try {
      stepped = await this.#steps.run(
        model,
        outcome.patient,
        from,
        resume ? decodeState(stored.state as string) : undefined,
      );
    } catch (error) {
      if (!(error instanceof EngineRunError)) throw error;
      stepped = undefined;
    }
    if (stepped === undefined) return { result: await this.#replay(id, model, header, hours, lastHour, options) };
    if (!isUsableOutput(stepped.probability))
      throw new EncounterInputError(500, OUTPUT_NOT_A_PROBABILITY.error, OUTPUT_NOT_A_PROBABILITY.message);
    const ref = { name: model.name, version: model.version };
    return { result: predictionResult(manifest, ref, outcome.patient, stepped.probability), state: stepped.after };
  }

  /** The whole stay scored anew, as /v1/predict scores the same hours. */
  async #replay(
    id: string,
    model: { manifest: Manifest; version: string },
    header: EncounterHeader,
    hours: EncounterHours,
    lastHour: number,
    options: ObserveOptions,
  ): Promise<PredictionResult> {
    const input = stayInput(model.manifest, id, header, hours, lastHour);
    const scored = await scorePatients(this.#opts.models, [input], {
      version: model.version,
      explain: options.explain === true,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.caller ? { caller: options.caller } : {}),
    });
    const outcome = scored.outcomes[0];
    if (outcome?.ok) return outcome.result;
    if (outcome?.failure) throw new EncounterInputError(500, outcome.failure.error, outcome.failure.message);
    throw invalidStay(outcome?.issues ?? []);
  }
}

/** Merged hours outside the bounds (a sum of timed values): said by the hour of the stay. */
function invalidStay(issues: readonly FieldIssue[]): EncounterInputError {
  return new EncounterInputError(
    400,
    'validation_failed',
    'the encounter as merged is not a valid stay',
    issues.map((i) => ({ path: ['stay', ...i.path], message: i.message })),
  );
}

/** The stay /v1/predict would be sent for these hours: canonical units, so no `units`. */
export function stayInput(
  manifest: Manifest,
  id: string,
  header: EncounterHeader,
  hours: EncounterHours,
  lastHour: number,
): PatientInput {
  const names = new Set(manifest.variables.map((v) => v.name));
  return {
    id,
    age: header.age,
    sex: header.sex,
    icuType: header.icuType,
    height: header.height,
    weight: header.weight,
    hours: stayRows(hours, lastHour, names),
    ...(manifest.noteEmbedding && header.noteEmbedding ? { noteEmbedding: header.noteEmbedding } : {}),
  };
}

const DESCRIPTOR_KEYS = ['age', 'sex', 'icuType', 'height', 'weight', 'noteEmbedding'] as const;

/**
 * The stored header with the delivery's descriptors over it (a descriptor sent again is a
 * correction), validated as /v1/predict validates them; weight converted by `units`.
 */
function mergeHeader(
  stored: EncounterHeader | undefined,
  delivery: Delivery,
  validator: PatientValidator,
): EncounterHeader {
  if (
    stored?.admittedAt !== undefined &&
    delivery.admittedAt !== undefined &&
    delivery.admittedAt !== stored.admittedAt
  )
    throw new EncounterInputError(400, 'validation_failed', 'admittedAt differs from the encounter’s', [
      {
        path: ['admittedAt'],
        message: 'the encounter was opened with another admission time; DELETE it to start over',
      },
    ]);
  const header: EncounterHeader = stored
    ? { ...stored }
    : { age: null, sex: null, icuType: null, height: null, weight: null };
  for (const key of DESCRIPTOR_KEYS) {
    const value = delivery[key];
    if (value !== undefined) (header as unknown as Record<string, unknown>)[key] = value;
  }
  const admittedAt = stored?.admittedAt ?? delivery.admittedAt;
  if (admittedAt !== undefined) header.admittedAt = admittedAt;
  // One empty row: the validator folds the weight into it, converted, where it can be read back.
  const input: PatientInput = {
    ...headerInput(header, validator.manifest),
    ...(delivery.weight === undefined ? {} : { weight: delivery.weight }),
    ...(delivery.units ? { units: delivery.units } : {}),
    hours: [{}],
  };
  const outcome = validator.validate(input);
  if (!outcome.ok)
    throw new EncounterInputError(
      400,
      'validation_failed',
      describe(outcome.issues),
      outcome.issues.filter((i) => i.path[0] !== 'hours'),
    );
  const wj = weightColumn(validator.manifest);
  if (delivery.weight !== undefined && wj >= 0) {
    const w = outcome.patient.values[wj] as number;
    header.weight = Number.isNaN(w) ? null : w;
  }
  return header;
}

function headerInput(header: EncounterHeader, manifest: Manifest): Omit<PatientInput, 'hours'> {
  return {
    age: header.age,
    sex: header.sex,
    icuType: header.icuType,
    height: header.height,
    ...(manifest.noteEmbedding && header.noteEmbedding ? { noteEmbedding: header.noteEmbedding } : {}),
  };
}

function weightColumn(manifest: Manifest): number {
  const name = manifest.staticWeightVariable;
  return name === undefined ? -1 : manifest.variables.findIndex((v) => v.name === name);
}

function describe(issues: readonly FieldIssue[]): string {
  const first = issues[0];
  return first === undefined ? 'the delivery is invalid' : `${first.path.join('.')}: ${first.message}`;
}

/**
 * The delivery's rows validated as /v1/predict validates hours (names, units, bounds: the same
 * messages, at hours.<k>.<name>), each placed at its hour since admission.
 */
function deliveredRows(
  validator: PatientValidator,
  header: EncounterHeader,
  delivery: Delivery,
  now: number,
): DeliveredRow[] {
  const { manifest } = validator;
  const issues: FieldIssue[] = [];
  const placed: Array<{ hour: number; at?: number }> = delivery.rows.map((row, k) => {
    const admittedAt = header.admittedAt;
    if (row.at !== undefined) {
      if (admittedAt === undefined) {
        issues.push({ path: ['hours', k, 'at'], message: 'an instant needs the encounter’s admittedAt' });
        return { hour: -1 };
      }
      if (row.at < admittedAt) issues.push({ path: ['hours', k, 'at'], message: 'before admission (admittedAt)' });
      else if (row.at > now) issues.push({ path: ['hours', k, 'at'], message: 'in the future' });
      return { hour: hourSinceAdmission(row.at, admittedAt, manifest), at: row.at };
    }
    const hour = row.hour ?? -1;
    if (admittedAt !== undefined && admittedAt + hour * 3_600_000 > now)
      issues.push({
        path: ['hours', k, 'hour'],
        message: 'in the future: the hour starts after now (admittedAt + hour)',
      });
    return { hour };
  });
  if (header.admittedAt !== undefined && header.admittedAt > now)
    issues.push({ path: ['admittedAt'], message: 'in the future' });
  // Validated in windows of maxHours rows: the validator keeps only a stay's last maxHours rows.
  const V = manifest.variables.length;
  const out: DeliveredRow[] = [];
  const step = manifest.maxHours;
  for (let from = 0; from < delivery.rows.length; from += step) {
    const chunk = delivery.rows.slice(from, from + step);
    const outcome = validator.validate({
      ...headerInput(header, manifest),
      ...(delivery.units ? { units: delivery.units } : {}),
      hours: chunk.map((r) => r.values),
    });
    if (!outcome.ok) {
      for (const issue of outcome.issues)
        if (issue.path[0] === 'hours' && typeof issue.path[1] === 'number')
          issues.push({ path: ['hours', issue.path[1] + from, ...issue.path.slice(2)], message: issue.message });
      continue;
    }
    const { values } = outcome.patient;
    chunk.forEach((_, c) => {
      const where = placed[from + c] as { hour: number; at?: number };
      const cells: Array<[string, number]> = [];
      for (let j = 0; j < V; j++) {
        const value = values[c * V + j] as number;
        if (!Number.isNaN(value)) cells.push([(manifest.variables[j] as { name: string }).name, value]);
      }
      out.push(where.at === undefined ? { hour: where.hour, values: cells } : { ...where, values: cells });
    });
  }
  if (issues.length > 0) throw new EncounterInputError(400, 'validation_failed', describe(issues), issues);
  return out;
}
