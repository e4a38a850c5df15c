import { numericDescriptor, type Manifest } from '../model/manifest.js';
import { Char, plainStringEnd, skipJsonSpace } from './json-text.js';
import { icuTypeCodes, MAX_HOURS_RECEIVED, MAX_ID_LENGTH, sexLabels } from './schemas.js';

/**
 * Reads a patient's JSON bytes once, straight into the dense [hours x variables] matrix, checking
 * what the patient schema checks: 4 to 6 times faster than JSON.parse + validate (bench/RESULTS.md).
 * Anything outside its subset (escapes, unknown or repeated keys, `units`, any error) returns
 * undefined and the caller takes JSON.parse + validate, so errors read the same; the property
 * tests in test/clinical/scan.test.ts hold both to one result.
 */

/** The patient fields besides the rows, as the scanner read them (absent = undefined). */
export interface ScannedHeader {
  id?: string;
  age?: number | null;
  sex?: 'female' | 'male' | null;
  icuType?: 1 | 2 | 3 | 4 | null;
  height?: number | null;
  weight?: number | null;
}

export interface ScanResult {
  header: ScannedHeader;
  /** Row-major [rows x variables], canonical, NaN = missing; exactly rows x variables long. */
  values: Float64Array;
  rows: number;
  /** Per variable: 1 if it has a value in the last manifest.maxHours rows (those the model reads), else 0. */
  observed: Uint8Array;
  /** Index just past the object's closing brace. */
  end: number;
}

export interface PatientScanner {
  /** The patient object starting at `pos` (whitespace first allowed), or undefined to take the ordinary path. */
  scanAt(text: Buffer, pos: number): ScanResult | undefined;
  /** The whole text as one patient object (surrounding whitespace allowed), or undefined. */
  scan(text: Buffer): ScanResult | undefined;
}

const POW10 = [
  1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
  1e21, 1e22,
];

const {
  Quote: QUOTE,
  Backslash: BACKSLASH,
  Comma: COMMA,
  Colon: COLON,
  LBrace: LBRACE,
  RBrace: RBRACE,
  LBracket: LBRACKET,
  RBracket: RBRACKET,
  Minus: MINUS,
  Plus: PLUS,
  Dot: DOT,
  Zero: ZERO,
  Nine: NINE,
} = Char;

/**
 * The value of the last number readNumber read: a second return value without an allocation.
 * A one-element typed array rather than a `let`: Node 20's V8 boxes a double stored in a
 * module variable, one heap allocation per number read (about 270 per 48-hour stay).
 */
const lastNumber = new Float64Array(1);

/**
 * Reads the JSON number at p into lastNumber[0] and returns the position after it (-1: not a
 * finite JSON number). Up to 15 digits and 22 decimals it is one correctly rounded division of
 * two exact doubles (Clinger's fast path), the double JSON.parse gives; the rest is readLongNumber's.
 */
function readNumber(s: Buffer, p: number): number {
  const start = p;
  let c = s[p] as number;
  const negative = c === MINUS;
  if (negative) c = s[++p] as number;
  let mantissa = 0;
  let digits = 0;
  let scale = 0;
  if (c > ZERO && c <= NINE) {
    do {
      mantissa = mantissa * 10 + (c - ZERO);
      digits++;
      c = s[++p] as number;
    } while (c >= ZERO && c <= NINE);
  } else if (c === ZERO) {
    c = s[++p] as number;
  } else {
    return -1;
  }
  if (c === DOT) {
    c = s[++p] as number;
    if (!(c >= ZERO && c <= NINE)) return -1;
    do {
      mantissa = mantissa * 10 + (c - ZERO);
      // Leading zeros of the fraction (0.005) are not significant digits.
      if (mantissa !== 0) digits++;
      scale++;
      c = s[++p] as number;
    } while (c >= ZERO && c <= NINE);
  }
  if (c === 0x65 || c === 0x45 || digits > 15 || scale > 22) return readLongNumber(s, start, p);
  // Both operands exact (mantissa < 10^15 < 2^53, 10^22 is the largest exact power of ten): one correctly rounded
  // operation.
  const value = scale === 0 ? mantissa : mantissa / (POW10[scale] as number);
  lastNumber[0] = negative ? -value : value;
  return p;
}

/**
 * The rest of a number readNumber could not compute (p is past its integer and fraction
 * digits): an exponent's syntax is checked here and the value is Number() of the text,
 * which rounds as JSON.parse does. Not finite (1e999): -1, the ordinary path reports it.
 */
function readLongNumber(s: Buffer, start: number, p: number): number {
  let c = s[p] as number;
  if (c === 0x65 || c === 0x45) {
    c = s[++p] as number;
    if (c === MINUS || c === PLUS) c = s[++p] as number;
    if (!(c >= ZERO && c <= NINE)) return -1;
    do c = s[++p] as number;
    while (c >= ZERO && c <= NINE);
  }
  const value = Number(s.toString('latin1', start, p));
  if (!Number.isFinite(value)) return -1;
  lastNumber[0] = value;
  return p;
}

/** True when `text` holds the ASCII `literal` at `pos`. */
function hasAt(text: Uint8Array, pos: number, literal: string): boolean {
  for (let i = 0; i < literal.length; i++) if (text[pos + i] !== literal.charCodeAt(i)) return false;
  return true;
}

/** Not a value the scanner takes: the caller goes the ordinary way. */
class GiveUp {}
const GIVE_UP = new GiveUp();
const EMPTY = Buffer.alloc(0);

/**
 * Names looked up by length and first character, compared in place: no string is made per
 * key. Buckets are flat arrays (a first candidate per slot, then a chain): no iterator or
 * object per lookup in the hot loop.
 */
class NameTable {
  /**
   * [length * 128 + first character] -> first candidate + 1 (0: none); names are short ASCII (others are not found, so
   * the caller gives up).
   */
  readonly #first = new Int32Array(64 * 128);
  /** Candidate -> next candidate in the same slot + 1 (0: none). */
  readonly #next: Int32Array;
  readonly #names: readonly string[];

  constructor(names: readonly string[]) {
    this.#names = names;
    this.#next = new Int32Array(names.length);
    // Backwards, so that each chain lists its names in their original order.
    for (let index = names.length - 1; index >= 0; index--) {
      const name = names[index] as string;
      const key = slot(name.length, name.charCodeAt(0));
      if (key < 0) continue;
      this.#next[index] = this.#first[key] as number;
      this.#first[key] = index + 1;
    }
  }

  /** Index of the name text[start, end), or -1. */
  find(text: Buffer, start: number, end: number): number {
    const length = end - start;
    const key = slot(length, text[start] as number);
    let candidate = key < 0 ? 0 : (this.#first[key] as number);
    while (candidate !== 0) {
      const index = candidate - 1;
      const name = this.#names[index] as string;
      let i = 1;
      while (i < length && name.charCodeAt(i) === text[start + i]) i++;
      if (i === length) return index;
      candidate = this.#next[index] as number;
    }
    return -1;
  }
}

function slot(length: number, first: number): number {
  return length >= 1 && length < 64 && first < 128 ? length * 128 + first : -1;
}

const HEADER_KEYS = ['id', 'age', 'sex', 'icuType', 'height', 'weight', 'units', 'hours'] as const;
const [K_ID, K_AGE, K_SEX, K_ICU, K_HEIGHT, K_WEIGHT, K_UNITS, K_HOURS] = [0, 1, 2, 3, 4, 5, 6, 7];

interface Bounds {
  min: number;
  max: number;
}

/** Builds the scanner for one manifest, from the same facts as patientInputSchema (src/clinical/schemas.ts). */
export function createPatientScanner(manifest: Manifest): PatientScanner {
  const variables = manifest.variables;
  const V = variables.length;
  const names = new NameTable(variables.map((v) => v.name));
  const headerNames = new NameTable(HEADER_KEYS);
  const mins = Float64Array.from(variables, (v) => v.bounds.min);
  const maxs = Float64Array.from(variables, (v) => v.bounds.max);
  const ageBounds = numericDescriptor(manifest, 'age')?.bounds;
  const heightBounds = numericDescriptor(manifest, 'height')?.bounds;
  const weightVariable =
    manifest.staticWeightVariable === undefined
      ? undefined
      : variables.find((v) => v.name === manifest.staticWeightVariable);
  const sexes = sexLabels(manifest);
  const icuTypes = icuTypeCodes(manifest);
  const lastSeenInRow = new Int32Array(V);
  // The row number at which each variable last had a value (not null).
  const lastValueInRow = new Int32Array(V);

  let text: Buffer = EMPTY;
  let pos = 0;

  const skipSpace = (): number => {
    pos = skipJsonSpace(text, pos);
    return text[pos] as number;
  };

  const expect = (code: number): void => {
    if (skipSpace() !== code) throw GIVE_UP;
    pos++;
  };

  /** A string without escapes; returns its start, pos is left after the closing quote (end = pos - 1). */
  const stringBody = (): number => {
    if (skipSpace() !== QUOTE) throw GIVE_UP;
    const start = pos + 1;
    // Escapes, control characters (invalid JSON) and the end of the text: the ordinary path.
    const end = plainStringEnd(text, pos);
    if (end < 0) throw GIVE_UP;
    pos = end;
    return start;
  };

  const isLiteral = (literal: string): boolean => {
    if (!hasAt(text, pos, literal)) return false;
    pos += literal.length;
    return true;
  };

  /** A JSON number at pos (whitespace skipped): the double JSON.parse gives for it. */
  const number = (): number => {
    skipSpace();
    pos = readNumber(text, pos);
    if (pos < 0) throw GIVE_UP;
    return lastNumber[0] as number;
  };

  /** A number within bounds, or null (undefined bounds: any finite number). */
  const boundedOrNull = (bounds: Bounds | undefined): number | null => {
    skipSpace();
    if (isLiteral('null')) return null;
    const value = number();
    if (bounds !== undefined && !(value >= bounds.min && value <= bounds.max)) throw GIVE_UP;
    return value;
  };

  const scanAt = (source: Buffer, at: number): ScanResult | undefined => {
    text = source;
    pos = at;
    try {
      return patient();
    } catch (error) {
      if (error === GIVE_UP) return undefined;
      throw error;
    } finally {
      text = EMPTY;
    }
  };

  function patient(): ScanResult {
    const header: ScannedHeader = {};
    let seenKeys = 0;
    let values: Float64Array | undefined;
    let observed: Uint8Array | undefined;
    let rows = 0;
    expect(LBRACE);
    if (skipSpace() === RBRACE) throw GIVE_UP; // `hours` is required
    for (;;) {
      const keyStart = stringBody();
      const key = headerNames.find(text, keyStart, pos - 1);
      if (key < 0 || key === K_UNITS || (seenKeys & (1 << key)) !== 0) throw GIVE_UP;
      seenKeys |= 1 << key;
      expect(COLON);
      if (key === K_HOURS) {
        ({ values, rows, observed } = hours());
      } else if (key === K_ID) {
        const start = stringBody();
        if (pos - 1 - start > MAX_ID_LENGTH) throw GIVE_UP;
        header.id = text.toString('utf8', start, pos - 1);
      } else if (key === K_AGE) {
        header.age = boundedOrNull(ageBounds);
      } else if (key === K_HEIGHT) {
        header.height = boundedOrNull(heightBounds);
      } else if (key === K_WEIGHT) {
        // The schema takes any number; the weight variable's bounds apply (no units here).
        header.weight = boundedOrNull(weightVariable?.bounds);
      } else if (key === K_SEX) {
        skipSpace();
        if (isLiteral('null')) header.sex = null;
        else {
          const start = stringBody();
          const sex = sexes.find((s) => s.length === pos - 1 - start && hasAt(text, start, s));
          if (sex === undefined) throw GIVE_UP;
          header.sex = sex;
        }
      } else if (key === K_ICU) {
        skipSpace();
        if (isLiteral('null')) header.icuType = null;
        else {
          const code = number();
          const icuType = icuTypes.find((c) => c === code);
          if (icuType === undefined) throw GIVE_UP;
          header.icuType = icuType;
        }
      }
      const c = skipSpace();
      pos++;
      if (c === RBRACE) break;
      if (c !== COMMA) throw GIVE_UP;
    }
    if (values === undefined || observed === undefined) throw GIVE_UP;
    return { header, values, rows, observed, end: pos };
  }

  /**
   * The rows, the hot loop: one text walk with the position in a local (the closures above keep
   * it in their shared context, which measured slower here), names compared in place,
   * numbers read by readNumber, values written into the matrix as they come.
   */
  function hours(): { values: Float64Array; rows: number; observed: Uint8Array } {
    const s = text;
    let p = pos;
    // Repeated keys within a row: the row number at which each variable was last seen.
    lastSeenInRow.fill(0);
    lastValueInRow.fill(0);
    let capacity = manifest.maxHours;
    let values = new Float64Array(capacity * V).fill(Number.NaN);
    let rows = 0;
    let c = s[p] as number;
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = s[++p] as number;
    if (c !== LBRACKET) throw GIVE_UP;
    for (;;) {
      // Before a row: whitespace, then `{`.
      do c = s[++p] as number;
      while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09);
      if (c !== LBRACE) throw GIVE_UP; // also `]` at once: at least one row is required
      if (rows >= MAX_HOURS_RECEIVED) throw GIVE_UP;
      if (rows === capacity) {
        capacity *= 2;
        const grown = new Float64Array(capacity * V).fill(Number.NaN);
        grown.set(values);
        values = grown;
      }
      const base = rows * V;
      rows++;
      do c = s[++p] as number;
      while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09);
      if (c === RBRACE) {
        c = s[++p] as number;
      } else {
        for (;;) {
          // At a key's opening quote (or something that is not one).
          if (c !== QUOTE) throw GIVE_UP;
          const keyStart = p + 1;
          do c = s[++p] as number;
          while (c !== QUOTE && c !== BACKSLASH && c >= 0x20);
          if (c !== QUOTE) throw GIVE_UP;
          const j = names.find(s, keyStart, p);
          if (j < 0 || lastSeenInRow[j] === rows) throw GIVE_UP;
          lastSeenInRow[j] = rows;
          do c = s[++p] as number;
          while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09);
          if (c !== COLON) throw GIVE_UP;
          do c = s[++p] as number;
          while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09);
          if (c === 0x6e) {
            if (!hasAt(s, p, 'null')) throw GIVE_UP;
            p += 4;
          } else {
            p = readNumber(s, p);
            if (p < 0) throw GIVE_UP;
            const value = lastNumber[0] as number;
            if (!(value >= (mins[j] as number) && value <= (maxs[j] as number))) throw GIVE_UP;
            values[base + j] = value;
            lastValueInRow[j] = rows;
          }
          c = s[p] as number;
          while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = s[++p] as number;
          if (c === RBRACE) {
            c = s[++p] as number;
            break;
          }
          if (c !== COMMA) throw GIVE_UP;
          do c = s[++p] as number;
          while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09);
        }
      }
      // After a row: `,` or `]`.
      while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = s[++p] as number;
      if (c === RBRACKET) {
        pos = p + 1;
        break;
      }
      if (c !== COMMA) throw GIVE_UP;
    }
    // Rows numbered 1..rows; the model reads those after the first `rows - used`.
    const cut = rows - Math.min(rows, manifest.maxHours);
    const observed = new Uint8Array(V);
    for (let j = 0; j < V; j++) if ((lastValueInRow[j] as number) > cut) observed[j] = 1;
    return { values: rows * V === values.length ? values : values.subarray(0, rows * V), rows, observed };
  }

  const scan = (source: Buffer): ScanResult | undefined => {
    const result = scanAt(source, 0);
    if (result === undefined) return undefined;
    let end = result.end;
    for (;;) {
      const c = source[end] as number;
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) end++;
      else break;
    }
    return end === source.length ? result : undefined;
  };

  return { scanAt, scan };
}
