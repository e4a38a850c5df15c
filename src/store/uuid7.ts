import { randomFillSync } from 'node:crypto';

/**
 * UUIDv7 (RFC 9562 section 5.7): a 48-bit big-endian Unix millisecond timestamp, the version (7),
 * 12 random bits, the variant (0b10) and 62 random bits. Ids made in time order land at the end
 * of a primary-key index instead of on random pages. Node 20 has randomUUID() (v4) only.
 */

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
// Random bytes drawn in blocks: one randomFillSync per id costs more than the rest of the id.
const pool = new Uint8Array(10 * 256);
let used = pool.length;

function randomTen(): Uint8Array {
  if (used === pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  used += 10;
  return pool.subarray(used - 10, used);
}

/** A UUIDv7 for epoch milliseconds `ms`; `random` (10 bytes) supplies its random bits (tests pass their own). */
export function uuidv7(ms: number = Date.now(), random: Uint8Array = randomTen()): string {
  if (!Number.isInteger(ms) || ms < 0 || ms >= 2 ** 48) throw new RangeError(`UUIDv7 time ${ms} is not 48-bit ms`);
  if (random.length < 10) throw new RangeError(`UUIDv7 needs 10 random bytes, got ${random.length}`);
  const high = Math.floor(ms / 2 ** 16);
  const b = [
    (high >>> 24) & 0xff,
    (high >>> 16) & 0xff,
    (high >>> 8) & 0xff,
    high & 0xff,
    (ms >>> 8) & 0xff,
    ms & 0xff,
    0x70 | ((random[0] as number) & 0x0f),
    random[1] as number,
    0x80 | ((random[2] as number) & 0x3f),
    ...random.subarray(3, 10),
  ].map((byte) => HEX[byte]);
  return `${b.slice(0, 4).join('')}-${b.slice(4, 6).join('')}-${b.slice(6, 8).join('')}-${b.slice(8, 10).join('')}-${b.slice(10).join('')}`;
}
