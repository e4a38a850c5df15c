import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { metricsObserver } from '../../scoring/metrics-observer.js';
import { ScoringObservers } from '../../scoring/observer.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Told of every patient the scoring core handles, on every route; add an observer with `add`. */
    observers: ScoringObservers;
  }
}

/**
 * Decorates `app.observers` with the metrics observer registered; other services (the
 * prediction store's recorder) add theirs. An observer that throws is logged, never fatal.
 */
export default fp(
  async (app: FastifyInstance) => {
    const observers = new ScoringObservers((error) =>
      app.log.error({ reason: error instanceof Error ? error.message : String(error) }, 'a scoring observer failed'),
    );
    observers.add(metricsObserver(app.metrics));
    app.decorate('observers', observers);
  },
  { name: 'scoring-observers', dependencies: ['metrics'] },
);
