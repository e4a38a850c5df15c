/**
 * Live monitoring's figures computed independently: scikit-learn (roc_auc_score, an unpenalised
 * LogisticRegression for the slope), scipy's brentq for calibration-in-the-large, numpy for the rest.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { Figures, Pair } from '../../src/evaluation/monitoring.js';

const PYTHON = (threshold: number) => `
import json, sys
import numpy as np
from scipy.optimize import brentq
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
pairs = json.load(sys.stdin)
def figures(rows):
    p = np.array([r["probability"] for r in rows]); y = np.array([r["died"] for r in rows])
    z = np.log(p / (1 - p))
    fit = LogisticRegression(penalty=None, tol=1e-10, max_iter=1000).fit(z.reshape(-1, 1), y)
    intercept = brentq(lambda a: np.sum(y - 1 / (1 + np.exp(-(a + z)))), -5, 5, xtol=1e-14)
    flagged = p >= ${threshold}
    return {"n": int(len(y)), "deaths": int(y.sum()), "auroc": roc_auc_score(y, p),
            "slope": float(fit.coef_[0][0]), "intercept": float(intercept),
            "oe": float(y.sum() / p.sum()), "flaggedShare": float(flagged.mean()),
            "sensitivity": float((flagged & (y == 1)).sum() / (y == 1).sum()),
            "ppv": float((flagged & (y == 1)).sum() / flagged.sum())}
out = {"overall": figures(pairs)}
for key in ("version", "profile"):
    for g in sorted(set(r[key] for r in pairs)):
        rows = [r for r in pairs if r[key] == g]
        if sum(r["died"] for r in rows) >= 100 and sum(1 - r["died"] for r in rows) >= 100:
            out[key + ":" + g] = figures(rows)
print(json.dumps(out))
`;

/** The figures of all pairs, and of each version and profile with 100 deaths and 100 survivors. */
export function sklearnFigures(pairs: readonly Pair[], threshold: number): Record<string, Record<string, number>> {
  const run = spawnSync('/usr/bin/python3', ['-c', PYTHON(threshold)], {
    input: JSON.stringify(pairs),
    encoding: 'utf8',
  });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout) as Record<string, Record<string, number>>;
}

export function assertClose(actual: number | null, expected: number, what: string, tolerance = 1e-6): void {
  assert.ok(actual !== null && Math.abs(actual - expected) <= tolerance, `${what}: ${actual} vs ${expected}`);
}

/** `f` equals the reference figures `ref`; its bootstrap interval brackets its AUROC. */
export function assertFiguresMatch(f: Figures, ref: Record<string, number>, what: string): void {
  assert.equal(f.n, ref.n, `${what} n`);
  assert.equal(f.deaths, ref.deaths, `${what} deaths`);
  assert.equal(f.withheld, null, `${what} withheld`);
  assertClose(f.auroc, ref.auroc as number, `${what} auroc`, 1e-12);
  // Relative: scikit-learn's lbfgs stops at its own tolerance; a narrow risk range makes the slope large.
  const slope = ref.slope as number;
  assertClose(f.calibration.slope, slope, `${what} slope`, 1e-5 * Math.max(1, Math.abs(slope)));
  assertClose(f.calibration.interceptInTheLarge, ref.intercept as number, `${what} intercept`, 1e-8);
  assertClose(f.observedExpected, ref.oe as number, `${what} O/E`, 1e-12);
  assertClose(f.flaggedShare, ref.flaggedShare as number, `${what} flagged share`, 1e-12);
  assertClose(f.sensitivity, ref.sensitivity as number, `${what} sensitivity`, 1e-12);
  assertClose(f.ppv, ref.ppv as number, `${what} ppv`, 1e-12);
  const [low, high] = f.aurocCi95 ?? [NaN, NaN];
  assert.ok(low < (f.auroc as number) && (f.auroc as number) < high && high - low < 0.2, `${what} CI ${low}-${high}`);
}
