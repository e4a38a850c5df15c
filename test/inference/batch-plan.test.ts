import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { planBatch } from '../../src/inference/batch-plan.js';

const asObject = (m: Map<number, number>): Record<number, number> => Object.fromEntries(m);

describe('planBatch', () => {
  test('takes the whole queue when it fits in one batch', () => {
    assert.deepEqual(
      asObject(
        planBatch(
          [
            [2, 3],
            [48, 1],
          ],
          48,
          8,
        ),
      ),
      { 2: 3, 48: 1 },
    );
  });

  test('groups short stays together when the oldest stay is short', () => {
    // 4 stays of 2 h, 4 of 40 h, batch of 4, oldest is 2 h: the four 2 h stays, no padding.
    assert.deepEqual(
      asObject(
        planBatch(
          [
            [2, 4],
            [40, 4],
          ],
          2,
          4,
        ),
      ),
      { 2: 4 },
    );
  });

  test('groups long stays together when the oldest stay is long', () => {
    assert.deepEqual(
      asObject(
        planBatch(
          [
            [2, 4],
            [40, 4],
          ],
          40,
          4,
        ),
      ),
      { 40: 4 },
    );
  });

  test('picks the least-padded window that still holds the oldest stay', () => {
    // Sorted lengths: 1 1 10 11 12 30, batch 3, oldest has length 10 (position 2).
    // Windows holding position 2: [1 1 10] pads 18, [1 10 11] pads 11, [10 11 12] pads 3.
    assert.deepEqual(
      asObject(
        planBatch(
          [
            [1, 2],
            [10, 1],
            [11, 1],
            [12, 1],
            [30, 1],
          ],
          10,
          3,
        ),
      ),
      { 10: 1, 11: 1, 12: 1 },
    );
  });

  test('never leaves the oldest stay out, even when a better-fitting batch exists elsewhere', () => {
    // Eight 5 h stays fit perfectly, but the oldest is 48 h: it must be in the batch.
    const plan = planBatch(
      [
        [5, 8],
        [48, 1],
      ],
      48,
      4,
    );
    assert.equal(plan.get(48), 1);
    assert.equal(
      [...plan.values()].reduce((a, b) => a + b, 0),
      4,
    );
  });

  test('refuses an oldest length that is not queued', () => {
    assert.throws(() => planBatch([[3, 5]], 4, 2), RangeError);
  });
});
