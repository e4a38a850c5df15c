import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * Metrics of go-live: alerts by tier and suppression, the CDS mode, and live performance against
 * outcomes (set on a schedule from the store, never per scrape). Labels: tier, mode, model version
 * and input profile only, "all" for the figures over every version or profile.
 */

export const ALL = 'all';

type FigureLabels = 'version' | 'profile';

export interface MonitoringMetrics {
  alerts: Counter<'tier' | 'suppressed'>;
  cdsMode: Gauge<'mode'>;
  pairs: Gauge<FigureLabels>;
  deaths: Gauge<FigureLabels>;
  unlabelled: Gauge<FigureLabels>;
  auroc: Gauge<FigureLabels>;
  aurocLower: Gauge<FigureLabels>;
  aurocUpper: Gauge<FigureLabels>;
  calibrationIntercept: Gauge<FigureLabels>;
  calibrationSlope: Gauge<FigureLabels>;
  observedExpected: Gauge<FigureLabels>;
  flaggedShare: Gauge<FigureLabels>;
  sensitivity: Gauge<FigureLabels>;
  ppv: Gauge<FigureLabels>;
  developmentAurocLower: Gauge<'version'>;
  lastRun: Gauge;
}

export function createMonitoringMetrics(registry: Registry): MonitoringMetrics {
  const registers = [registry];
  const figure = (name: string, help: string) =>
    new Gauge({ name: `monitoring_${name}`, help, labelNames: ['version', 'profile'], registers });
  const alerts = new Counter({
    name: 'alerts_total',
    help: 'CDS cards by alert tier, shown (suppressed="false") or held back by the re-alert rule (suppressed="true")',
    labelNames: ['tier', 'suppressed'],
    registers,
  });
  for (const tier of ['low', 'moderate', 'high'])
    for (const suppressed of ['false', 'true']) alerts.labels(tier, suppressed).inc(0);
  return {
    alerts,
    cdsMode: new Gauge({
      name: 'cds_mode',
      help: 'The CDS Hooks mode: 1 for the running one, silent (scored and recorded, no cards) or cards',
      labelNames: ['mode'],
      registers,
    }),
    pairs: figure('outcomes', 'Predictions of the monitoring window joined to an outcome'),
    deaths: figure('deaths', 'Deaths among the monitoring pairs'),
    unlabelled: figure('unlabelled', 'Predictions of the monitoring window whose patient has no outcome yet'),
    auroc: figure('auroc', 'AUROC against outcomes (absent below the minimum of deaths and survivors)'),
    aurocLower: figure('auroc_ci95_lower', 'Lower bound of the AUROC bootstrap 95% interval'),
    aurocUpper: figure('auroc_ci95_upper', 'Upper bound of the AUROC bootstrap 95% interval'),
    calibrationIntercept: figure('calibration_intercept', 'Calibration-in-the-large (0 ideal)'),
    calibrationSlope: figure('calibration_slope', 'Calibration slope (1 ideal)'),
    observedExpected: figure('observed_expected', 'Observed deaths over the sum of predicted risks (1 ideal)'),
    flaggedShare: figure('flagged_share', "Share of the pairs at or above the alert policy's alert threshold"),
    sensitivity: figure('sensitivity', 'Deaths flagged at the alert threshold, as a share of deaths'),
    ppv: figure('ppv', 'Deaths among the pairs flagged at the alert threshold'),
    developmentAurocLower: new Gauge({
      name: 'model_development_auroc_ci95_lower',
      help: "Lower bound of the AUROC 95% interval on the model card's held-out stays",
      labelNames: ['version'],
      registers,
    }),
    lastRun: new Gauge({
      name: 'monitoring_last_run_timestamp_seconds',
      help: 'When the monitoring figures were last computed from the store',
      registers,
    }),
  };
}
