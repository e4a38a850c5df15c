import { SingleBar } from 'cli-progress';

/**
 * The terminal progress bar: how far through the input (files, or bytes of the input file),
 * records scored and failed, records per second and the ETA. Only on a terminal and without
 * --quiet: a log file or a pipe gets no carriage-return noise.
 */
export interface Progress {
  update(position: number, scored: number, failed: number): void;
  stop(): void;
}

export const silentProgress: Progress = { update() {}, stop() {} };

export function terminalProgress(
  total: number | undefined,
  unit: 'records' | 'bytes',
  stream: NodeJS.WriteStream = process.stderr,
): Progress {
  const started = performance.now();
  const known = total !== undefined && total > 0;
  const bar = new SingleBar({
    format: known
      ? `scoring [{bar}] {percentage}% | {scored} scored, {failed} failed | {rate} records/s | ETA {eta_formatted}${unit === 'bytes' ? '' : ' | {value}/{total} files'}`
      : 'scoring | {scored} scored, {failed} failed | {rate} records/s',
    stream,
    fps: 5,
    hideCursor: true,
    etaBuffer: 50,
    barsize: 30,
  });
  bar.start(known ? total : 1, 0, { scored: 0, failed: 0, rate: 0 });
  return {
    update(position, scored, failed) {
      const seconds = (performance.now() - started) / 1000;
      const rate = seconds > 0 ? Math.round((scored + failed) / seconds) : 0;
      bar.update(known ? Math.min(position, total) : 0, { scored, failed, rate });
    },
    stop() {
      bar.stop();
    },
  };
}
