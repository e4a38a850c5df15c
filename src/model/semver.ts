/**
 * Ordering of version directory names by semantic version (major.minor.patch, a
 * pre-release sorts before its release). Names that are not semver sort before all that are,
 * so `latest` never picks a stray folder.
 */
const SEMVER = /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

/**
 * A version folder's name: letters and digits joined by single ".", "+", "_" or "-", so it can
 * never be a path ("..", "/x", "a/b") and is safe as a metric label.
 */
export const VERSION_NAME = /^[0-9A-Za-z]+(?:[.+_-][0-9A-Za-z]+)*$/;

export function isVersionName(version: string): boolean {
  return version.length <= 64 && VERSION_NAME.test(version);
}

export function isSemver(version: string): boolean {
  return SEMVER.test(version);
}

export function compareSemver(a: string, b: string): number {
  const ma = SEMVER.exec(a);
  const mb = SEMVER.exec(b);
  if (!ma || !mb) return (ma ? 1 : 0) - (mb ? 1 : 0) || a.localeCompare(b);
  for (let i = 1; i <= 3; i++) {
    const d = Number(ma[i]) - Number(mb[i]);
    if (d !== 0) return d;
  }
  const pa = ma[4];
  const pb = mb[4];
  if (pa === undefined || pb === undefined) return (pa === undefined ? 1 : 0) - (pb === undefined ? 1 : 0);
  const ia = pa.split('.');
  const ib = pb.split('.');
  for (let i = 0; i < Math.max(ia.length, ib.length); i++) {
    const x = ia[i];
    const y = ib[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const nx = /^\d+$/.test(x);
    const ny = /^\d+$/.test(y);
    if (nx && ny) {
      const d = Number(x) - Number(y);
      if (d !== 0) return d;
    } else if (nx !== ny) {
      return nx ? -1 : 1;
    } else if (x !== y) {
      return x < y ? -1 : 1;
    }
  }
  return 0;
}
