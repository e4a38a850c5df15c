import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parser } from '@prometheus-io/lezer-promql';
import YAML from 'yaml';

/** Shared readers for the deploy-file tests: the repository root, YAML/JSON loading, PromQL. */

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function repoPath(...parts: string[]): string {
  return join(ROOT, ...parts);
}

export function readText(...parts: string[]): string {
  return readFileSync(repoPath(...parts), 'utf8');
}

export function readYaml<T = unknown>(...parts: string[]): T {
  return YAML.parse(readText(...parts)) as T;
}

export function readJson<T = unknown>(...parts: string[]): T {
  return JSON.parse(readText(...parts)) as T;
}

export interface AlertRule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface RuleFile {
  groups: Array<{ name: string; rules: AlertRule[] }>;
}

export function alertRules(): AlertRule[] {
  return readYaml<RuleFile>('deploy', 'prometheus', 'alerts.yml').groups.flatMap((g) => g.rules);
}

export interface GrafanaTarget {
  refId: string;
  expr: string;
  datasource?: { type: string; uid: string };
}

export interface GrafanaPanel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: GrafanaTarget[];
  repeat?: string;
}

export interface GrafanaDashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: GrafanaPanel[];
  templating: { list: Array<{ name: string; query: { query: string } | string; datasource?: { uid: string } }> };
}

export function dashboard(): GrafanaDashboard {
  return readJson<GrafanaDashboard>('deploy', 'grafana', 'dashboards', 'icu-mortality.json');
}

/**
 * Grafana substitutes its variables before sending a query; do the same with plausible
 * values so the PromQL parser sees what Prometheus would.
 */
export function expandGrafanaVariables(expr: string): string {
  return expr.replace(/\$__rate_interval|\$__interval|\$__range/g, '5m').replace(/\$\{?(\w+)\}?/g, '.*');
}

export interface PromqlAnalysis {
  /** Metric names used in vector selectors (recording-rule names included). */
  metrics: string[];
  /** Each vector selector's metric and the label names it matches on. */
  selectors: Array<{ metric: string; labels: string[] }>;
  /** Text of each part the grammar could not parse. */
  errors: string[];
}

/** Parses PromQL with Prometheus' own lezer grammar (@prometheus-io/lezer-promql). */
export function analysePromql(expr: string): PromqlAnalysis {
  const tree = parser.parse(expr);
  const metrics = new Set<string>();
  const errors: string[] = [];
  const selectors: PromqlAnalysis['selectors'] = [];
  tree.iterate({
    enter(node) {
      if (node.type.isError) errors.push(`${node.from}: "${expr.slice(Math.max(0, node.from - 10), node.to + 10)}"`);
      if (node.name === 'VectorSelector') {
        const id = node.node.getChild('Identifier');
        if (id) {
          const metric = expr.slice(id.from, id.to);
          metrics.add(metric);
          const labels: string[] = [];
          const matchers = node.node.getChild('LabelMatchers');
          for (const m of matchers?.getChildren('UnquotedLabelMatcher') ?? []) {
            const name = m.getChild('LabelName');
            if (name) labels.push(expr.slice(name.from, name.to));
          }
          selectors.push({ metric, labels });
        }
      }
    },
  });
  return { metrics: [...metrics], selectors, errors };
}

/** Every PromQL expression the dashboard sends, with the panel it belongs to. */
export function dashboardExpressions(): Array<{ where: string; expr: string }> {
  const d = dashboard();
  const out: Array<{ where: string; expr: string }> = [];
  for (const p of d.panels) {
    for (const t of p.targets ?? [])
      out.push({ where: `panel "${p.title}" ${t.refId}`, expr: expandGrafanaVariables(t.expr) });
  }
  for (const v of d.templating.list) {
    const q = typeof v.query === 'string' ? v.query : v.query.query;
    // label_values(<selector>, label) is Grafana syntax around a series selector.
    const m = /^label_values\((.*),\s*\w+\)$/.exec(q);
    if (m?.[1]) out.push({ where: `variable $${v.name}`, expr: expandGrafanaVariables(m[1]) });
  }
  return out;
}

/** Every PromQL expression of the alert rules and the dashboard, with where it comes from. */
export function allExpressions(): Array<{ where: string; expr: string }> {
  return [
    ...alertRules().map((r) => ({ where: `rule ${r.alert ?? r.record}`, expr: r.expr })),
    ...dashboardExpressions(),
  ];
}

/** Metric names the dashboard and the alert rules read from the service (not from Prometheus itself). */
export function referencedServiceMetrics(): Map<string, string[]> {
  const rules = alertRules();
  const recorded = new Set(rules.flatMap((r) => (r.record ? [r.record] : [])));
  // `up` is written by Prometheus for every scrape target, not exposed by the service.
  const synthetic = new Set(['up']);
  const uses = new Map<string, string[]>();
  const add = (metric: string, where: string) => {
    if (recorded.has(metric) || synthetic.has(metric)) return;
    uses.set(metric, [...(uses.get(metric) ?? []), where]);
  };
  for (const { where, expr } of allExpressions()) for (const m of analysePromql(expr).metrics) add(m, where);
  return uses;
}
