import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/**
 * The CPUs this process may use: its cores, capped by a container's CPU quota (cgroup v2 `cpu.max`
 * or v1 `cpu.cfs_quota_us`/`cpu.cfs_period_us`), which os.availableParallelism() ignores before
 * libuv 1.49: a 2-CPU container on a 64-core host would otherwise start 64 sessions.
 */

type ReadText = (path: string) => string | undefined;

const readText: ReadText = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

/** cgroup v2 `cpu.max`: "<quota> <period>" in microseconds, or "max <period>" for no limit. */
export function coresFromCpuMax(text: string): number | undefined {
  const [quota, period] = text.trim().split(/\s+/);
  if (quota === undefined || quota === 'max') return undefined;
  return coresFromQuota(Number(quota), Number(period ?? 100_000));
}

/** cgroup v1 `cpu.cfs_quota_us` (-1: no limit) and `cpu.cfs_period_us`. */
export function coresFromCfs(quotaText: string, periodText: string): number | undefined {
  return coresFromQuota(Number(quotaText.trim()), Number(periodText.trim()));
}

function coresFromQuota(quota: number, period: number): number | undefined {
  if (!Number.isFinite(quota) || !Number.isFinite(period) || quota <= 0 || period <= 0) return undefined;
  return Math.max(1, Math.floor(quota / period));
}

/**
 * The quota of this process's own cgroup, or undefined when there is none or it cannot be
 * read. Inside a container the cgroup namespace makes its cgroup the root of /sys/fs/cgroup;
 * outside one, /proc/self/cgroup names the path below it.
 */
export function cgroupCores(read: ReadText = readText): number | undefined {
  const membership = read('/proc/self/cgroup') ?? '';
  for (const line of membership.split('\n')) {
    const [, controllers, path] = line.split(':');
    if (path === undefined) continue;
    const dir = path === '/' ? '' : path;
    if (controllers === '') {
      // cgroup v2 (unified): "0::<path>"
      for (const file of [`/sys/fs/cgroup${dir}/cpu.max`, '/sys/fs/cgroup/cpu.max']) {
        const text = read(file);
        if (text !== undefined) return coresFromCpuMax(text);
      }
    } else if (controllers?.split(',').includes('cpu')) {
      for (const root of [
        `/sys/fs/cgroup/${controllers}${dir}`,
        `/sys/fs/cgroup/${controllers}`,
        '/sys/fs/cgroup/cpu',
      ]) {
        const quota = read(`${root}/cpu.cfs_quota_us`);
        const period = read(`${root}/cpu.cfs_period_us`);
        if (quota !== undefined && period !== undefined) return coresFromCfs(quota, period);
      }
    }
  }
  return undefined;
}

/** availableParallelism() capped by the cgroup CPU quota. */
export function usableCores(cores: number = availableParallelism(), quota: number | undefined = cgroupCores()): number {
  return quota === undefined ? cores : Math.max(1, Math.min(cores, quota));
}
