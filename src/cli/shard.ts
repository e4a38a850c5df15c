import { createHash } from 'node:crypto';

/**
 * `--shard i/N` (0-based, as Kubernetes' JOB_COMPLETION_INDEX): the records whose id hashes to
 * i modulo N, so every input form and order gives the same shards and together they cover each
 * id once.
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

export function shardOf(id: string, count: number): number {
  return createHash('sha256').update(id, 'utf8').digest().readUInt32BE(0) % count;
}

export function inShard(shard: Shard, id: string): boolean {
  return shard.count === 1 || shardOf(id, shard.count) === shard.index;
}
