"""The validated input profiles (spec.SCENARIOS): stays as a caller with only those inputs
would send them, the networks and trees trained for each profile scored on the same stays, and
the coverage a served stay needs before the service claims a profile's figure for it."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import numpy as np

from . import evaluate as ev
from .data import Stay
from .features import summary_features, tensorize
from .spec import SCENARIOS


def as_sent(stays: Sequence[Stay], manifest: dict[str, Any], scenario: dict[str, Any]) -> list[Stay]:
    """The stays with only the scenario's variables and hours, the others never measured."""
    names = [v["name"] for v in manifest["variables"]]
    out = []
    for s in stays:
        values = s.values
        if scenario["variables"] is not None:
            keep = np.array([n in scenario["variables"] for n in names])
            values = values.copy()
            values[:, ~keep] = np.nan
            observed = np.where(~np.isnan(values).all(axis=1))[0]
            values = values[: (observed[-1] + 1 if observed.size else 1)]
        if scenario["maxHours"] is not None:
            values = values[: scenario["maxHours"]]
        out.append(dataclasses.replace(s, values=values))
    return out


def tensors(stays: Sequence[Stay], manifest: dict[str, Any], scenario: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    return tensorize(as_sent(stays, manifest, scenario), manifest)


# A profile is claimed for a stay only when the stay has at least the coverage that 95% of the
# profile's own held-out stays have: the 5% quantile of each figure (src/clinical/input-profile.ts).
COVERAGE_QUANTILE = 0.05


def coverage(values: np.ndarray, manifest: dict[str, Any], scenario: dict[str, Any]) -> tuple[int, int]:
    """What a stay [T, V] has of a scenario's inputs within its window (the first maxHours rows):
    how many of its variables are observed, and over how many hours, first to last row with any
    of them (0 when none). src/clinical/input-profile.ts computes the same for a served stay."""
    names = [v["name"] for v in manifest["variables"]]
    keep = np.array([scenario["variables"] is None or n in scenario["variables"] for n in names])
    window = values[: scenario["maxHours"] or manifest["maxHours"], keep]
    observed = ~np.isnan(window)
    rows = np.where(observed.any(axis=1))[0]
    return int(observed.any(axis=0).sum()), int(rows[-1] - rows[0] + 1) if rows.size else 0


def coverage_rule(sent: Sequence[Stay], manifest: dict[str, Any], scenario: dict[str, Any]) -> dict[str, Any]:
    """The least coverage for which the service claims the scenario: a low quantile of what its
    held-out stays (as sent) have, and the share of those stays that meet both thresholds."""
    k, h = np.array([coverage(s.values, manifest, scenario) for s in sent]).T
    rule = {"minVariables": int(np.quantile(k, COVERAGE_QUANTILE, method="inverted_cdf")),
            "minHours": int(np.quantile(h, COVERAGE_QUANTILE, method="inverted_cdf"))}
    met = (k >= rule["minVariables"]) & (h >= rule["minHours"])
    return {**rule, "quantile": COVERAGE_QUANTILE, "heldOutShare": round(float(met.mean()), 3)}


def hiding_profiles(manifest: dict[str, Any]) -> np.ndarray:
    """[P, V] keep-masks of the scenarios that restrict variables (what training hides)."""
    names = [v["name"] for v in manifest["variables"]]
    return np.array([[n in s["variables"] for n in names] for s in SCENARIOS if s["variables"] is not None])


def evaluate(predict: Callable[[np.ndarray, np.ndarray], np.ndarray], fit_trees: Callable, stays: dict[str, list[Stay]],
             manifest: dict[str, Any], n_boot: int, seed: int) -> list[dict[str, Any]]:
    """For each scenario: the networks' held-out figures and those of trees fitted on the
    scenario's own training and validation stays, with the paired bootstrap difference.
    `predict(x, lengths)` gives calibrated probabilities; `fit_trees(f_tr, y_tr, f_va, y_va)` a classifier."""
    y = {k: np.array([s.died for s in v]) for k, v in stays.items()}
    out = []
    for scenario in SCENARIOS:
        sent = {k: as_sent(v, manifest, scenario) for k, v in stays.items()}
        x_te, l_te = tensorize(sent["test"], manifest)
        p = predict(x_te, l_te)
        trees = fit_trees(summary_features(sent["train"], manifest), y["train"],
                          summary_features(sent["validation"], manifest), y["validation"])
        p_gbt = trees.predict_proba(summary_features(sent["test"], manifest))[:, 1]
        lstm = ev.full_metrics(y["test"], p, 0.5, n_boot, seed)
        gbt = ev.discrimination(y["test"], p_gbt, n_boot, seed)
        delta = dict(zip(("delta", "ci95Low", "ci95High"), ev.paired_bootstrap_delta(y["test"], p, p_gbt, n_boot, seed)))
        out.append({
            "name": scenario["name"], "label": scenario["label"], "variables": scenario["variables"],
            "maxHours": scenario["maxHours"],
            "model": {k: lstm[k] for k in ("n", "deaths", "auroc", "aurocCi95", "auprc", "ece", "calibrationIntercept",
                                           "calibrationSlope")},
            "gbt": {k: gbt[k] for k in ("auroc", "aurocCi95", "auprc")},
            "modelMinusGbtAuroc": delta,
            "coverage": coverage_rule(sent["test"], manifest, scenario),
        })
    return out


def manifest_entries(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the service needs to name a stay's scenario and say how much weight its score bears."""
    return [{"name": r["name"], "label": r["label"], "variables": r["variables"], "maxHours": r["maxHours"],
             "heldOutAuroc": round(r["model"]["auroc"], 3), "heldOutAurocCi95": [round(v, 3) for v in r["model"]["aurocCi95"]],
             "gbtBaselineAuroc": round(r["gbt"]["auroc"], 3), "coverage": r["coverage"]} for r in results]
