import type { PredictionResult } from '../clinical/types.js';

/**
 * What the scoring core tells the rest of the service about each patient it handled: metrics
 * are one observer, the prediction store's recorder another. Observers are called
 * synchronously on the scoring path, so they only record (a counter, a queue) and never block.
 */

/** The entry point a patient came through; the same names on every observer. */
export type ScoringRoute = 'predict' | 'stream' | 'fhir' | 'cds' | 'cli' | 'encounter';

export interface ModelRef {
  name: string;
  version: string;
}

/** One result the core produced. */
export interface ScoredEvent {
  route: ScoringRoute;
  /** The caller's patient or encounter id, raw: never log it or put it in a label. */
  id?: string;
  result: PredictionResult;
  model: ModelRef;
  at: Date;
  /** Scored but not shown to a clinician (the alert policy's silent mode). */
  silent?: boolean;
}

/**
 * One patient that got no result: `invalid` when its input could not be read or validated,
 * `failed` when it was valid but the model gave no usable probability for it (an output that is
 * not a probability, or an engine failure on its batch).
 */
export interface UnscoredEvent {
  route: ScoringRoute;
  outcome: 'invalid' | 'failed';
  model: ModelRef;
  at: Date;
}

export interface ScoringObserver {
  scored(event: ScoredEvent): void;
  unscored?(event: UnscoredEvent): void;
}

/** Where a core call reports: the observers, the entry point it reports under, whether its results are silent. */
export interface Observe {
  to: ScoringObserver;
  route: ScoringRoute;
  silent?: boolean;
}

/** One patient's outcome as observers see it: its result, or why it has none. */
export type Observed = PredictionResult | UnscoredEvent['outcome'];

/** The outcomes of one core call, in order, to `observe`'s observers, all at one time. */
export function reportAll(observe: Observe, model: ModelRef, outcomes: Iterable<Observed>): void {
  const { to, route } = observe;
  const at = new Date();
  for (const outcome of outcomes) {
    if (typeof outcome === 'string') {
      to.unscored?.({ route, outcome, model, at });
      continue;
    }
    // Built field by field, not spread: this runs once per stay on the main thread.
    const event: ScoredEvent = { route, result: outcome, model, at };
    if (outcome.id !== undefined) event.id = outcome.id;
    if (observe.silent !== undefined) event.silent = observe.silent;
    to.scored(event);
  }
}

/**
 * The registered observers, called in registration order for every event. One observer that
 * throws is reported to `onError` and does not stop the others nor fail the scoring: a patient's
 * result never depends on a metric or a store being up.
 */
export class ScoringObservers implements ScoringObserver {
  readonly #observers: ScoringObserver[] = [];
  readonly #onError: (error: unknown) => void;

  constructor(onError: (error: unknown) => void) {
    this.#onError = onError;
  }

  /** Registers `observer`; the returned function removes it. */
  add(observer: ScoringObserver): () => void {
    this.#observers.push(observer);
    return () => {
      const at = this.#observers.indexOf(observer);
      if (at >= 0) this.#observers.splice(at, 1);
    };
  }

  scored(event: ScoredEvent): void {
    for (const observer of this.#observers) {
      try {
        observer.scored(event);
      } catch (error) {
        this.#onError(error);
      }
    }
  }

  unscored(event: UnscoredEvent): void {
    for (const observer of this.#observers) {
      try {
        observer.unscored?.(event);
      } catch (error) {
        this.#onError(error);
      }
    }
  }
}
