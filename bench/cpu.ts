import { readFileSync } from 'node:fs';

/**
 * Milliseconds the calling thread has run on a CPU, from Linux's /proc/thread-self/schedstat (its
 * first field, in nanoseconds). Unlike wall time it is not stretched when other jobs share the
 * cores, so two versions can be compared on a busy machine.
 */
export function threadCpuMs(): number {
  return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;
}
