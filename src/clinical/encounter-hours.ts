import type { Manifest } from '../model/manifest.js';
import { hourOf } from './binning.js';
import type { HourRow, Sex } from './types.js';

/**
 * The hours of an encounter scored step by step (POST /v1/encounters/{id}/observations), merged
 * from deliveries that may come late, twice, or out of order, into the rows /v1/predict reads.
 * Pure: the store keeps `EncounterHours` as JSON, the service decides when to score.
 */

/** One variable in one hour: the hour's value, and the timed values it was built from, if any. */
export interface HourCell {
  value: number;
  /** Epoch ms of the value kept (a `last` variable sent with instants). */
  at?: number;
  /** [epoch ms, value] of every distinct instant of a `sum` variable, oldest first. */
  parts?: Array<[number, number]>;
}

/** Hour since admission (as a decimal string key) -> variable -> cell, canonical units. */
export type EncounterHours = Record<string, Record<string, HourCell>>;

/** One delivered row, already validated and in canonical units: null values dropped. */
export interface DeliveredRow {
  hour: number;
  /** Epoch ms when the row was sent as an instant; absent for a row sent by hour. */
  at?: number;
  values: ReadonlyArray<readonly [variable: string, value: number]>;
}

/** Distinct instants kept for one `sum` cell: one a minute over its hour. */
export const MAX_PARTS_PER_CELL = 60;

/**
 * Merges rows into `hours` (in place). A row sent by hour is that hour's value and replaces what was
 * there (a correction, or the same delivery again). A timed value of a `last` variable replaces a
 * timed one only when it is not earlier (training's last-value rule, src/clinical/binning.ts); a
 * `sum` variable adds its distinct instants, so a repeated delivery is counted once.
 * Returns the variables whose `sum` cell would hold more than MAX_PARTS_PER_CELL instants (not merged).
 */
export function mergeRows(manifest: Manifest, hours: EncounterHours, rows: readonly DeliveredRow[]): string[] {
  const aggregation = new Map(manifest.variables.map((v) => [v.name, v.aggregation]));
  const refused: string[] = [];
  for (const row of rows) {
    const key = String(row.hour);
    const cells = (hours[key] ??= {});
    for (const [variable, value] of row.values) {
      const previous = cells[variable];
      if (row.at === undefined) cells[variable] = { value };
      else if (aggregation.get(variable) !== 'sum') {
        if (previous?.at === undefined || row.at >= previous.at) cells[variable] = { value, at: row.at };
      } else {
        const parts = new Map(previous?.parts ?? []);
        parts.set(row.at, value);
        if (parts.size > MAX_PARTS_PER_CELL) {
          refused.push(variable);
          continue;
        }
        const sorted = [...parts].sort((a, b) => a[0] - b[0]);
        cells[variable] = { value: sorted.reduce((sum, [, v]) => sum + v, 0), parts: sorted };
      }
    }
  }
  return refused;
}

/** The last hour with a row (sent, even empty), or -1 when there is none. */
export function lastHourOf(hours: EncounterHours): number {
  let last = -1;
  for (const key of Object.keys(hours)) last = Math.max(last, Number(key));
  return last;
}

/** Drops the hours before the model's window (the last maxHours up to `lastHour`): scoring never reads them. */
export function dropBeforeWindow(hours: EncounterHours, lastHour: number, maxHours: number): void {
  const first = lastHour - maxHours + 1;
  for (const key of Object.keys(hours)) if (Number(key) < first) delete hours[key];
}

const EMPTY: HourRow = Object.freeze({}) as HourRow;

/**
 * The stay as /v1/predict takes it: rows 0..lastHour, an empty row for every hour without values
 * (and for hours dropped before the window, which the model does not read either way).
 */
export function stayRows(hours: EncounterHours, lastHour: number, variables?: ReadonlySet<string>): HourRow[] {
  const rows = new Array<HourRow>(lastHour + 1).fill(EMPTY);
  for (const [key, cells] of Object.entries(hours)) {
    const row: HourRow = {};
    for (const [variable, cell] of Object.entries(cells))
      if (variables === undefined || variables.has(variable)) row[variable] = cell.value;
    rows[Number(key)] = row;
  }
  return rows;
}

/** The hour since admission of an instant (epoch ms), by the binning rule of the readers. */
export function hourSinceAdmission(at: number, admittedAt: number, manifest: Manifest): number {
  return hourOf((at - admittedAt) / 60_000, manifest);
}

/** What an encounter holds besides its hours: the descriptors, in canonical units, and the admission instant. */
export interface EncounterHeader {
  age: number | null;
  sex: Sex | null;
  icuType: 1 | 2 | 3 | 4 | null;
  height: number | null;
  /** Admission weight in the weight variable's canonical unit. */
  weight: number | null;
  /** A hybrid model's note embedding. */
  noteEmbedding?: number[];
  /** Epoch ms of admission, when the client gave one: rows may then come as instants. */
  admittedAt?: number;
}
