"""Every figure of the validation report (src/evaluation/) against scikit-learn and numpy on
the same synthetic scores: the TypeScript module runs through node --import tsx."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "evaluation_run.ts")
TOL = 1e-6
CLIP = 1e-12  # src/evaluation/metrics.ts LOGIT_CLIP


def synthetic(seed: int = 29, n: int = 3000):
    rng = np.random.default_rng(seed)
    logit = rng.normal(-1.8, 1.3, n)
    p = 1 / (1 + np.exp(-logit))
    # Outcomes from a miscalibrated truth (intercept -0.3, slope 0.8), and rounded scores so that ties occur.
    y = (rng.random(n) < 1 / (1 + np.exp(-(-0.3 + 0.8 * logit)))).astype(int)
    p = np.round(p, 3)
    groups = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    return p, y, groups


def run_typescript(tmp_path, p, y, groups, threshold):
    node = shutil.which("node")
    if node is None or not os.path.isdir(os.path.join(ROOT, "node_modules", "tsx")):
        pytest.skip("node and npm install are needed to run the TypeScript module")
    path = tmp_path / "scores.json"
    path.write_text(json.dumps({"probabilities": p.tolist(), "outcomes": y.tolist(), "groups": groups.tolist(),
                                "decisionThreshold": threshold}))
    out = subprocess.run([node, "--import", "tsx", SCRIPT, str(path)], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=300)
    return json.loads(out.stdout)


def logit(p):
    q = np.clip(p, CLIP, 1 - CLIP)
    return np.log(q / (1 - q))


def irls(y, x, offset=None):
    """Logistic regression by Newton's method on the columns of x (with an offset)."""
    beta = np.zeros(x.shape[1])
    off = np.zeros(len(y)) if offset is None else offset
    for _ in range(100):
        mu = 1 / (1 + np.exp(-(x @ beta + off)))
        step = np.linalg.solve(x.T @ (x * (mu * (1 - mu))[:, None]), x.T @ (y - mu))
        beta += step
        if np.max(np.abs(step)) < 1e-13:
            break
    return beta


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    p, y, groups = synthetic()
    return p, y, groups, run_typescript(tmp_path_factory.mktemp("parity"), p, y, groups, 0.3122)


def test_discrimination_matches_scikit_learn(case):
    p, y, _, report = case
    assert report["n"] == len(y) and report["deaths"] == int(y.sum())
    assert abs(report["auroc"] - roc_auc_score(y, p)) < TOL
    assert abs(report["auprc"] - average_precision_score(y, p)) < TOL
    assert abs(report["brier"] - brier_score_loss(y, p)) < TOL


def test_bootstrap_interval_agrees_with_a_numpy_stratified_bootstrap(case):
    p, y, _, report = case
    rng = np.random.default_rng(0)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    aucs = []
    for _ in range(1000):
        idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        aucs.append(roc_auc_score(y[idx], p[idx]))
    low, high = np.percentile(aucs, [2.5, 97.5])
    # Other random draws: the intervals agree to Monte Carlo error, not to 1e-6.
    assert abs(report["aurocCi95"][0] - low) < 0.006 and abs(report["aurocCi95"][1] - high) < 0.006
    assert report["aurocCi95"][0] < report["auroc"] < report["aurocCi95"][1]


def test_calibration_matches_numpy(case):
    p, y, _, report = case
    z = logit(p)
    slope = irls(y, np.column_stack([np.ones_like(z), z]))[1]
    intercept = irls(y, np.ones((len(y), 1)), offset=z)[0]
    cal = report["calibration"]
    assert abs(cal["slope"] - slope) < TOL
    assert abs(cal["interceptInTheLarge"] - intercept) < TOL
    bins = np.minimum((p * 10).astype(int), 9)
    ece = sum((bins == b).mean() * abs(p[bins == b].mean() - y[bins == b].mean()) for b in range(10) if (bins == b).any())
    assert abs(cal["ece"] - ece) < TOL
    deciles = np.array_split(np.argsort(p, kind="stable"), 10)
    assert [d["n"] for d in cal["deciles"]] == [len(d) for d in deciles]
    for got, idx in zip(cal["deciles"], deciles):
        assert abs(got["predicted"] - p[idx].mean()) < TOL and abs(got["observed"] - y[idx].mean()) < TOL


def test_thresholds_match_numpy(case):
    p, y, _, report = case
    thresholds = [row["threshold"] for row in report["thresholds"]]
    assert 0.3122 in thresholds and 0.05 in thresholds and 0.95 in thresholds
    n = len(y)
    for row in report["thresholds"]:
        t = row["threshold"]
        flag = p >= t
        tp, fp = int((flag & (y == 1)).sum()), int((flag & (y == 0)).sum())
        fn, tn = int((~flag & (y == 1)).sum()), int((~flag & (y == 0)).sum())
        assert abs(row["flaggedShare"] - flag.mean()) < TOL
        assert abs(row["sensitivity"] - tp / (tp + fn)) < TOL
        assert abs(row["specificity"] - tn / (tn + fp)) < TOL
        if tp + fp > 0:
            assert abs(row["ppv"] - tp / (tp + fp)) < TOL
            if tp > 0:
                assert abs(row["nne"] - (tp + fp) / tp) < TOL
        else:
            assert row["ppv"] is None and row["nne"] is None
        assert abs(row["npv"] - tn / (tn + fn)) < TOL
        assert abs(row["netBenefit"] - (tp / n - fp / n * t / (1 - t))) < TOL


def test_subgroups_match_scikit_learn(case):
    p, y, groups, report = case
    assert [s["group"] for s in report["subgroups"]] == ["a", "b", "c"]
    for s in report["subgroups"]:
        m = groups == s["group"]
        assert s["by"] == "site" and s["n"] == int(m.sum()) and s["deaths"] == int(y[m].sum())
        assert abs(s["auroc"] - roc_auc_score(y[m], p[m])) < TOL
        assert abs(s["observedExpected"] - y[m].sum() / p[m].sum()) < TOL
        assert s["aurocCi95"][0] < s["auroc"] < s["aurocCi95"][1]


def test_decision_curve_and_roc_match_numpy(case):
    p, y, _, report = case
    n, prevalence = len(y), y.mean()
    for point in report["curves"]["decision"]:
        t = point["threshold"]
        flag = p >= t
        tp, fp = (flag & (y == 1)).sum(), (flag & (y == 0)).sum()
        assert abs(point["model"] - (tp / n - fp / n * t / (1 - t))) < TOL
        assert abs(point["treatAll"] - (prevalence - (1 - prevalence) * t / (1 - t))) < TOL
    from sklearn.metrics import roc_curve
    fpr, tpr, _ = roc_curve(y, p, drop_intermediate=False)
    roc = report["curves"]["roc"]
    # numpy.interp takes the last point of a vertical step; the report the top of it at the next grid value.
    expected = np.interp(roc["fpr"][1:-1], fpr, tpr)
    assert np.max(np.abs(np.array(roc["tpr"][1:-1]) - expected)) < TOL
