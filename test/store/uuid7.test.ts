import assert from 'node:assert/strict';
import { test } from 'node:test';
import { uuidv7 } from '../../src/store/uuid7.js';

test("RFC 9562's UUIDv7 example (appendix A.6) comes out bit for bit", () => {
  // 2022-02-22 19:22:22 UTC; rand_a 0xCC3, rand_b 0x18C4DC0C0C07398F; the first random nibble and
  // the top two bits of byte 2 are overwritten by the version and the variant.
  const random = Uint8Array.from([0xfc, 0xc3, 0xd8, 0xc4, 0xdc, 0x0c, 0x0c, 0x07, 0x39, 0x8f]);
  assert.equal(uuidv7(0x017f22e279b0, random), '017f22e2-79b0-7cc3-98c4-dc0c0c07398f');
});

test('ids of later milliseconds sort after earlier ones, and ids of one millisecond differ', () => {
  const ms = Date.UTC(2026, 11, 6, 21, 0, 0);
  const ids = [ms, ms + 1, ms + 256, ms + 65_536, ms + 2 ** 32].map((t) => uuidv7(t));
  assert.deepEqual([...ids].sort(), ids);
  const same = new Set(Array.from({ length: 1000 }, () => uuidv7(ms)));
  assert.equal(same.size, 1000);
  for (const id of same) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

test('a time outside 48-bit milliseconds is refused', () => {
  assert.throws(() => uuidv7(-1), RangeError);
  assert.throws(() => uuidv7(2 ** 48), RangeError);
  assert.throws(() => uuidv7(1.5), RangeError);
  assert.throws(() => uuidv7(1, new Uint8Array(3)), RangeError);
});
