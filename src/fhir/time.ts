/**
 * FHIR date and dateTime parsing (R4 "Primitive Types"). A dateTime with a time of day must
 * carry a time zone; without one the instant is unknown, and binning into hours needs the
 * instant, so such values are refused rather than read in the server's zone.
 */

const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-](?:0\d|1[0-4]):[0-5]\d)$/;
const DATE = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$/;

/** Milliseconds since the epoch, or undefined when `text` is not a dateTime with time and zone. */
export function parseFhirDateTime(text: string): number | undefined {
  const m = DATE_TIME.exec(text);
  if (!m) return undefined;
  const [month, day, hour, minute, second] = [m[2], m[3], m[4], m[5], m[6] ?? '0'].map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return undefined;
  const ms = Date.parse(text.replace(/\.(\d{3})\d*/, '.$1'));
  return Number.isFinite(ms) ? ms : undefined;
}

export interface FhirDate {
  year: number;
  /** 1..12; a partial date counts from its first month/day. */
  month: number;
  day: number;
}

/** A FHIR date (YYYY, YYYY-MM, YYYY-MM-DD), or undefined. */
export function parseFhirDate(text: string): FhirDate | undefined {
  const m = DATE.exec(text);
  if (!m) return undefined;
  const year = Number(m[1]);
  const month = m[2] === undefined ? 1 : Number(m[2]);
  const day = m[3] === undefined ? 1 : Number(m[3]);
  if (month < 1 || month > 12 || day < 1 || day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return undefined;
  return { year, month, day };
}

/** Completed years from `birth` to `at` (UTC calendar), as ages are counted clinically. */
export function completedYears(birth: FhirDate, at: Date): number {
  const y = at.getUTCFullYear();
  const m = at.getUTCMonth() + 1;
  const d = at.getUTCDate();
  const hadBirthday = m > birth.month || (m === birth.month && d >= birth.day);
  return y - birth.year - (hadBirthday ? 0 : 1);
}
