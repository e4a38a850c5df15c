"""The held-out test split, used once: every figure of metrics.json and the model card."""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from . import evaluate as ev
from . import scenarios
from .features import summary_features, tensorize
from .run import Ensemble, Run, Trees
from .spec import BEDSIDE_VITALS
from .trees import fit_gbt

SCORED_AT_HOURS = (6, 12, 24)
# Figures of the runs compared on validation before this version (model card, "Alternatives considered").
ALTERNATIVES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "alternatives.json")


def age_band(age: float | None) -> str:
    if age is None:
        return "unknown"
    if age < 50:
        return "<50"
    if age < 65:
        return "50-64"
    if age < 80:
        return "65-79"
    return ">=80"


def evaluate_held_out(run: Run, trees: Trees, model: Ensemble) -> dict[str, Any]:
    """Discrimination and calibration against the trees, the validated input profiles (added to the
    manifest), early scoring, SAPS-I and SOFA, subgroups, reliability (and its plot)."""
    seed, n_boot, test, y_te = run.args.seed, run.args.bootstrap, run.test, run.test.y
    p_te = model.predict(test.x, test.lengths)
    p_vit = model.predict(*tensorize(test.stays, run.manifest, keep=BEDSIDE_VITALS, drop_statics=True))
    p_vit_s = model.predict(*tensorize(test.stays, run.manifest, keep=BEDSIDE_VITALS, drop_statics=False))
    metrics = {
        "split": {k: len(v) for k, v in run.split_ids.items()},
        "bootstrapResamples": n_boot,
        "mortality": float(np.mean([s.died for s in run.stays])),
        "model": ev.full_metrics(y_te, p_te, model.threshold, n_boot, seed),
        "gbt": {**ev.full_metrics(y_te, trees.p_te, ev.challenge_threshold(run.val.y, trees.p_va), n_boot, seed),
                "trees": trees.count},
        "modelMinusGbtAuroc": _delta(ev.paired_bootstrap_delta(y_te, p_te, trees.p_te, n_boot, seed)),
        "vitalsOnly": {"variables": BEDSIDE_VITALS, "statics": "missing", **ev.discrimination(y_te, p_vit, n_boot, seed)},
        "vitalsPlusStatics": {"variables": BEDSIDE_VITALS, "statics": "given",
                              **ev.discrimination(y_te, p_vit_s, n_boot, seed)},
    }
    metrics["scenarios"] = evaluate_scenarios(run, model)
    run.manifest["scenarios"] = scenarios.manifest_entries(metrics["scenarios"])
    metrics["scoredAtHour"] = evaluate_prefixes(run, trees, model)
    metrics.update(evaluate_severity_scores(run, trees, p_te))
    metrics["subgroups"] = evaluate_subgroups(run, p_te)
    metrics["reliability"] = ev.reliability_table(y_te, p_te)
    p_va = model.predict(run.val.x, run.val.lengths)
    metrics["validation"] = {"ensembleAuroc": float(roc_auc_score(run.val.y, p_va)),
                             "gbtAuroc": float(roc_auc_score(run.val.y, trees.p_va)), "members": model.log}
    if os.path.exists(ALTERNATIVES):
        with open(ALTERNATIVES) as f:
            metrics["alternativesConsidered"] = json.load(f)
    ev.reliability_plot(os.path.join(run.out_dir, "reliability.png"),
                        {f"{run.cfg.architecture.upper()} ensemble (calibrated)": (y_te, p_te),
                         "gradient-boosted trees": (y_te, trees.p_te)})
    return metrics


def _delta(d: tuple[float, float, float]) -> dict[str, float]:
    return dict(zip(("delta", "ci95Low", "ci95High"), d))


def evaluate_scenarios(run: Run, model: Ensemble) -> list[dict[str, Any]]:
    """The validated input profiles, each against trees fitted for it (the service names them per result)."""
    args = run.args
    results = scenarios.evaluate(
        predict=model.predict,
        fit_trees=lambda f_a, y_a, f_b, y_b: fit_gbt(f_a, y_a, f_b, y_b, args.seed)[0],
        stays={"train": run.train.stays, "validation": run.val.stays, "test": run.test.stays},
        manifest=run.manifest, n_boot=args.bootstrap, seed=args.seed)
    for r in results:
        print(f"scenario {r['name']}: {args.architecture} {r['model']['auroc']:.4f}, trees {r['gbt']['auroc']:.4f}, "
              f"difference {r['modelMinusGbtAuroc']['delta']:+.4f} ({r['modelMinusGbtAuroc']['ci95Low']:+.4f} to "
              f"{r['modelMinusGbtAuroc']['ci95High']:+.4f})", flush=True)
    return results


def evaluate_prefixes(run: Run, trees: Trees, model: Ensemble) -> list[dict[str, Any]]:
    """The service scores stays from their first hour on: AUROC when every test stay is cut to its
    first h hours (the trees get the summary statistics of the same hours). Trees fitted on whole
    stays are handicapped on prefixes, so a second set is fitted on every training stay cut to each
    of these hours and whole: the fair baseline for early scoring."""
    seed, n_boot, manifest, test, y_te = run.args.seed, run.args.bootstrap, run.manifest, run.test, run.test.y
    hours = (*SCORED_AT_HOURS, manifest["maxHours"])

    def cut(ss, h):
        return [dataclasses.replace(s, values=s.values[:h]) for s in ss]

    def with_prefixes(ss):
        return [c for h in hours for c in cut(ss, h)]
    gbt_prefix, _ = fit_gbt(summary_features(with_prefixes(run.train.stays), manifest), np.tile(run.train.y, len(hours)),
                            summary_features(with_prefixes(run.val.stays), manifest), np.tile(run.val.y, len(hours)),
                            seed)
    rows = []
    for h in hours:
        p_cut = model.predict(test.x, np.minimum(test.lengths, h))
        f_cut = summary_features(cut(test.stays, h), manifest)
        p_gbt_cut, p_gbtp_cut = trees.model.predict_proba(f_cut)[:, 1], gbt_prefix.predict_proba(f_cut)[:, 1]
        rows.append({
            "hours": h, "model": ev.discrimination(y_te, p_cut, n_boot, seed),
            "gbt": ev.discrimination(y_te, p_gbt_cut, n_boot, seed),
            "gbtPrefixTrained": ev.discrimination(y_te, p_gbtp_cut, n_boot, seed),
            "modelMinusGbtPrefixTrainedAuroc": _delta(ev.paired_bootstrap_delta(y_te, p_cut, p_gbtp_cut, n_boot, seed))})
    return rows


def evaluate_severity_scores(run: Run, trees: Trees, p_te: np.ndarray) -> dict[str, Any]:
    """SAPS-I and SOFA from the outcome files, on the test stays that have them."""
    out = {}
    for score, attr in (("saps1", "saps"), ("sofa", "sofa")):
        have = np.array([getattr(s, attr) is not None for s in run.test.stays])
        vals = np.array([getattr(s, attr) if getattr(s, attr) is not None else 0 for s in run.test.stays], dtype=float)
        y = run.test.y[have]
        out[score] = {**ev.discrimination(y, vals[have], run.args.bootstrap, run.args.seed),
                      "modelAurocSameStays": float(roc_auc_score(y, p_te[have])),
                      "gbtAurocSameStays": float(roc_auc_score(y, trees.p_te[have]))}
    return out


def evaluate_subgroups(run: Run, p_te: np.ndarray) -> dict[str, Any]:
    """AUROC per ICU type, sex, age band, challenge set and hours of data."""
    test = run.test.stays
    groups = {
        "icuType": [{1: "coronary care", 2: "cardiac surgery recovery", 3: "medical", 4: "surgical"}.get(
            s.statics.get("ICUType"), "unknown") for s in test],
        "sex": [{0: "female", 1: "male"}.get(s.statics.get("Gender"), "unknown") for s in test],
        "ageBand": [age_band(s.statics.get("Age")) for s in test],
        "sourceSet": [f"set-{s.source}" for s in test],
        "hoursObserved": ["<24" if n < 24 else "24-47" if n < 48 else "48" for n in run.test.lengths],
    }
    return {k: ev.subgroup_auroc(run.test.y, p_te, g, min(run.args.bootstrap, 500), run.args.seed)
            for k, g in groups.items()}
