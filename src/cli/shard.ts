/**
 * `--shard i/N`: this process scores the records whose position in the input (0-based, in
 * the reader's deterministic order) is i modulo N. Indexes are 0-based like Kubernetes
 * indexed jobs' JOB_COMPLETION_INDEX, so `--shard $JOB_COMPLETION_INDEX/N` works as is.
 * Every shard reads the same input, so the N shards together cover each record exactly once.
 */
export interface Shard {
  index: number;
  count: number;
}

export const ALL: Shard = { index: 0, count: 1 };

export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!m) throw new Error(`--shard must look like i/N (e.g. 0/4), got "${text}"`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1) throw new Error('--shard: N must be at least 1');
  if (index >= count) throw new Error(`--shard: i is 0-based and must be below N (0..${count - 1}), got ${index}`);
  return { index, count };
}

export function inShard(shard: Shard, position: number): boolean {
  return position % shard.count === shard.index;
}
