/**
 * Which queued stays go into the next batch: an RNN batch runs to its longest stay, so similar
 * lengths waste less work. Of the length-ordered windows of maxBatchSize stays that hold the
 * oldest stay (so none waits forever), the one with the least padding.
 */

/** Queued stays counted by length, ascending by length. */
export type LengthCounts = ReadonlyArray<readonly [length: number, count: number]>;

/**
 * Returns how many stays of each length to take. `oldestLength` must be a length present
 * in `counts`; the oldest stay of that length is taken.
 */
export function planBatch(counts: LengthCounts, oldestLength: number, maxBatchSize: number): Map<number, number> {
  const total = counts.reduce((sum, [, c]) => sum + c, 0);
  const take = new Map<number, number>();
  if (total <= maxBatchSize) {
    for (const [len, c] of counts) if (c > 0) take.set(len, c);
    return take;
  }
  // Position (in length order) of the first stay of the oldest stay's length; the oldest
  // stay of a length is the first one taken from it.
  let oldestAt = -1;
  let position = 0;
  for (const [len, c] of counts) {
    if (len === oldestLength) {
      oldestAt = position;
      break;
    }
    position += c;
  }
  if (oldestAt < 0) throw new RangeError(`no queued stay has the oldest stay's length ${oldestLength}`);

  // The lengths in sorted order with prefix sums; the queue is bounded so this stays small.
  const sorted = new Int32Array(total);
  let k = 0;
  for (const [len, c] of counts) for (let i = 0; i < c; i++) sorted[k++] = len;
  const prefix = new Float64Array(total + 1);
  for (let i = 0; i < total; i++) prefix[i + 1] = (prefix[i] as number) + (sorted[i] as number);

  let bestStart = -1;
  let bestPadding = Infinity;
  const first = Math.max(0, oldestAt - maxBatchSize + 1);
  const last = Math.min(oldestAt, total - maxBatchSize);
  for (let s = first; s <= last; s++) {
    const longest = sorted[s + maxBatchSize - 1] as number;
    const padding = maxBatchSize * longest - ((prefix[s + maxBatchSize] as number) - (prefix[s] as number));
    if (padding < bestPadding) {
      bestPadding = padding;
      bestStart = s;
    }
  }

  const end = bestStart + maxBatchSize;
  position = 0;
  for (const [len, c] of counts) {
    const from = Math.max(position, bestStart);
    const to = Math.min(position + c, end);
    if (to > from) take.set(len, to - from);
    position += c;
  }
  return take;
}
