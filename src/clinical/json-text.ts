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

/**
 * JSON is read as the UTF-8 bytes it arrives in (RFC 8259, section 8.1), faster than charCodeAt on
 * a decoded string; safe because every character sought is ASCII and no byte of a multi-byte
 * sequence is below 0x80.
 */

/** The position of the first byte at or after `pos` that is not JSON whitespace. */
export function skipJsonSpace(text: Uint8Array, pos: number): number {
  for (;;) {
    const c = text[pos];
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) pos++;
    else return pos;
  }
}

/**
 * For the string whose opening quote is at `quote`: the position just past its closing quote,
 * or -1 when it has an escape, a control character (invalid JSON) or no end. Such strings are
 * left to JSON.parse.
 */
export function plainStringEnd(text: Uint8Array, quote: number): number {
  for (let p = quote + 1; p < text.length; p++) {
    const c = text[p] as number;
    if (c === Char.Quote) return p + 1;
    if (c === Char.Backslash || c < 0x20) return -1;
  }
  return -1;
}
