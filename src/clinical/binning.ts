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

/**
 * binObservations for observations arriving in any order, as if stably sorted by time first (the
 * latest time, then the later arrival, is an hour's last value), in memory of one cell per hour
 * and variable: a long-form CSV id of a million rows is binned as it is read. Sums add in arrival order.
 */
export class TimeOrderedBins {
  readonly #aggregation: Map<string, 'last' | 'sum'>;
  readonly #cells = new Map<number, Map<string, { order: number; value: number }>>();
  #lastHour = 0;

  constructor(private readonly manifest: Manifest) {
    this.#aggregation = new Map(manifest.variables.map((v) => [v.name, v.aggregation]));
  }

  /** `order` ranks an hour's values of a `last` variable (ties: the later arrival); time by default. */
  add(obs: TimedObservation, order: number = obs.minutes): void {
    const how = this.#aggregation.get(obs.variable);
    if (how === undefined) return;
    const hour = hourOf(obs.minutes, this.manifest);
    this.#lastHour = Math.max(this.#lastHour, hour);
    let row = this.#cells.get(hour);
    if (!row) {
      row = new Map();
      this.#cells.set(hour, row);
    }
    const previous = row.get(obs.variable);
    if (previous === undefined) row.set(obs.variable, { order, value: obs.value });
    else if (how === 'sum') previous.value += obs.value;
    else if (order >= previous.order) row.set(obs.variable, { order, value: obs.value });
  }

  rows(): Array<Record<string, number | null>> {
    const rows: Array<Record<string, number | null>> = [];
    for (let hour = 0; hour <= this.#lastHour; hour++) {
      const row: Record<string, number | null> = {};
      for (const [variable, cell] of this.#cells.get(hour) ?? []) row[variable] = cell.value;
      rows.push(row);
    }
    return rows;
  }
}
