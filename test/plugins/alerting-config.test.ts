import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.js';

async function policyFile(t: TestContext, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'icu-policy-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'policy.yaml');
  await writeFile(file, text);
  return file;
}

const POLICY = `tiers:
  - { name: low, from: 0, indicator: info }
  - { name: moderate, from: 0.25, indicator: warning }
  - { name: high, from: 0.5, indicator: critical }
suppression: { hours: 12, minRisePoints: 15 }
`;

describe('ALERT_POLICY', () => {
  it("without a file, is today's bands from RISK_*_THRESHOLD with no suppression", () => {
    const config = loadConfig({ RISK_MODERATE_THRESHOLD: '0.2', RISK_HIGH_THRESHOLD: '0.6' });
    assert.deepEqual(config.alerting.policy, {
      tiers: [
        { name: 'low', from: 0, indicator: 'info' },
        { name: 'moderate', from: 0.2, indicator: 'warning' },
        { name: 'high', from: 0.6, indicator: 'critical' },
      ],
      suppression: null,
    });
    assert.deepEqual(config.fhir.thresholds, { moderate: 0.2, high: 0.6 });
  });

  it("sets the RiskAssessment's bands from the file's tiers", async (t) => {
    const config = loadConfig({ ALERT_POLICY: await policyFile(t, POLICY) });
    assert.deepEqual(config.fhir.thresholds, { moderate: 0.25, high: 0.5 });
    assert.deepEqual(config.alerting.policy.suppression, { hours: 12, minRisePoints: 15 });
  });

  it('refuses a file beside RISK_*_THRESHOLD: the bands would be defined twice', async (t) => {
    const file = await policyFile(t, POLICY);
    assert.throws(
      () => loadConfig({ ALERT_POLICY: file, RISK_HIGH_THRESHOLD: '0.5' }),
      (e: unknown) => e instanceof ConfigError && /RISK_HIGH_THRESHOLD: ALERT_POLICY sets the tiers/.test(e.message),
    );
  });

  it('names the file and the field of a mistake, and a file that cannot be read', async (t) => {
    const file = await policyFile(t, POLICY.replace('hours: 12', 'hours: "twelve"'));
    assert.throws(
      () => loadConfig({ ALERT_POLICY: file }),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.message.includes(`ALERT_POLICY (${file})`) &&
        /suppression\.hours: /.test(e.message),
    );
    assert.throws(
      () => loadConfig({ ALERT_POLICY: join(tmpdir(), 'no-such-policy.yaml') }),
      (e: unknown) => e instanceof ConfigError && /ALERT_POLICY: cannot read .*ENOENT/.test(e.message),
    );
  });
});
