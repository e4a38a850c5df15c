import type { Manifest } from '../model/manifest.js';

/** One timed measurement, already in the manifest's canonical unit. */
export interface TimedObservation {
  /** Minutes since ICU admission (or since the stay's reference time). */
  minutes: number;
  variable: string;
  value: number;
}

/** The hour an observation falls in: floor(minutes / 60), except that 48:00 (maxHours * 60) is in the last hour. */
export function hourOf(minutes: number, manifest: Manifest): number {
  return minutes === manifest.maxHours * 60 ? manifest.maxHours - 1 : Math.floor(minutes / 60);
}

/**
 * Hourly rows from irregular observations by the rule training/ bins the challenge records with
 * (models/README.md, "Raw record cleaning", rule 8). Negative minutes are the caller's to drop.
 */
export function binObservations(
  observations: readonly TimedObservation[],
  manifest: Manifest,
): Array<Record<string, number | null>> {
  const bins = new TimeOrderedBins(manifest);
  // Ordered by arrival alone: an hour's last value is the last in input order.
  observations.forEach((obs, i) => bins.add(obs, i));
  return bins.rows();
}

/** Per manifest, once: each variable's column, and which are summed. */
const layouts = new WeakMap<Manifest, { columns: ReadonlyMap<string, number>; sum: Uint8Array }>();

/**
 * Hourly binning for values arriving in any order, as if stably sorted by `order` first (time by
 * default; the later arrival wins a tie) for a `last` variable, summed in arrival order for a `sum`
 * one. Cells are written straight into the dense [hours x variables] matrix the model reads (NaN =
 * missing), one typed array per stay rather than an object per hour.
 */
export class TimeOrderedBins {
  readonly #columns: ReadonlyMap<string, number>;
  readonly #sum: Uint8Array;
  readonly #width: number;
  #values: Float64Array;
  #order: Float64Array;
  #hours = 1;

  constructor(readonly manifest: Manifest) {
    let layout = layouts.get(manifest);
    if (layout === undefined) {
      layout = {
        columns: new Map(manifest.variables.map((v, j) => [v.name, j])),
        sum: Uint8Array.from(manifest.variables, (v) => (v.aggregation === 'sum' ? 1 : 0)),
      };
      layouts.set(manifest, layout);
    }
    this.#columns = layout.columns;
    this.#sum = layout.sum;
    this.#width = manifest.variables.length;
    this.#values = new Float64Array(manifest.maxHours * this.#width).fill(Number.NaN);
    this.#order = new Float64Array(manifest.maxHours * this.#width);
  }

  /** `order` ranks an hour's values of a `last` variable (ties: the later arrival); time by default. */
  add(obs: TimedObservation, order: number = obs.minutes): void {
    const j = this.#columns.get(obs.variable);
    if (j !== undefined) this.set(hourOf(obs.minutes, this.manifest), j, obs.value, order);
  }

  /** The value of column `j` (manifest order) in `hour` (0-based, below the caller's limit). */
  set(hour: number, j: number, value: number, order: number): void {
    if (hour >= this.#hours) this.#grow(hour + 1);
    const cell = hour * this.#width + j;
    const previous = this.#values[cell] as number;
    if (previous !== previous) {
      this.#values[cell] = value;
      this.#order[cell] = order;
    } else if (this.#sum[j] === 1) {
      this.#values[cell] = previous + value;
    } else if (order >= (this.#order[cell] as number)) {
      this.#values[cell] = value;
      this.#order[cell] = order;
    }
  }

  /** Hours from 0 to the last one with a value (at least one), or as many as extend() asked for. */
  get hours(): number {
    return this.#hours;
  }

  /** At least `hours` hours, empty ones at the end (a JSON body's rows count whether they hold values or not). */
  extend(hours: number): void {
    if (hours > this.#hours) this.#grow(hours);
  }

  /** The [hours x variables] matrix, exactly that long; the bins are not to be used afterwards. */
  matrix(): Float64Array {
    const length = this.#hours * this.#width;
    return length === this.#values.length ? this.#values : this.#values.slice(0, length);
  }

  /** The same as hourly rows keyed by variable name (the JSON body's `hours`). */
  rows(): Array<Record<string, number | null>> {
    return matrixRows(this.manifest, this.matrix(), this.#hours);
  }

  #grow(hours: number): void {
    const capacity = this.#values.length / this.#width;
    if (hours > capacity) {
      const grown = Math.max(hours, capacity * 2) * this.#width;
      const values = new Float64Array(grown).fill(Number.NaN);
      values.set(this.#values);
      const order = new Float64Array(grown);
      order.set(this.#order);
      this.#values = values;
      this.#order = order;
    }
    this.#hours = hours;
  }
}

/** Rows of a [hours x variables] matrix keyed by variable name, missing values left out. */
export function matrixRows(manifest: Manifest, values: Float64Array, hours: number): Array<Record<string, number>> {
  const names = manifest.variables.map((v) => v.name);
  const V = names.length;
  const rows: Array<Record<string, number>> = [];
  for (let t = 0; t < hours; t++) {
    const row: Record<string, number> = {};
    for (let j = 0; j < V; j++) {
      const value = values[t * V + j] as number;
      if (value === value) row[names[j] as string] = value;
    }
    rows.push(row);
  }
  return rows;
}
