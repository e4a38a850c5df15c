import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { ValidationReport } from '../evaluation/report.js';

/**
 * report.html of `icu-mortality validate`: one self-contained file. Every chart is a Vega-Lite
 * specification rendered to SVG here, in Node, so nothing is fetched when the file is opened.
 */

const WIDTH = 320;
const HEIGHT = 260;

async function svgOf(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
/** A report figure to `digits` places, `n/a` where there is none. */
export const fixed = (v: number | null | undefined, digits = 3): string =>
  v === null || v === undefined ? 'n/a' : v.toFixed(digits);
const ci = (pair: [number, number] | null | undefined): string =>
  pair ? `${fixed(pair[0])}-${fixed(pair[1])}` : 'n/a';

function rocSpec(r: ValidationReport): TopLevelSpec {
  const { fpr, tpr, tprLow, tprHigh } = r.curves.roc;
  const values = [
    { fpr: 0, tpr: 0, low: 0, high: 0 },
    ...fpr.map((f, i) => ({ fpr: f, tpr: tpr[i], low: tprLow[i] ?? tpr[i], high: tprHigh[i] ?? tpr[i] })),
  ];
  const x = { field: 'fpr', type: 'quantitative' as const, title: '1 - specificity', scale: { domain: [0, 1] } };
  return {
    title: `ROC curve: AUROC ${fixed(r.auroc)} (95% band, bootstrap)`,
    width: WIDTH,
    height: HEIGHT,
    data: { values },
    layer: [
      {
        mark: { type: 'area', opacity: 0.25, color: '#4c78a8' },
        encoding: { x, y: { field: 'low', type: 'quantitative', title: 'sensitivity' }, y2: { field: 'high' } },
      },
      {
        mark: { type: 'line', color: '#4c78a8' },
        encoding: { x, y: { field: 'tpr', type: 'quantitative', scale: { domain: [0, 1] } } },
      },
      {
        data: {
          values: [
            { fpr: 0, tpr: 0 },
            { fpr: 1, tpr: 1 },
          ],
        },
        mark: { type: 'line', color: '#999', strokeDash: [4, 4] },
        encoding: { x, y: { field: 'tpr', type: 'quantitative' } },
      },
    ],
  };
}

function calibrationSpec(r: ValidationReport): TopLevelSpec {
  const top = Math.min(1, Math.max(0.1, ...r.calibration.deciles.flatMap((d) => [d.predicted, d.observed])) * 1.1);
  const x = {
    field: 'predicted',
    type: 'quantitative' as const,
    title: 'mean predicted risk',
    scale: { domain: [0, top] },
  };
  const c = r.calibration;
  return {
    title: `Calibration by decile: intercept ${fixed(c.interceptInTheLarge)}, slope ${fixed(c.slope)}`,
    width: WIDTH,
    height: HEIGHT,
    layer: [
      {
        data: {
          values: [
            { predicted: 0, observed: 0 },
            { predicted: top, observed: top },
          ],
        },
        mark: { type: 'line', color: '#999', strokeDash: [4, 4] },
        encoding: { x, y: { field: 'observed', type: 'quantitative' } },
      },
      {
        data: { values: c.deciles },
        mark: { type: 'line', point: true, color: '#e45756' },
        encoding: {
          x,
          y: { field: 'observed', type: 'quantitative', title: 'observed death rate', scale: { domain: [0, top] } },
          tooltip: [{ field: 'n', type: 'quantitative' }],
        },
      },
    ],
  };
}

function decisionSpec(r: ValidationReport): TopLevelSpec {
  const values = r.curves.decision.flatMap((d) => [
    { threshold: d.threshold, strategy: 'model', netBenefit: d.model },
    { threshold: d.threshold, strategy: 'treat all', netBenefit: d.treatAll },
    { threshold: d.threshold, strategy: 'treat none', netBenefit: 0 },
  ]);
  const prevalence = r.n > 0 ? r.deaths / r.n : 0;
  return {
    title: 'Decision curve: net benefit against the threshold',
    width: WIDTH,
    height: HEIGHT,
    data: { values },
    mark: { type: 'line', clip: true },
    encoding: {
      x: { field: 'threshold', type: 'quantitative', title: 'threshold probability' },
      y: {
        field: 'netBenefit',
        type: 'quantitative',
        title: 'net benefit',
        scale: { domain: [-0.05, Math.max(0.05, prevalence)] },
      },
      color: { field: 'strategy', type: 'nominal', scale: { range: ['#4c78a8', '#f58518', '#999'] } },
    },
  };
}

function distributionSpec(r: ValidationReport): TopLevelSpec {
  const deaths = r.deaths;
  const survivors = r.n - r.deaths;
  const values = r.curves.distribution.flatMap((b) => [
    { from: b.from, to: b.to, outcome: 'died', share: deaths > 0 ? b.deaths / deaths : 0 },
    { from: b.from, to: b.to, outcome: 'survived', share: survivors > 0 ? b.survivors / survivors : 0 },
  ]);
  return {
    title: 'Predicted risk by outcome (share of each group)',
    width: WIDTH,
    height: HEIGHT,
    data: { values },
    mark: { type: 'rect', opacity: 0.55 },
    encoding: {
      x: { field: 'from', type: 'quantitative', title: 'predicted risk', scale: { domain: [0, 1] } },
      x2: { field: 'to' },
      y: {
        field: 'share',
        type: 'quantitative',
        title: 'share of stays',
        scale: { domain: [0, Math.max(0.05, ...values.map((v) => v.share))] },
      },
      y2: { datum: 0 },
      color: { field: 'outcome', type: 'nominal', scale: { range: ['#e45756', '#4c78a8'] } },
    },
  };
}

function subgroupSpec(r: ValidationReport): TopLevelSpec {
  const values = r.subgroups
    .filter((s) => s.auroc !== null)
    .map((s) => ({
      label: `${s.by}: ${s.group} (n ${s.n}, ${s.deaths} deaths)`,
      auroc: s.auroc,
      low: s.aurocCi95?.[0] ?? s.auroc,
      high: s.aurocCi95?.[1] ?? s.auroc,
    }));
  const y = { field: 'label', type: 'nominal' as const, title: null, sort: null, axis: { labelLimit: 400 } };
  return {
    title: 'AUROC by subgroup (95% CI)',
    width: WIDTH,
    data: { values },
    layer: [
      {
        mark: { type: 'rule' },
        encoding: {
          y,
          x: { field: 'low', type: 'quantitative', title: 'AUROC', scale: { domain: [0.4, 1] } },
          x2: { field: 'high' },
        },
      },
      { mark: { type: 'point', filled: true }, encoding: { y, x: { field: 'auroc', type: 'quantitative' } } },
    ],
  };
}

function developmentSpec(r: ValidationReport): TopLevelSpec {
  const values = [
    ...(r.development
      ? [
          {
            cohort: 'development (held out)',
            auroc: r.development.auroc,
            low: r.development.aurocCi95?.[0] ?? r.development.auroc,
            high: r.development.aurocCi95?.[1] ?? r.development.auroc,
          },
        ]
      : []),
    ...(r.auroc === null
      ? []
      : [
          {
            cohort: 'this cohort',
            auroc: r.auroc,
            low: r.aurocCi95?.[0] ?? r.auroc,
            high: r.aurocCi95?.[1] ?? r.auroc,
          },
        ]),
  ];
  const y = { field: 'cohort', type: 'nominal' as const, title: null };
  return {
    title: 'AUROC: development against this cohort (95% CI)',
    width: WIDTH,
    data: { values },
    layer: [
      {
        mark: { type: 'rule', strokeWidth: 2 },
        encoding: {
          y,
          x: { field: 'low', type: 'quantitative', title: 'AUROC', scale: { domain: [0.4, 1] } },
          x2: { field: 'high' },
        },
      },
      { mark: { type: 'point', filled: true, size: 80 }, encoding: { y, x: { field: 'auroc', type: 'quantitative' } } },
    ],
  };
}

function thresholdTable(r: ValidationReport): string {
  const head = ['threshold', 'flagged', 'sensitivity', 'specificity', 'PPV', 'NPV', 'NNE', 'net benefit'];
  const rows = r.thresholds.map((t) => {
    const cells = [
      `${t.threshold}${t.threshold === r.decisionThreshold ? ' (decision)' : ''}`,
      `${(t.flaggedShare * 100).toFixed(1)}%`,
      fixed(t.sensitivity),
      fixed(t.specificity),
      fixed(t.ppv),
      fixed(t.npv),
      fixed(t.nne, 1),
      fixed(t.netBenefit, 4),
    ];
    const cls = t.threshold === r.decisionThreshold ? ' class="decision"' : '';
    return `<tr${cls}>${cells.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`;
  });
  return `<table><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function shareTable(r: ValidationReport): string {
  const head = ['target flagged', 'threshold', 'flagged', 'sensitivity', 'PPV'];
  const percent = (v: number | null) => (v === null ? '—' : `${(v * 100).toFixed(1)}%`);
  const rows = r.thresholdsForShare.map((t) => [
    percent(t.targetShare),
    fixed(t.threshold, 4),
    percent(t.flaggedShare),
    fixed(t.sensitivity),
    fixed(t.ppv),
  ]);
  return `<table><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows
    .map((cells) => `<tr>${cells.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

const STYLE = `body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222;max-width:1200px}
figure{display:inline-block;margin:0 1rem 1rem 0;vertical-align:top}
table{border-collapse:collapse;font-size:.9rem}td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:right}
tr.decision{background:#fff3cd}.warn{background:#fde2e1;padding:.5rem;border-radius:4px}
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dt{font-weight:600}`;

export async function reportHtml(r: ValidationReport): Promise<string> {
  const charts: Array<[string, TopLevelSpec]> = [
    ['roc', rocSpec(r)],
    ['calibration', calibrationSpec(r)],
    ['decision', decisionSpec(r)],
    ['distribution', distributionSpec(r)],
    ['subgroups', subgroupSpec(r)],
    ['development', developmentSpec(r)],
  ];
  const figures: string[] = [];
  for (const [name, spec] of charts) figures.push(`<figure data-chart="${name}">${await svgOf(spec)}</figure>`);
  const c = r.calibration;
  const facts: Array<[string, string]> = [
    ['model', `${r.model.name} ${r.model.version}`],
    ['stays, deaths', `${r.n}, ${r.deaths}`],
    ['AUROC (95% CI)', `${fixed(r.auroc)} (${ci(r.aurocCi95)})`],
    [
      'development AUROC (held out)',
      r.development ? `${fixed(r.development.auroc)} (${ci(r.development.aurocCi95)})` : 'not in the model card',
    ],
    ['AUPRC', fixed(r.auprc)],
    ['Brier score', fixed(r.brier, 4)],
    ['calibration intercept, slope, ECE', `${fixed(c.interceptInTheLarge)}, ${fixed(c.slope)}, ${fixed(c.ece)}`],
    [
      'unmatched',
      `${r.unmatched.recordsWithoutOutcome} records without outcome, ${r.unmatched.outcomesWithoutRecord} outcomes without record`,
    ],
  ];
  const warnings = r.warnings.map((w) => `<p class="warn">${escapeHtml(w)}</p>`).join('');
  const title = `Validation of ${r.model.name} ${r.model.version}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body><h1>${escapeHtml(title)}</h1>
<dl>${facts.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('')}</dl>
${warnings}
<section>${figures.join('\n')}</section>
<h2>Thresholds</h2>
<p>A stay is flagged when its predicted risk is at or above the threshold; NNE is the number of flagged stays per death among them.</p>
${thresholdTable(r)}
<h2>Thresholds for a share of stays flagged</h2>
<p>The lowest threshold that flags at most each share of this cohort: a starting point for the alert policy's tiers (ALERT_POLICY), chosen for the workload a unit can take.</p>
${shareTable(r)}
</body></html>
`;
}
