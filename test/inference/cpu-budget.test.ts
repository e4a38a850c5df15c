import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cgroupCores, coresFromCfs, coresFromCpuMax, usableCores } from '../../src/inference/cpu-budget.js';

/** A fake filesystem: the files a container would show, by path. */
const files =
  (entries: Record<string, string>) =>
  (path: string): string | undefined =>
    entries[path];

test('cgroup v2 cpu.max: quota / period, rounded down, at least one CPU; "max" is no limit', () => {
  assert.equal(coresFromCpuMax('200000 100000\n'), 2);
  assert.equal(coresFromCpuMax('250000 100000'), 2);
  assert.equal(coresFromCpuMax('50000 100000'), 1);
  assert.equal(coresFromCpuMax('max 100000'), undefined);
  assert.equal(coresFromCpuMax(''), undefined);
});

test('cgroup v1 cfs quota and period; -1 is no limit', () => {
  assert.equal(coresFromCfs('400000\n', '100000\n'), 4);
  assert.equal(coresFromCfs('-1\n', '100000\n'), undefined);
});

test('the quota of the process own cgroup, v2 inside a container namespace and v2 by path', () => {
  // docker run --cpus 2: the container's cgroup is the root of its namespace.
  assert.equal(cgroupCores(files({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': '200000 100000\n' })), 2);
  // No namespace: /proc/self/cgroup names the path below the mount.
  assert.equal(
    cgroupCores(
      files({
        '/proc/self/cgroup': '0::/kubepods/pod1/c1\n',
        '/sys/fs/cgroup/kubepods/pod1/c1/cpu.max': '300000 100000\n',
      }),
    ),
    3,
  );
  assert.equal(
    cgroupCores(files({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': 'max 100000\n' })),
    undefined,
  );
});

test('the quota of the process own cgroup, v1 and hybrid layouts, and nothing to read', () => {
  const v1 = '12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n';
  assert.equal(
    cgroupCores(
      files({
        '/proc/self/cgroup': v1,
        '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '150000',
        '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '100000',
      }),
    ),
    1,
  );
  // This development machine: v1 controllers with no quota beside an empty unified hierarchy.
  const hybrid = '1:cpu:/\n2:cpuacct:/\n0::/\n';
  assert.equal(
    cgroupCores(
      files({
        '/proc/self/cgroup': hybrid,
        '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1',
        '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000',
      }),
    ),
    undefined,
  );
  assert.equal(cgroupCores(files({})), undefined);
});

test('usable cores: the smaller of the cores and the quota', () => {
  assert.equal(usableCores(64, 2), 2);
  assert.equal(usableCores(2, 8), 2);
  assert.equal(usableCores(16, undefined), 16);
  assert.equal(usableCores(4, 0), 1);
});
