import { Counter, Gauge, type Registry } from 'prom-client';
import type { PredictionResult } from '../clinical/types.js';
import { insertPredictions, type PredictionRow } from './predictions.js';
import type { Store, StoreLog } from './store.js';
import { uuidv7 } from './uuid7.js';

/**
 * Records every scored result in the predictions table, off the request path: scored() only
 * appends to a bounded in-memory buffer; a writer drains it in batches, one transaction each,
 * retrying with backoff while the store is slow or down. A full buffer drops the new row and
 * counts it (prediction_store_dropped_total and a warn line without patient data).
 */

/** What the scoring core reports (src/scoring/observer.ts's ScoredEvent; the store sits below scoring). */
export interface ScoredPrediction {
  route: string;
  id?: string;
  result: PredictionResult;
  model: { name: string; version: string };
  at: Date;
  silent?: boolean;
}

export interface RecorderMetrics {
  dropped: Counter;
  written: Counter;
  failures: Counter;
  buffered: Gauge;
}

export function recorderMetrics(registry: Registry): RecorderMetrics {
  const registers = [registry];
  return {
    dropped: new Counter({
      name: 'prediction_store_dropped_total',
      help: 'Scored results not recorded: the write buffer was full, or the store was still down at shutdown',
      registers,
    }),
    written: new Counter({
      name: 'prediction_store_written_total',
      help: 'Scored results written to the prediction store',
      registers,
    }),
    failures: new Counter({
      name: 'prediction_store_write_failures_total',
      help: 'Batch writes to the prediction store that failed (each is retried)',
      registers,
    }),
    buffered: new Gauge({
      name: 'prediction_store_buffered_rows',
      help: 'Scored results waiting to be written to the prediction store',
      registers,
    }),
  };
}

export interface RecorderOptions {
  store: Pick<Store, 'client' | 'subjectKey' | 'ready' | 'report'>;
  /** The alert tier of a probability (the alert policy's; by default the RISK_*_THRESHOLD bands). */
  tierOf: (probability: number) => string;
  /** Rows held at most while waiting to be written. */
  bufferRows: number;
  /** Rows per transaction. */
  batchRows: number;
  metrics: RecorderMetrics;
  log?: StoreLog;
  /** First retry delay after a failed write, doubled up to maxRetryMs. */
  retryMs?: number;
  maxRetryMs?: number;
  /** Milliseconds between two warn lines about dropped rows. */
  dropLogIntervalMs?: number;
}

export class PredictionRecorder {
  readonly #o: Required<Omit<RecorderOptions, 'log'>> & { log: StoreLog | undefined };
  #rows: PredictionRow[] = [];
  #head = 0;
  #writing: Promise<void> | undefined;
  #closed = false;
  #stopped = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #wakeRetry: (() => void) | undefined;
  #droppedSinceLog = 0;
  #lastDropLog = -Infinity;

  constructor(options: RecorderOptions) {
    this.#o = { retryMs: 100, maxRetryMs: 10_000, dropLogIntervalMs: 10_000, ...options, log: options.log };
  }

  /** Rows buffered, not yet written. */
  get pending(): number {
    return this.#rows.length - this.#head;
  }

  /** The ScoringObserver hook: synchronous, never throws for a full or failing store. */
  scored(event: ScoredPrediction): void {
    if (this.#closed) return;
    if (this.pending >= this.#o.bufferRows) {
      this.#drop(1, 'the prediction store buffer is full: results dropped');
      return;
    }
    const { result } = event;
    this.#rows.push({
      // Time-ordered: the primary-key index is appended to rather than written at random pages.
      id: uuidv7(),
      at: event.at.getTime(),
      subjectKey: event.id === undefined ? null : this.#o.store.subjectKey(event.id),
      route: event.route,
      modelName: event.model.name,
      modelVersion: event.model.version,
      probability: result.probability,
      inputProfile: result.inputProfile?.scenario ?? null,
      hoursUsed: result.hoursUsed,
      tier: this.#o.tierOf(result.probability),
      silent: event.silent === true,
    });
    this.#o.metrics.buffered.set(this.pending);
    this.#writing ??= this.#drain().finally(() => (this.#writing = undefined));
  }

  /** Resolves when everything buffered now has been written (or the recorder closed). */
  async flushed(): Promise<void> {
    while (this.#writing) await this.#writing;
  }

  /**
   * Stops taking rows and writes what is buffered, waiting at most `graceMs` for a store that
   * is down; rows still unwritten then are counted as dropped. Returns how many were lost.
   */
  async close(graceMs: number): Promise<number> {
    if (this.#closed) return 0;
    this.#closed = true;
    // Retry at once rather than after the current backoff.
    clearTimeout(this.#retryTimer);
    this.#wakeRetry?.();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
    await Promise.race([this.flushed(), deadline]);
    clearTimeout(timer);
    // A batch still in flight now is counted lost even if it commits later: over, never under.
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    this.#wakeRetry?.();
    const lost = this.pending;
    if (lost > 0) this.#drop(lost, 'the prediction store was down at shutdown: results dropped', true);
    this.#rows = [];
    this.#head = 0;
    this.#o.metrics.buffered.set(0);
    return lost;
  }

  async #drain(): Promise<void> {
    try {
      await this.#o.store.ready();
    } catch {
      return; // closed before the store was ever ready: close() counts the rows
    }
    let delay = this.#o.retryMs;
    while (this.pending > 0 && !this.#stopped) {
      const batch = this.#rows.slice(this.#head, this.#head + this.#o.batchRows);
      try {
        await this.#o.store.client.transaction((tx) => insertPredictions(tx, batch));
      } catch (error) {
        this.#o.metrics.failures.inc();
        this.#o.store.report(false);
        this.#o.log?.warn(
          { rows: batch.length, pending: this.pending, retryInMs: delay, error: (error as Error).message },
          'prediction store write failed: retrying',
        );
        await this.#sleep(delay);
        delay = Math.min(delay * 2, this.#o.maxRetryMs);
        continue;
      }
      if (this.#stopped) return;
      delay = this.#o.retryMs;
      this.#o.store.report(true);
      this.#head += batch.length;
      this.#o.metrics.written.inc(batch.length);
      // Compact once the written prefix is most of the array: amortised O(1) per row.
      if (this.#head > 1024 && this.#head * 2 > this.#rows.length) {
        this.#rows = this.#rows.slice(this.#head);
        this.#head = 0;
      }
      this.#o.metrics.buffered.set(this.pending);
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wakeRetry = () => {
        this.#wakeRetry = undefined;
        resolve();
      };
      this.#retryTimer = setTimeout(() => this.#wakeRetry?.(), ms);
    });
  }

  #drop(rows: number, message: string, force = false): void {
    this.#o.metrics.dropped.inc(rows);
    this.#droppedSinceLog += rows;
    const now = performance.now();
    if (force || now - this.#lastDropLog >= this.#o.dropLogIntervalMs) {
      this.#o.log?.warn({ dropped: this.#droppedSinceLog, bufferRows: this.#o.bufferRows }, message);
      this.#droppedSinceLog = 0;
      this.#lastDropLog = now;
    }
  }
}
