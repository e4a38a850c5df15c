"""The two validation-split checks behind version 1.3.0's fixed schedule and refit
(training/README.md, "Version 1.3.0"). Neither reads the held-out test split.

    /usr/bin/python3 -m training.experiments.refit_evidence learning-curve   (about 5 minutes on 2 cores)
        one network (the 1.2.0 recipe, early stopping) on a stratified 70% of the training split
        against the whole split, seeds 2012 / 2112 / 2212, and the trees on both
    /usr/bin/python3 -m training.experiments.refit_evidence epoch-curve      (about 4 minutes)
        validation AUROC after each of 14 epochs of one network, early stopping off, seeds 2012-2312
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from ..data import DEFAULT_CACHE, DEFAULT_DATA, load_stays
from ..features import fit_normalisation, stratified_split, summary_features, tensorize
from ..fit import FitConfig, fit_one
from ..spec import base_manifest
from ..parallel import map_forked
from ..train import REPLICATE_DEFAULT
from ..trees import distill_targets, fit_gbt

SEED = 2012


def validation_setup(data: str = DEFAULT_DATA, cache: str = DEFAULT_CACHE):
    """The training and validation stays of the shipped split, and a manifest normalised on training."""
    manifest = base_manifest("icu-mortality", "evidence", "2026-12-02T00:00:00Z", hidden=FitConfig.hidden,
                             bootstrap=False, description="validation checks", ensemble=1)
    stays = load_stays(manifest, data, cache)
    by_id = {s.record_id: s for s in stays}
    split = stratified_split(stays, SEED)
    train, val = ([by_id[i] for i in split[k]] for k in ("train", "validation"))
    return train, val, fit_normalisation(manifest, train)


def training_set(name: str, stays, manifest, f_va, y_va) -> dict:
    """Tensors and the trees' soft targets of one training set."""
    x, lengths = tensorize(stays, manifest)
    y = np.array([s.died for s in stays])
    f = summary_features(stays, manifest)
    gbt, trees = fit_gbt(f, y, f_va, y_va, SEED)
    print(f"{name}: {len(stays)} stays, trees' validation AUROC {roc_auc_score(y_va, gbt.predict_proba(f_va)[:, 1]):.4f} "
          f"({trees} trees)", flush=True)
    return {"x": x, "l": lengths, "y": y, "targets": distill_targets(f, y, gbt, 0.5, SEED)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("check", choices=("learning-curve", "epoch-curve"))
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--cache", default=DEFAULT_CACHE)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    threadpool_limits(limits=1, user_api="blas")

    train, val, manifest = validation_setup(args.data, args.cache)
    x_va, l_va = tensorize(val, manifest)
    y_va = np.array([s.died for s in val])
    f_va = summary_features(val, manifest)
    sets = {"whole": training_set("whole", train, manifest, f_va, y_va)}
    if args.check == "learning-curve":
        # 70% = 5,600 / 8,000: the step from this subsample to the whole split is the refit's step.
        y_tr = np.array([s.died for s in train])
        kept, _ = train_test_split(np.arange(len(train)), train_size=0.7, stratify=y_tr, random_state=7)
        sets["70%"] = training_set("70%", [train[i] for i in kept], manifest, f_va, y_va)
        cfg = FitConfig(replicate=REPLICATE_DEFAULT)
        jobs = [(name, seed) for seed in (2012, 2112, 2212) for name in ("70%", "whole")]
    else:
        cfg = FitConfig(replicate=REPLICATE_DEFAULT, patience=FitConfig.max_epochs)
        jobs = [("whole", seed) for seed in (2012, 2112, 2212, 2312)]

    def fit(job: tuple[str, int]):
        """One network (in a forked process: the arrays are shared, not copied)."""
        name, seed = job
        torch.set_num_threads(1)
        w = sets[name]
        return name, seed, fit_one(w["x"], w["l"], w["y"], x_va, l_va, y_va, cfg, seed=seed, log=lambda s: None,
                                   targets=w["targets"])

    results: dict[str, list] = {}
    for name, seed, res in map_forked(fit, jobs, 2):
        if args.check == "learning-curve":
            print(f"{name} seed {seed}: best epoch {res.best_epoch}, validation AUROC {res.best_val_auroc:.4f}",
                  flush=True)
            results.setdefault(name, []).append(res.best_val_auroc)
        else:
            curve = [h["valAuroc"] for h in res.history]
            print(f"seed {seed}: " + " ".join(f"{v:.4f}" for v in curve), flush=True)
            results.setdefault("curve", []).append(curve)
    if args.check == "learning-curve":
        for name, aurocs in results.items():
            print(f"{name}: mean validation AUROC {np.mean(aurocs):.4f} (sd {np.std(aurocs, ddof=1):.4f})")
    else:
        mean = np.mean(results["curve"], axis=0)
        print("mean per epoch: " + " ".join(f"{v:.4f}" for v in mean)
              + f"; best epoch {int(np.argmax(mean)) + 1} (1-based)")


if __name__ == "__main__":
    main()
