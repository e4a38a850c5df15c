import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { StoreConfig } from '../../store/config.js';
import { PredictionRecorder, recorderMetrics } from '../../store/recorder.js';
import { startRetention } from '../../store/retention.js';
import { openStore, type Store } from '../../store/store.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The prediction store: SQL client, subject keys, health (src/store/store.ts). */
    store: Store;
    /** Writes every scored result to the store, off the request path. */
    recorder: PredictionRecorder;
  }
}

export interface StorePluginOptions {
  config: StoreConfig;
  /** SHUTDOWN_GRACE_MS: shutdown waits at most half of it for buffered results to reach a store that is down. */
  graceMs: number;
  /** A store opened by the caller (tests); otherwise one is opened from config. */
  store?: Store;
  /** The alert tier recorded with a result (the alert policy's, as on the CDS card). */
  tierOf: (probability: number) => string;
}

/**
 * Opens the prediction store and registers its recorder as a scoring observer, so results of
 * every route are recorded. SQLite is migrated before the app is ready; a PostgreSQL that is
 * down at start is retried in the background while scoring runs (results wait in the buffer).
 * Registered before the models plugin: onClose hooks run last-registered first, so the batcher
 * drains (its results still recorded) before the recorder flushes.
 */
export default fp(
  async (app: FastifyInstance, opts: StorePluginOptions) => {
    const log = app.log.child({ component: 'store' });
    const store = opts.store ?? openStore(opts.config, { log });
    if (store.backend === 'sqlite') await store.ready();
    const recorder = new PredictionRecorder({
      store,
      tierOf: opts.tierOf,
      bufferRows: opts.config.bufferRows,
      batchRows: opts.config.batchRows,
      metrics: recorderMetrics(app.metrics.registry),
      log,
    });
    app.observers.add(recorder);
    const stopRetention = startRetention(store.client, {
      days: opts.config.retentionDays,
      ready: () => store.ready(),
      log,
    });
    app.decorate('store', store);
    app.decorate('recorder', recorder);
    app.addHook('onClose', async () => {
      const retentionStopped = stopRetention();
      // Half: the grace period also covers in-flight requests and the batcher's drain before this hook.
      const lost = await recorder.close(opts.graceMs / 2);
      log.info({ lost }, 'prediction recorder flushed');
      // Closed first: a sweep still waiting for a store that never became ready ends with it.
      await store.close();
      await retentionStopped;
    });
  },
  { name: 'store', dependencies: ['metrics', 'scoring-observers'] },
);
