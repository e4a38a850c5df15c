import type { Manifest } from '../model/manifest.js';

/** The hour an observation falls in: floor(minutes / 60), except that 48:00 (maxHours * 60) is in the last hour. */
export function hourOf(minutes: number, manifest: Manifest): number {
  return minutes === manifest.maxHours * 60 ? manifest.maxHours - 1 : Math.floor(minutes / 60);
}

/** Per manifest, once: which variables are summed. */
const sumFlags = new WeakMap<Manifest, Uint8Array>();

/**
 * Hourly binning by the rule training/ bins the challenge records with (models/README.md, "Raw
 * record cleaning", rule 8), for values arriving in any order: a `last` variable keeps the value of
 * highest `order` (ties: the later arrival), a `sum` one adds them. Cells go straight into the dense
 * [hours x variables] matrix the model reads (NaN = missing).
 */
export class TimeOrderedBins {
  readonly #sum: Uint8Array;
  readonly #width: number;
  #values: Float64Array;
  #order: Float64Array;
  #hours = 1;

  constructor(manifest: Manifest) {
    let sum = sumFlags.get(manifest);
    if (sum === undefined) {
      sum = Uint8Array.from(manifest.variables, (v) => (v.aggregation === 'sum' ? 1 : 0));
      sumFlags.set(manifest, sum);
    }
    this.#sum = sum;
    this.#width = manifest.variables.length;
    this.#values = new Float64Array(manifest.maxHours * this.#width).fill(Number.NaN);
    this.#order = new Float64Array(manifest.maxHours * this.#width);
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
