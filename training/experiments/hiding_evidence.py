"""The validation-split checks behind input-group hiding (training/README.md, "Version 1.4.0" and
"Version 1.6.0"). It never reads the held-out test split.

    /usr/bin/python3 -m training.experiments.hiding_evidence                (about 5 minutes on 2 cores)
    /usr/bin/python3 -m training.experiments.hiding_evidence --specialist   networks that see the vitals alone
    /usr/bin/python3 -m training.experiments.hiding_evidence --architecture gru --epochs 14 --seeds 2012 ... 2712 \
        --recipe "hidden copies of 0.5, full teacher"          the 1.6.0 check (7 minutes)

One network per recipe and seed (2012, 2112), the 1.3.0 recipe otherwise, trained on the
training split; each scored on the validation stays as sent under each scenario (full record,
vitals only, vitals and routine labs), against trees fitted for that scenario (their tree count
chosen on the same validation stays, which flatters the trees slightly).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from .. import scenarios
from ..features import summary_features, tensorize
from ..fit import FitConfig, Hiding, fit_one, predict_logits
from ..parallel import map_forked
from ..train import EPOCHS_DEFAULT, REPLICATE_DEFAULT
from ..trees import distill_targets, fit_gbt
from .refit_evidence import validation_setup

SEED = 2012
SEEDS = (2012, 2112)
class Recipe(NamedTuple):
    hide: float  # share of training stays hidden to one profile
    matched: bool  # teachers matched to the hidden profile (else the full-record teacher)
    profiles: str  # profiles hidden to: "all" or "vitals"
    summaries: bool = False  # running summaries appended to the inputs
    copies: bool = False  # hidden copies added to the batch instead of hiding the stay itself


RECIPES = {"1.3.0 (no hiding)": Recipe(0.0, False, "all"), "hide 0.3, full teacher": Recipe(0.3, False, "all"),
           "hide 0.3, matched teachers": Recipe(0.3, True, "all"), "hide 0.5, matched teachers": Recipe(0.5, True, "all"),
           "hidden copies of 0.5, full teacher": Recipe(0.5, False, "all", copies=True)}
# --summaries: the kept recipe with running summaries of every variable appended to the inputs
# (model.RunningSummaries), against trees that read such statistics directly.
SUMMARIES = {"hide 0.3, full teacher, summaries": Recipe(0.3, False, "all", summaries=True),
             "hide 0.3, matched teachers, summaries": Recipe(0.3, True, "all", summaries=True)}
# --specialist: networks that only ever see the vitals profile (for routing by input coverage).
SPECIALISTS = {"vitals specialist, full teacher": Recipe(1.0, False, "vitals"),
               "vitals specialist, vitals teacher": Recipe(1.0, True, "vitals")}


def profile_targets(train_stays, val_stays, manifest: dict, full_targets: np.ndarray, weight: float,
                    seed: int) -> np.ndarray:
    """[1 + profiles, N] soft targets: row 0 the full-record teacher's, then per hidden input profile
    the targets of trees fitted on that profile's inputs alone (its tree count chosen on validation),
    so that a stay read with only the vitals learns from a teacher that saw only the vitals."""
    rows = [full_targets]
    y_tr = np.array([s.died for s in train_stays])
    y_va = np.array([s.died for s in val_stays])
    for scenario in scenarios.SCENARIOS:
        if scenario["variables"] is None:
            continue
        f_tr = summary_features(scenarios.as_sent(train_stays, manifest, scenario), manifest)
        f_va = summary_features(scenarios.as_sent(val_stays, manifest, scenario), manifest)
        gbt, _ = fit_gbt(f_tr, y_tr, f_va, y_va, seed)
        rows.append(distill_targets(f_tr, y_tr, gbt, weight, seed))
    return np.stack(rows)


def main(argv: list[str] | None = None) -> None:
    import argparse
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--specialist", action="store_true", help="networks trained on the vitals profile alone")
    p.add_argument("--summaries", action="store_true", help="networks that also read running summaries")
    p.add_argument("--epochs", type=int, default=EPOCHS_DEFAULT, help="training epochs of every recipe")
    p.add_argument("--recipe", action="append", default=None, help="only these recipes (by name; repeatable)")
    p.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="network seeds of every recipe")
    p.add_argument("--architecture", choices=("lstm", "gru"), default="lstm")
    p.add_argument("--save", default=None, help="write every network's validation logits here (.npz)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    threadpool_limits(limits=1, user_api="blas")
    train, val, manifest = validation_setup()
    x, lengths = tensorize(train, manifest)
    y = np.array([s.died for s in train])
    y_va = np.array([s.died for s in val])
    f_tr, f_va = summary_features(train, manifest), summary_features(val, manifest)
    gbt, _ = fit_gbt(f_tr, y, f_va, y_va, SEED)
    full = distill_targets(f_tr, y, gbt, 0.5, SEED)
    profiles = scenarios.hiding_profiles(manifest)
    recipes = SPECIALISTS if args.specialist else SUMMARIES if args.summaries else RECIPES
    if args.recipe:
        recipes = {k: v for k, v in recipes.items() if k in args.recipe}
    # Row p + 1 of the targets is profile p's teacher: the vitals are profile 0 in both settings.
    matched = profile_targets(train, val, manifest, full, 0.5, SEED)
    hiding = {"all": Hiding(profiles=profiles, delta_cap=manifest["deltaCap"]),
              "vitals": Hiding(profiles=profiles[:1], delta_cap=manifest["deltaCap"])}

    def fit(job: tuple[str, int]):
        """One network of one recipe (in a forked process: the arrays are shared, not copied)."""
        name, seed = job
        torch.set_num_threads(1)
        r = recipes[name]
        cfg = FitConfig(replicate=REPLICATE_DEFAULT, epochs=args.epochs, hide=r.hide, hide_copies=r.copies,
                        architecture=args.architecture, summary_vars=len(manifest["variables"]) if r.summaries else 0)
        res = fit_one(x, lengths, y, None, None, None, cfg, seed=seed, log=lambda s: None,
                      targets=matched if r.matched else full, hiding=hiding[r.profiles])
        return name, seed, res.model
    views = [s for s in scenarios.SCENARIOS if s["name"] in ("full", "vitals", "vitals-routine-labs")]
    sent = {s["name"]: tensors_and_trees(s, train, val, y, y_va, manifest) for s in views}
    for name, (_, _, trees_auroc) in sent.items():
        print(f"trees, {name}: validation AUROC {trees_auroc:.4f}", flush=True)
    jobs = [(name, seed) for seed in args.seeds for name in recipes]
    results: dict[str, dict[str, list[float]]] = {}
    logits: dict[str, dict[str, list[np.ndarray]]] = {}
    for name, seed, model in map_forked(fit, jobs, 2):
        line = []
        for view, (x_va, l_va, _) in sent.items():
            z = predict_logits([model], x_va, l_va)
            logits.setdefault(name, {}).setdefault(view, []).append(z)
            auroc = float(roc_auc_score(y_va, z))
            results.setdefault(name, {}).setdefault(view, []).append(auroc)
            line.append(f"{view} {auroc:.4f}")
        print(f"{name}, seed {seed}: " + ", ".join(line), flush=True)
    if args.save:
        np.savez(args.save, y=y_va, **{f"{name}|{view}": np.stack(zs) for name, v in logits.items() for view, zs in v.items()})
    for name, views_ in results.items():
        print(f"{name}: mean " + ", ".join(f"{v} {np.mean(a):.4f}" for v, a in views_.items()))
        print_ensembles(name, logits[name], y_va)


def print_ensembles(name: str, logits: dict[str, list[np.ndarray]], y_va: np.ndarray) -> None:
    """AUROC of the mean logit of k networks, averaged over the disjoint groups of k seeds in run order
    (the shipped model averages two)."""
    n = len(next(iter(logits.values())))
    for k in sorted({2, 4, n} - {0, 1}):
        if k > n:
            continue
        groups = [range(i, i + k) for i in range(0, n - k + 1, k)]
        figures = {v: np.mean([roc_auc_score(y_va, np.mean([zs[i] for i in g], axis=0)) for g in groups])
                   for v, zs in logits.items()}
        print(f"{name}: ensembles of {k} ({len(groups)} groups) " + ", ".join(f"{v} {a:.4f}" for v, a in figures.items()))


def tensors_and_trees(scenario, train, val, y, y_va, manifest):
    tr, va = scenarios.as_sent(train, manifest, scenario), scenarios.as_sent(val, manifest, scenario)
    f_a, f_b = summary_features(tr, manifest), summary_features(va, manifest)
    trees, _ = fit_gbt(f_a, y, f_b, y_va, SEED)
    x_va, l_va = tensorize(va, manifest)
    return x_va, l_va, float(roc_auc_score(y_va, trees.predict_proba(f_b)[:, 1]))


if __name__ == "__main__":
    main()
