import type { Metrics } from '../observability/metrics.js';
import type { ModelRef, ScoredEvent, ScoringObserver, UnscoredEvent } from './observer.js';

/**
 * The scoring core's events as Prometheus metrics, the same for every entry point:
 * predictions_total by outcome (scored, invalid, failed) and prediction_probability, labelled by
 * model version only (never by route, id or value).
 */

type Outcome = 'scored' | UnscoredEvent['outcome'];

interface Children {
  probability?: ReturnType<Metrics['probability']['labels']>;
  outcomes: Partial<Record<Outcome, ReturnType<Metrics['predictions']['labels']>>>;
}

export function metricsObserver(metrics: Metrics): ScoringObserver {
  // The labelled children once per model version: labels(...) hashes its labels on every call.
  // A child is made at its first event, so a series appears only once it has counted something.
  const byVersion = new Map<string, Children>();
  let lastRef: ModelRef | undefined;
  let last: Children | undefined;
  const childrenOf = (ref: ModelRef): Children => {
    if (ref === lastRef && last) return last;
    const key = `${ref.name}\u0000${ref.version}`;
    let children = byVersion.get(key);
    if (!children) {
      children = { outcomes: {} };
      byVersion.set(key, children);
    }
    lastRef = ref;
    last = children;
    return children;
  };
  const count = (ref: ModelRef, children: Children, outcome: Outcome): void => {
    const child = (children.outcomes[outcome] ??= metrics.predictions.labels({
      model: ref.name,
      version: ref.version,
      outcome,
    }));
    child.inc();
  };
  return {
    scored(event: ScoredEvent): void {
      const children = childrenOf(event.model);
      children.probability ??= metrics.probability.labels({ model: event.model.name, version: event.model.version });
      children.probability.observe(event.result.probability);
      count(event.model, children, 'scored');
    },
    unscored(event: UnscoredEvent): void {
      count(event.model, childrenOf(event.model), event.outcome);
    },
  };
}

/** predictions_total by outcome, summed over model versions: what a CLI run's summary reports. */
export async function predictionCounts(metrics: Metrics): Promise<Record<Outcome, number>> {
  const counts: Record<Outcome, number> = { scored: 0, invalid: 0, failed: 0 };
  for (const { labels, value } of (await metrics.predictions.get()).values) {
    const outcome = labels.outcome;
    if (outcome === 'scored' || outcome === 'invalid' || outcome === 'failed') counts[outcome] += value;
  }
  return counts;
}
