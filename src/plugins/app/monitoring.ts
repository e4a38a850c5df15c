import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { alertThreshold, tierOf, type AlertPolicy, type AlertTier } from '../../clinical/alert-policy.js';
import {
  MIN_DEATHS,
  MIN_SURVIVORS,
  monitoringFigures,
  type Figures,
  type MonitoringFigures,
} from '../../evaluation/monitoring.js';
import type { MonitoringJob } from '../../evaluation/monitoring-worker.js';
import { newWorker, siblingModule } from '../../inference/ts-worker.js';
import { developmentFigures } from '../../evaluation/report.js';
import { ALL, createMonitoringMetrics, type MonitoringMetrics } from '../../observability/monitoring-metrics.js';
import { decideAlert } from '../../store/alert-state.js';
import { monitoringPairs } from '../../store/monitoring.js';
import type { Store } from '../../store/store.js';
import type { AlertingConfig } from './alerting-config.js';
import { MonitoringBusyError, StoreUnavailableError, within } from '../../store/errors.js';

/**
 * Go-live services over the store: the alert policy's decision for each CDS card (tier,
 * re-alert suppression, alerts_total), and live performance against outcomes, for
 * GET /v1/monitoring and as gauges recomputed every MONITORING_INTERVAL_S (never per scrape).
 */

export interface AlertDecision {
  tier: AlertTier;
  suppressed: boolean;
}

export interface Alerting {
  readonly policy: AlertPolicy;
  /** Whether a card for this patient at this probability is shown or suppressed; counted in alerts_total. */
  decide(patientId: string, probability: number, at: Date): Promise<AlertDecision>;
}

export interface MonitoringAnswer extends MonitoringFigures {
  days: number;
  since: string;
  alertThreshold: number | null;
}

export interface Monitoring {
  figures(days: number, now?: Date): Promise<MonitoringAnswer>;
  /** Recomputes the gauges now (the schedule calls it; tests await it). */
  refresh(now?: Date): Promise<void>;
  readonly metrics: MonitoringMetrics;
}

declare module 'fastify' {
  interface FastifyInstance {
    alerting: Alerting;
    monitoring: Monitoring;
  }
}

/** Computations waiting behind the running one at most (GET /v1/monitoring callers and the schedule). */
const MAX_WAITING = 4;

/** A CDS answer waits at most this long for the suppression state; past it the card is shown. */
const ALERT_STATE_TIMEOUT_MS = 1000;
/** GET /v1/monitoring waits at most this long for a store that is still starting. */
const READY_TIMEOUT_MS = 2000;
/** One computation of the figures gets this long in its worker; a worker past it is stopped. */
const FIGURES_TIMEOUT_MS = 120_000;
const WORKER_URL = siblingModule(import.meta.url, '../../evaluation/monitoring-worker');
/** Fewer pairs give no group its minimum of deaths and survivors, so no bootstrap: computed in place. */
const INLINE_MAX_PAIRS = MIN_DEATHS + MIN_SURVIVORS;

/** The figures of `job` computed in a worker thread, off the event loop. */
function figuresInWorker(job: MonitoringJob): Promise<MonitoringFigures> {
  return new Promise((resolve, reject) => {
    const worker = newWorker(WORKER_URL, job);
    const timer = setTimeout(() => {
      reject(new Error(`the monitoring figures took longer than ${FIGURES_TIMEOUT_MS / 1000} s`));
      void worker.terminate();
    }, FIGURES_TIMEOUT_MS);
    worker.once('message', (figures: MonitoringFigures) => {
      clearTimeout(timer);
      resolve(figures);
      void worker.terminate();
    });
    worker.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    // After a message this rejects a settled promise: a no-op.
    worker.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the monitoring worker exited with code ${code}`));
    });
  });
}

export interface MonitoringPluginOptions {
  alerting: AlertingConfig;
  cdsSilent: boolean;
}

function setFigures(m: MonitoringMetrics, labels: { version: string; profile: string }, f: Figures): void {
  const set = (gauge: MonitoringMetrics['auroc'], value: number | null | undefined) => {
    if (value !== null && value !== undefined && Number.isFinite(value)) gauge.set(labels, value);
  };
  set(m.pairs, f.n);
  set(m.deaths, f.deaths);
  set(m.unlabelled, f.unlabelled);
  set(m.auroc, f.auroc);
  set(m.aurocLower, f.aurocCi95?.[0]);
  set(m.aurocUpper, f.aurocCi95?.[1]);
  set(m.calibrationIntercept, f.calibration.interceptInTheLarge);
  set(m.calibrationSlope, f.calibration.slope);
  set(m.observedExpected, f.observedExpected);
  set(m.flaggedShare, f.flaggedShare);
  set(m.sensitivity, f.sensitivity);
  set(m.ppv, f.ppv);
}

const FIGURE_GAUGES = [
  'pairs',
  'deaths',
  'unlabelled',
  'auroc',
  'aurocLower',
  'aurocUpper',
  'calibrationIntercept',
  'calibrationSlope',
  'observedExpected',
  'flaggedShare',
  'sensitivity',
  'ppv',
] as const;

async function monitoringPlugin(app: FastifyInstance, opts: MonitoringPluginOptions): Promise<void> {
  const store: Store = app.store;
  const { policy } = opts.alerting;
  const metrics = createMonitoringMetrics(app.metrics.registry);
  metrics.cdsMode.set({ mode: opts.cdsSilent ? 'silent' : 'cards' }, 1);
  metrics.cdsMode.set({ mode: opts.cdsSilent ? 'cards' : 'silent' }, 0);

  const alerting: Alerting = {
    policy,
    async decide(patientId, probability, at) {
      const tier = tierOf(policy, probability);
      let suppressed = false;
      if (policy.suppression) {
        try {
          suppressed = await within(
            store.ready().then(() =>
              decideAlert(store.client, policy, store.subjectKey(patientId), {
                tier: tier.name,
                probability,
                at: at.getTime(),
              }),
            ),
            ALERT_STATE_TIMEOUT_MS,
            'alert state',
          );
        } catch (error) {
          // A card shown twice is safer than a card lost: with no state, the card is shown.
          app.log.warn(
            { store: store.backend, reason: (error as Error).message },
            'alert state unavailable: card shown',
          );
        }
      }
      metrics.alerts.inc({ tier: tier.name, suppressed: String(suppressed) });
      return { tier, suppressed };
    },
  };

  // One computation at a time: each takes a core for its bootstrap, and reads the store only
  // once the one before has finished (never an answer from before the caller's own writes).
  let queue: Promise<unknown> = Promise.resolve();
  let waiting = 0;
  const compute = async (days: number, now: Date): Promise<MonitoringAnswer> => {
    const since = now.getTime() - days * 86_400_000;
    let read;
    try {
      await within(store.ready(), READY_TIMEOUT_MS, 'store');
      read = await monitoringPairs(store.client, since);
    } catch (error) {
      throw new StoreUnavailableError(`the store did not answer: ${(error as Error).message}`, { cause: error });
    }
    const threshold = alertThreshold(policy);
    return {
      days,
      since: new Date(since).toISOString(),
      alertThreshold: threshold,
      ...(read.pairs.length < INLINE_MAX_PAIRS
        ? monitoringFigures(read.pairs, read.unlabelled, threshold)
        : await figuresInWorker({ ...read, threshold })),
    };
  };

  const monitoring: Monitoring = {
    metrics,
    figures(days, now = new Date()) {
      if (waiting >= MAX_WAITING)
        return Promise.reject(new MonitoringBusyError(`${waiting} computations of the figures are waiting`));
      waiting++;
      const answer = queue.then(() => {
        waiting--;
        return compute(days, now);
      });
      queue = answer.catch(() => undefined);
      return answer;
    },
    async refresh(now = new Date()) {
      const answer = await monitoring.figures(opts.alerting.monitoringDays, now);
      for (const name of FIGURE_GAUGES) metrics[name].reset();
      setFigures(metrics, { version: ALL, profile: ALL }, answer.overall);
      for (const v of answer.byVersion) setFigures(metrics, { version: v.version, profile: ALL }, v);
      for (const p of answer.byProfile) setFigures(metrics, { version: ALL, profile: p.profile }, p);
      metrics.lastRun.set(now.getTime() / 1000);
    },
  };

  const development = () => {
    const model = app.models.active;
    const lower = model ? developmentFigures(model.manifest)?.aurocCi95?.[0] : undefined;
    metrics.developmentAurocLower.reset();
    if (model && lower !== undefined) metrics.developmentAurocLower.set({ version: model.version }, lower);
  };
  development();
  app.models.on('serving', development);

  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let closed = false;
  const tick = () => {
    running = monitoring
      .refresh()
      .catch((error: unknown) =>
        app.log.warn({ store: store.backend, reason: (error as Error).message }, 'monitoring figures not computed'),
      )
      .finally(() => {
        running = undefined;
        if (!closed) timer = setTimeout(tick, opts.alerting.monitoringIntervalMs).unref();
      });
  };
  app.addHook('onReady', async () => {
    timer = setTimeout(tick, 0).unref();
  });
  app.addHook('onClose', async () => {
    closed = true;
    clearTimeout(timer);
    app.models.off('serving', development);
    await running;
  });

  app.decorate('alerting', alerting);
  app.decorate('monitoring', monitoring);
}

export default fp(monitoringPlugin, { name: 'monitoring', dependencies: ['metrics', 'store', 'models'] });
