import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  alertThreshold,
  defaultAlertPolicy,
  isSuppressed,
  parseAlertPolicy,
  tierOf,
  type AlertPolicy,
} from '../../src/clinical/alert-policy.js';
import { riskBand } from '../../src/fhir/thresholds.js';

const HOUR = 3_600_000;

const POLICY_YAML = `
tiers:
  - { name: low, from: 0, indicator: info }
  - { name: moderate, from: 0.2, indicator: warning }
  - { name: high, from: 0.5, indicator: critical }
suppression:
  hours: 8
  minRisePoints: 10
`;

describe('alert policy file', () => {
  it('reads YAML and the same policy written as JSON', () => {
    const yaml = parseAlertPolicy(POLICY_YAML, 'policy.yaml');
    const json = parseAlertPolicy(
      JSON.stringify({
        tiers: [
          { name: 'low', from: 0, indicator: 'info' },
          { name: 'moderate', from: 0.2, indicator: 'warning' },
          { name: 'high', from: 0.5, indicator: 'critical' },
        ],
        suppression: { hours: 8, minRisePoints: 10 },
      }),
      'policy.json',
    );
    assert.deepEqual(yaml, json);
    assert.deepEqual(yaml.suppression, { hours: 8, minRisePoints: 10 });
  });

  it('names the field of each mistake', () => {
    const bad = `
tiers:
  - { name: low, from: 0.1, indicator: info }
  - { name: high, from: 0.5, indicator: critical }
  - { name: moderate, from: 0.4, indicator: loud }
suppression: { hours: -1, minRisePoints: 10, extra: 1 }
`;
    assert.throws(
      () => parseAlertPolicy(bad, 'p.yaml'),
      (error: Error) => {
        for (const field of ['tiers.2.indicator', 'suppression.hours', 'suppression'])
          assert.match(error.message, new RegExp(`${field.replace('.', '\\.')}: `));
        assert.match(error.message, /^p\.yaml: invalid alert policy/);
        return true;
      },
    );
    assert.throws(
      () =>
        parseAlertPolicy(
          'tiers: [{name: low, from: 0.1, indicator: info}, {name: high, from: 0.5, indicator: critical}, {name: moderate, from: 0.4, indicator: warning}]',
          'p.yaml',
        ),
      (error: Error) => {
        assert.match(error.message, /tiers\.0\.from: must be 0/);
        assert.match(error.message, /tiers\.1\.name: must be "moderate"/);
        assert.match(error.message, /tiers\.2\.from: must be greater than tier high's from \(0\.5\)/);
        return true;
      },
    );
    assert.throws(() => parseAlertPolicy('tiers: [', 'p.yaml'), /p\.yaml: not YAML or JSON/);
  });

  it('has a default that gives the bands and card indicators of RISK_MODERATE/HIGH_THRESHOLD', () => {
    const policy = defaultAlertPolicy({ moderate: 0.15, high: 0.4 });
    // Today's rule, written out: >= 0.4 high/critical, >= 0.15 moderate/warning, else low/info.
    const cases: Array<[number, string, string]> = [
      [0, 'low', 'info'],
      [0.149999, 'low', 'info'],
      [0.15, 'moderate', 'warning'],
      [0.399999, 'moderate', 'warning'],
      [0.4, 'high', 'critical'],
      [1, 'high', 'critical'],
    ];
    for (const [p, band, indicator] of cases) {
      assert.equal(tierOf(policy, p).name, band, `p=${p}`);
      assert.equal(tierOf(policy, p).indicator, indicator, `p=${p}`);
      assert.equal(riskBand(p, { moderate: 0.15, high: 0.4 }), band);
    }
    assert.equal(policy.suppression, null);
    assert.equal(alertThreshold(policy), 0.15);
  });
});

describe('re-alert suppression', () => {
  const policy: AlertPolicy = parseAlertPolicy(POLICY_YAML, 'policy.yaml');
  const at = (hours: number) => Date.UTC(2026, 0, 1) + hours * HOUR;
  const last = { tier: 'moderate' as const, probability: 0.3, at: at(0) };

  it('shows the first card for a patient', () => {
    assert.equal(isSuppressed(policy, undefined, { tier: 'moderate', probability: 0.3, at: at(0) }), false);
  });

  it('suppresses the same tier within the hours when the risk rose less than the points', () => {
    assert.equal(isSuppressed(policy, last, { tier: 'moderate', probability: 0.3, at: at(1) }), true);
    assert.equal(isSuppressed(policy, last, { tier: 'moderate', probability: 0.39, at: at(7.99) }), true);
  });

  it('suppresses a lower tier within the hours', () => {
    assert.equal(isSuppressed(policy, last, { tier: 'low', probability: 0.1, at: at(2) }), true);
  });

  it('shows a card when the risk rose by the points exactly, despite floating point', () => {
    // 0.4 - 0.3 is 0.10000000000000003 and 0.35 - 0.25 is 0.09999999999999998 in binary floating point.
    assert.equal(isSuppressed(policy, last, { tier: 'moderate', probability: 0.4 - 1e-12, at: at(1) }), false);
    const from25 = { tier: 'moderate' as const, probability: 0.25, at: at(0) };
    assert.equal(isSuppressed(policy, from25, { tier: 'moderate', probability: 0.35, at: at(1) }), false);
    assert.equal(isSuppressed(policy, from25, { tier: 'moderate', probability: 0.3499, at: at(1) }), true);
  });

  it('shows a card at a higher tier at once, however small the rise', () => {
    assert.equal(
      isSuppressed(policy, { ...last, probability: 0.49 }, { tier: 'high', probability: 0.5, at: at(0.1) }),
      false,
    );
  });

  it('shows a card again once the hours have passed', () => {
    assert.equal(isSuppressed(policy, last, { tier: 'moderate', probability: 0.3, at: at(8) }), false);
    assert.equal(isSuppressed(policy, last, { tier: 'low', probability: 0.05, at: at(9) }), false);
  });

  it('never suppresses without a suppression rule', () => {
    const none = defaultAlertPolicy({ moderate: 0.2, high: 0.5 });
    assert.equal(isSuppressed(none, last, { tier: 'moderate', probability: 0.3, at: at(0) }), false);
  });
});
