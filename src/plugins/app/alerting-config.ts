import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { defaultAlertPolicy, parseAlertPolicy, type AlertPolicy } from '../../clinical/alert-policy.js';

/**
 * Environment variables of the alert policy and live monitoring (README, "Outcomes, live
 * monitoring and the alert policy"). Without ALERT_POLICY the policy is today's: the two
 * RISK_*_THRESHOLD bands, no suppression.
 */

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export const alertingEnvShape = {
  /** Path of the alert policy file (YAML or JSON): tiers, indicators, re-alert suppression. */
  ALERT_POLICY: z.string().min(1).optional(),
  /** Seconds between computations of the monitoring gauges from the store. */
  MONITORING_INTERVAL_S: int(10, 86_400).default(300),
  /** Days of predictions the monitoring gauges cover (GET /v1/monitoring takes its own `days`). */
  MONITORING_DAYS: int(1, 3650).default(30),
};

type AlertingEnv = z.infer<z.ZodObject<typeof alertingEnvShape>>;

export interface AlertingConfig {
  policy: AlertPolicy;
  /** The file the policy came from; undefined for the default policy. */
  policyFile: string | undefined;
  monitoringIntervalMs: number;
  monitoringDays: number;
}

/**
 * `thresholds` are the RISK_*_THRESHOLD bands; `raw` the environment as given, to refuse a
 * policy file beside those variables (two definitions of the bands).
 */
export function toAlertingConfig(
  e: AlertingEnv,
  thresholds: { moderate: number; high: number },
  raw: Record<string, string | undefined>,
): AlertingConfig {
  let policy = defaultAlertPolicy(thresholds);
  if (e.ALERT_POLICY !== undefined) {
    const both = ['RISK_MODERATE_THRESHOLD', 'RISK_HIGH_THRESHOLD'].filter((name) => raw[name] !== undefined);
    if (both.length > 0)
      throw new Error(
        `invalid configuration:\n  ${both.join(', ')}: ALERT_POLICY sets the tiers' thresholds; remove ${both.length > 1 ? 'them' : 'it'}`,
      );
    let text: string;
    try {
      text = readFileSync(e.ALERT_POLICY, 'utf8');
    } catch (error) {
      throw new Error(
        `invalid configuration:\n  ALERT_POLICY: cannot read ${e.ALERT_POLICY}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        { cause: error },
      );
    }
    try {
      policy = parseAlertPolicy(text, `ALERT_POLICY (${e.ALERT_POLICY})`);
    } catch (error) {
      throw new Error(`invalid configuration:\n  ${(error as Error).message}`, { cause: error });
    }
  }
  return {
    policy,
    policyFile: e.ALERT_POLICY,
    monitoringIntervalMs: e.MONITORING_INTERVAL_S * 1000,
    monitoringDays: e.MONITORING_DAYS,
  };
}
