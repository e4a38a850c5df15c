import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAlertPolicy, tierOf } from '../../src/clinical/alert-policy.js';
import { decideAlert, lastAlert } from '../../src/store/alert-state.js';
import { openStore } from '../../src/store/store.js';
import { storeConfig } from './backends.js';
import { BACKENDS, openBackend } from './backends.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 1);

const policy = parseAlertPolicy(
  `
tiers:
  - { name: low, from: 0, indicator: info }
  - { name: moderate, from: 0.2, indicator: warning }
  - { name: high, from: 0.5, indicator: critical }
suppression: { hours: 6, minRisePoints: 10 }
`,
  'test policy',
);

/** [hours after T0, probability, shown?]: the expected decisions of the policy above, worked out by hand. */
const SEQUENCE: Array<[number, number, boolean]> = [
  [0, 0.25, true], // first card (moderate)
  [1, 0.3, false], // same tier, +5 points
  [2, 0.34, false], // same tier, +9 points over the last card shown (0.25)
  [3, 0.35, true], // +10 points: shown, now the reference
  [4, 0.1, false], // lower tier within 6 h of the 3 h card
  [5, 0.55, true], // higher tier
  [6, 0.52, false], // same tier (high), lower risk
  [11.5, 0.45, true], // 6.5 h after the 5 h card: window over
  [12, 0.05, false], // lower tier within 6 h of 11.5 h
];

for (const { backend, skip } of BACKENDS) {
  describe(`alert suppression state on ${backend}`, { skip }, () => {
    it('shows and suppresses cards of one patient as the policy says, other patients apart', async (t) => {
      const client = await openBackend(t, backend);
      const shown: boolean[] = [];
      for (const [hours, probability] of SEQUENCE) {
        const suppressed = await decideAlert(client, policy, 'patient-a', {
          tier: tierOf(policy, probability).name,
          probability,
          at: T0 + hours * HOUR,
        });
        shown.push(!suppressed);
        // Another patient at the same moment is never suppressed by patient-a's cards.
        const other = await decideAlert(client, policy, `patient-${hours}`, { tier: 'low', probability: 0.01, at: T0 });
        assert.equal(other, false);
      }
      assert.deepEqual(
        shown,
        SEQUENCE.map(([, , s]) => s),
      );
      assert.deepEqual(await lastAlert(client, 'patient-a'), {
        tier: 'moderate',
        probability: 0.45,
        at: T0 + 11.5 * HOUR,
      });
    });

    it('lets only one of two simultaneous decisions for a patient show a card', async (t) => {
      const client = await openBackend(t, backend);
      const next = { tier: 'moderate' as const, probability: 0.3, at: T0 };
      const results = await Promise.all([
        decideAlert(client, policy, 'p', next),
        decideAlert(client, policy, 'p', { ...next, at: T0 + 1 }),
      ]);
      assert.deepEqual(results.sort(), [false, true]);
    });
  });
}

describe('alert suppression state across a restart', () => {
  it('still suppresses after the store is closed and opened again', async (t) => {
    const config = await storeConfig(t, 'sqlite');
    const first = openStore(config);
    await first.ready();
    assert.equal(await decideAlert(first.client, policy, 'p', { tier: 'moderate', probability: 0.3, at: T0 }), false);
    await first.close();
    const second = openStore(config);
    t.after(() => second.close());
    await second.ready();
    assert.equal(
      await decideAlert(second.client, policy, 'p', { tier: 'moderate', probability: 0.31, at: T0 + HOUR }),
      true,
    );
  });
});
