"""The gradient-boosted trees on summary statistics: the baseline the networks must beat, and the
teacher of their distillation targets."""
from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

# Folds of the out-of-fold teacher: no stay's own label leaks into its soft target.
DISTILL_FOLDS = 5


def fit_gbt(f_tr, y_tr, f_va, y_va, seed: int) -> tuple[HistGradientBoostingClassifier, int]:
    """HistGradientBoosting on summary statistics; the number of trees is chosen on validation
    AUROC (learning rate and leaf count were tuned the same way, training/README.md)."""
    gbt = HistGradientBoostingClassifier(learning_rate=0.03, max_iter=800, max_leaf_nodes=15, min_samples_leaf=20,
                                         l2_regularization=1.0, early_stopping=False, random_state=seed)
    gbt.fit(f_tr, y_tr)
    scores = [roc_auc_score(y_va, p[:, 1]) for p in gbt.staged_predict_proba(f_va)]
    best = int(np.argmax(scores)) + 1
    gbt.set_params(max_iter=best)
    gbt.fit(f_tr, y_tr)
    return gbt, best


def distill_targets(f: np.ndarray, y: np.ndarray, gbt: HistGradientBoostingClassifier, weight: float,
                    seed: int) -> np.ndarray:
    """(1 - weight) x label + weight x the trees' out-of-fold probability (DISTILL_FOLDS folds)."""
    oof = np.zeros(len(y))
    for fold, (a, b) in enumerate(StratifiedKFold(DISTILL_FOLDS, shuffle=True, random_state=seed).split(f, y)):
        g = HistGradientBoostingClassifier(**{**gbt.get_params(), "random_state": seed + fold})
        oof[b] = g.fit(f[a], y[a]).predict_proba(f[b])[:, 1]
    print(f"GBT out-of-fold AUROC on the networks' training stays {roc_auc_score(y, oof):.4f}", flush=True)
    return (1 - weight) * y + weight * oof
