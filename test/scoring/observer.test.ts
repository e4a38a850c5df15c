import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PredictionResult } from '../../src/clinical/types.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { metricsObserver, predictionCounts } from '../../src/scoring/metrics-observer.js';
import {
  reportAll,
  ScoringObservers,
  type ScoredEvent,
  type ScoringObserver,
  type UnscoredEvent,
} from '../../src/scoring/observer.js';

const MODEL = { name: 'icu-mortality', version: '9.9.9' };

function result(probability: number, id?: string): PredictionResult {
  return {
    ...(id === undefined ? {} : { id }),
    probability,
    model: MODEL,
    hoursUsed: 1,
    truncated: false,
    missingThroughout: [],
  };
}

function recorder(): ScoringObserver & { events: Array<ScoredEvent | UnscoredEvent> } {
  const events: Array<ScoredEvent | UnscoredEvent> = [];
  return { events, scored: (e) => events.push(e), unscored: (e) => events.push(e) };
}

test('every registered observer sees every outcome in order; a removed one sees no more', () => {
  const observers = new ScoringObservers(() => assert.fail('no observer throws here'));
  const first = recorder();
  const second = recorder();
  observers.add(first);
  const removeSecond = observers.add(second);
  reportAll({ to: observers, route: 'stream' }, MODEL, [result(0.25, 'a'), 'invalid', result(0.5), 'failed']);
  removeSecond();
  reportAll({ to: observers, route: 'cli' }, MODEL, ['invalid']);

  const summary = (events: Array<ScoredEvent | UnscoredEvent>): string[] =>
    events.map((e) =>
      'result' in e ? `${e.route} scored ${e.id ?? '-'} ${e.result.probability}` : `${e.route} ${e.outcome}`,
    );
  assert.deepEqual(summary(first.events), [
    'stream scored a 0.25',
    'stream invalid',
    'stream scored - 0.5',
    'stream failed',
    'cli invalid',
  ]);
  assert.deepEqual(summary(second.events), summary(first.events).slice(0, 4));
  // One call's events share one time, and name the model they were scored by.
  assert.equal(new Set(first.events.slice(0, 4).map((e) => e.at)).size, 1);
  assert.deepEqual(first.events[0]?.model, MODEL);
  assert.equal('silent' in (first.events[0] as ScoredEvent), false);
});

test('a silent call marks its results silent', () => {
  const observers = new ScoringObservers(() => undefined);
  const seen = recorder();
  observers.add(seen);
  reportAll({ to: observers, route: 'cds', silent: true }, MODEL, [result(0.1)]);
  assert.equal((seen.events[0] as ScoredEvent).silent, true);
});

test('an observer that throws is reported and the others still see the event', () => {
  const errors: unknown[] = [];
  const observers = new ScoringObservers((error) => errors.push(error));
  observers.add({
    scored() {
      throw new Error('store down');
    },
  });
  const after = recorder();
  observers.add(after);
  reportAll({ to: observers, route: 'predict' }, MODEL, [result(0.3), 'invalid']);
  assert.equal(after.events.length, 2);
  assert.deepEqual(
    errors.map((e) => (e as Error).message),
    ['store down'],
  );
});

test('the metrics observer counts outcomes per model version and observes probabilities', async () => {
  const metrics = createMetrics({ defaultMetrics: false });
  const observers = new ScoringObservers(() => assert.fail('the metrics observer does not throw'));
  observers.add(metricsObserver(metrics));
  const other = { name: 'icu-mortality', version: '9.9.10' };
  reportAll({ to: observers, route: 'predict' }, MODEL, [result(0.03), result(0.97), 'invalid', 'failed']);
  reportAll({ to: observers, route: 'stream' }, other, [result(0.5), 'invalid', 'invalid']);

  const text = await metrics.registry.metrics();
  const count = (version: string, outcome: string): string | undefined =>
    new RegExp(
      `^predictions_total\\{model="icu-mortality",version="${version.replaceAll('.', '\\.')}",outcome="${outcome}"\\} (\\d+)$`,
      'm',
    ).exec(text)?.[1];
  assert.equal(count('9.9.9', 'scored'), '2');
  assert.equal(count('9.9.9', 'invalid'), '1');
  assert.equal(count('9.9.9', 'failed'), '1');
  assert.equal(count('9.9.10', 'scored'), '1');
  assert.equal(count('9.9.10', 'invalid'), '2');
  // No series for an outcome that never happened.
  assert.equal(count('9.9.10', 'failed'), undefined);
  // 0.03 falls in the (0.02, 0.05] bucket, 0.97 in (0.95, 0.99]: cumulative counts 0, 1 ... 1, 2.
  const bucket = (le: string): string | undefined =>
    new RegExp(
      `^prediction_probability_bucket\\{le="${le}",model="icu-mortality",version="9\\.9\\.9"\\} (\\d+)$`,
      'm',
    ).exec(text)?.[1];
  assert.equal(bucket('0.02'), '0');
  assert.equal(bucket('0.05'), '1');
  assert.equal(bucket('0.95'), '1');
  assert.equal(bucket('0.99'), '2');
  assert.deepEqual(await predictionCounts(metrics), { scored: 3, invalid: 3, failed: 1 });
});
