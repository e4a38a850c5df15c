"""Held-out metrics: discrimination with bootstrap intervals, calibration, decision rule."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score


def bootstrap_auroc(y: np.ndarray, p: np.ndarray, n: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Percentile 95% interval of AUROC over stays resampled with replacement."""
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n):
        idx = rng.integers(0, len(y), len(y))
        if y[idx].min() == y[idx].max():
            continue
        stats.append(roc_auc_score(y[idx], p[idx]))
    lo, hi = np.percentile(stats, [2.5, 97.5])
    return float(lo), float(hi)


def paired_bootstrap_delta(y: np.ndarray, p1: np.ndarray, p2: np.ndarray, n: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """AUROC(p1) - AUROC(p2) on the same stays: point estimate and 95% interval."""
    rng = np.random.default_rng(seed)
    d = []
    for _ in range(n):
        idx = rng.integers(0, len(y), len(y))
        if y[idx].min() == y[idx].max():
            continue
        d.append(roc_auc_score(y[idx], p1[idx]) - roc_auc_score(y[idx], p2[idx]))
    lo, hi = np.percentile(d, [2.5, 97.5])
    return float(roc_auc_score(y, p1) - roc_auc_score(y, p2)), float(lo), float(hi)


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Equal-width bins over [0, 1]; weighted mean |observed rate - mean prediction|."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            ece += sel.mean() * abs(y[sel].mean() - p[sel].mean())
    return float(ece)


def reliability_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    out = []
    for b in range(bins):
        sel = which == b
        if sel.any():
            out.append({"binLow": float(edges[b]), "binHigh": float(edges[b + 1]), "n": int(sel.sum()),
                        "meanPredicted": float(p[sel].mean()), "observedRate": float(y[sel].mean())})
    return out


def calibration_intercept_slope(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Logistic recalibration: logit(P(y)) = a + b * logit(p). Slope 1 and intercept 0 are ideal
    (the slope fit; the intercept is calibration-in-the-large with the slope fixed at 1)."""
    import torch
    z = np.log(np.clip(p, 1e-7, 1 - 1e-7) / np.clip(1 - p, 1e-7, 1))
    zt = torch.tensor(z, dtype=torch.float64)
    yt = torch.tensor(y, dtype=torch.float64)
    ab = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([ab], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(ab[0] + ab[1] * zt, yt)
        loss.backward()
        return loss
    opt.step(closure)
    slope = float(ab[1])
    a = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([a], max_iter=200, line_search_fn="strong_wolfe")

    def closure2():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(a[0] + zt, yt)
        loss.backward()
        return loss
    opt.step(closure2)
    return float(a[0]), slope


def challenge_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The 2012 challenge scored binary predictions by min(sensitivity, PPV) (event 1); the
    threshold that maximises it on the validation split is the model's decision rule."""
    best_t, best = 0.5, -1.0
    for t in np.unique(np.round(p, 4)):
        pred = p >= t
        tp = float((pred & (y == 1)).sum())
        if pred.sum() == 0:
            continue
        score = min(tp / max(y.sum(), 1), tp / pred.sum())
        if score > best:
            best, best_t = score, float(t)
    return best_t


def decision_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    pred = p >= threshold
    tp = int((pred & (y == 1)).sum())
    fp = int((pred & (y == 0)).sum())
    fn = int((~pred & (y == 1)).sum())
    tn = int((~pred & (y == 0)).sum())
    se = tp / max(tp + fn, 1)
    ppv = tp / max(tp + fp, 1)
    return {"threshold": threshold, "sensitivity": se, "ppv": ppv, "specificity": tn / max(tn + fp, 1),
            "challengeScore": min(se, ppv), "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def discrimination(y: np.ndarray, p: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    lo, hi = bootstrap_auroc(y, p, n_boot, seed)
    return {"n": int(len(y)), "deaths": int(y.sum()), "auroc": float(roc_auc_score(y, p)), "aurocCi95": [lo, hi],
            "auprc": float(average_precision_score(y, p))}


def full_metrics(y: np.ndarray, p: np.ndarray, threshold: float, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    out = discrimination(y, p, n_boot, seed)
    intercept, slope = calibration_intercept_slope(y, p)
    out.update({
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "calibrationIntercept": intercept,
        "calibrationSlope": slope,
        "meanPredicted": float(p.mean()),
        "observedRate": float(y.mean()),
        "decisionRule": decision_metrics(y, p, threshold),
    })
    return out


def subgroup_auroc(y: np.ndarray, p: np.ndarray, groups: Sequence[str], n_boot: int = 500, seed: int = 0) -> dict[str, Any]:
    groups = np.asarray(groups)
    out = {}
    for g in sorted(set(groups.tolist())):
        sel = groups == g
        ys, ps = y[sel], p[sel]
        if ys.min() == ys.max() or ys.sum() < 5:
            out[g] = {"n": int(sel.sum()), "deaths": int(ys.sum()), "auroc": None, "aurocCi95": None}
            continue
        out[g] = discrimination(ys, ps, n_boot, seed)
    return out


def reliability_plot(path: str, curves: dict[str, tuple[np.ndarray, np.ndarray]], bins: int = 10) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax, axh) = plt.subplots(2, 1, figsize=(5.5, 6.5), gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    for name, (y, p) in curves.items():
        table = reliability_table(y, p, bins)
        ax.plot([r["meanPredicted"] for r in table], [r["observedRate"] for r in table], marker="o", label=name)
    ax.set_ylabel("observed in-hospital mortality")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Reliability on the held-out test split (10 equal-width bins)", fontsize=9)
    first = next(iter(curves.values()))
    axh.hist(first[1], bins=np.linspace(0, 1, 41), color="tab:blue", alpha=0.7)
    axh.set_xlabel("predicted probability")
    axh.set_ylabel("stays")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
