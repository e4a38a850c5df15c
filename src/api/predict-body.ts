import { Char, plainStringEnd, skipJsonSpace } from '../clinical/json-text.js';
import type { PatientValidator, ScannedPatient } from '../clinical/validate.js';

/**
 * The body of POST /v1/predict read in one pass over its bytes by the patient scanner
 * (src/clinical/scan.ts), without JSON.parse (bench/RESULTS.md, "History"). Any body it does not
 * take returns undefined, and the route parses it with Fastify's JSON parser as before.
 */
export interface ScannedBody {
  patients: ScannedPatient[];
  model?: string;
  version?: string;
  explain?: boolean;
}

const LITERALS: ReadonlyArray<[string, boolean]> = [
  ['true', true],
  ['false', false],
];

export function scanPredictBody(text: Buffer, validator: PatientValidator): ScannedBody | undefined {
  let p = 0;
  const skip = (): number => {
    p = skipJsonSpace(text, p);
    // undefined past the end, which is no character this reader looks for.
    return text[p] as number;
  };
  /** A string without escapes at p (after whitespace); undefined otherwise. */
  const string = (): string | undefined => {
    if (skip() !== Char.Quote) return undefined;
    const end = plainStringEnd(text, p);
    if (end < 0) return undefined;
    const value = text.toString('utf8', p + 1, end - 1);
    p = end;
    return value;
  };

  /** A JSON true or false at p (after whitespace); undefined otherwise. */
  const boolean = (): boolean | undefined => {
    skip();
    for (const [literal, value] of LITERALS) {
      if (text.toString('latin1', p, p + literal.length) === literal) {
        p += literal.length;
        return value;
      }
    }
    return undefined;
  };

  const body: ScannedBody = { patients: [] };
  let seenPatients = false;
  if (skip() !== Char.LBrace) return undefined;
  p++;
  for (;;) {
    const key = string();
    if (skip() !== Char.Colon) return undefined;
    p++;
    if (key === 'patients' && !seenPatients) {
      seenPatients = true;
      if (skip() !== Char.LBracket) return undefined;
      p++;
      for (;;) {
        const scanned = validator.scanTextAt(text, p);
        if (scanned === undefined) return undefined;
        body.patients.push(scanned.scanned);
        p = scanned.end;
        const c = skip();
        p++;
        if (c === Char.RBracket) break;
        if (c !== Char.Comma) return undefined;
      }
    } else if ((key === 'model' && body.model === undefined) || (key === 'version' && body.version === undefined)) {
      const value = string();
      if (value === undefined) return undefined;
      body[key] = value;
    } else if (key === 'explain' && body.explain === undefined) {
      const value = boolean();
      if (value === undefined) return undefined;
      body.explain = value;
    } else {
      return undefined;
    }
    const c = skip();
    p++;
    if (c === Char.RBrace) break;
    if (c !== Char.Comma) return undefined;
  }
  skip();
  if (p !== text.length) return undefined;
  return seenPatients ? body : undefined;
}
