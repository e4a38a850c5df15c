/**
 * The pieces of JSON text (RFC 8259) that the request scanners read without JSON.parse: the
 * patient scanner (scan.ts) and the POST /v1/predict envelope (api/predict-body.ts). One
 * definition, so that both agree on what whitespace and a plain string are.
 */

export const Char = {
  Quote: 0x22,
  Backslash: 0x5c,
  Comma: 0x2c,
  Colon: 0x3a,
  LBrace: 0x7b,
  RBrace: 0x7d,
  LBracket: 0x5b,
  RBracket: 0x5d,
  Minus: 0x2d,
  Plus: 0x2b,
  Dot: 0x2e,
  Zero: 0x30,
  Nine: 0x39,
} as const;

/** The position of the first character at or after `pos` that is not JSON whitespace. */
export function skipJsonSpace(text: string, pos: number): number {
  for (;;) {
    const c = text.charCodeAt(pos);
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) pos++;
    else return pos;
  }
}

/**
 * For the string whose opening quote is at `quote`: the position just past its closing quote,
 * or -1 when it has an escape, a control character (invalid JSON) or no end. Such strings are
 * left to JSON.parse.
 */
export function plainStringEnd(text: string, quote: number): number {
  for (let p = quote + 1; ; p++) {
    const c = text.charCodeAt(p);
    if (c === Char.Quote) return p + 1;
    if (c === Char.Backslash || c < 0x20 || Number.isNaN(c)) return -1;
  }
}
