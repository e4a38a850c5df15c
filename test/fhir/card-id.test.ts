import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { cardIds } from '../../src/fhir/card-id.js';

const KEY = 'a-test-key-of-at-least-32-characters!';

describe('CDS card uuids', () => {
  test('are RFC 9562 UUIDs of version 8 and variant 10, all different', () => {
    const ids = cardIds(KEY);
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const uuid = ids.issue();
      // RFC 9562 section 4: the version is the 13th hex digit; the variant's top bits 10 make the 17th 8, 9, a or b.
      assert.match(uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      seen.add(uuid);
    }
    assert.equal(seen.size, 200);
  });

  test('verify under the same key only, and not after any change of one hex digit', () => {
    const uuid = cardIds(KEY).issue();
    assert.equal(cardIds(KEY).verify(uuid), true);
    assert.equal(cardIds(KEY).verify(uuid.toUpperCase()), true);
    assert.equal(cardIds(`${KEY}x`).verify(uuid), false);
    assert.equal(cardIds(undefined).verify(uuid), false);
    for (let i = 0; i < uuid.length; i++) {
      if (uuid[i] === '-') continue;
      const changed = `${uuid.slice(0, i)}${uuid[i] === '0' ? '1' : '0'}${uuid.slice(i + 1)}`;
      assert.equal(cardIds(KEY).verify(changed), false, changed);
    }
    assert.equal(cardIds(KEY).verify(randomUUID()), false);
    assert.equal(cardIds(KEY).verify('not-a-uuid'), false);
  });
});
