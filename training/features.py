"""Normalisation statistics, the split, tensors for the LSTM and summary features for the trees."""
from __future__ import annotations

import copy
from typing import Any, Sequence

import numpy as np
from sklearn.model_selection import train_test_split

from .data import Stay
from .preprocess import build_inputs, raw_statics


def stratified_split(stays: Sequence[Stay], seed: int, fractions=(0.70, 0.15, 0.15)) -> dict[str, list[str]]:
    """Fixed split of record ids, stratified by outcome and source set."""
    ids = np.array([s.record_id for s in stays])
    strata = np.array([f"{s.source}{s.died}" for s in stays])
    train_ids, rest_ids, _, rest_strata = train_test_split(ids, strata, train_size=fractions[0],
                                                           stratify=strata, random_state=seed)
    val_share = fractions[1] / (fractions[1] + fractions[2])
    val_ids, test_ids = train_test_split(rest_ids, train_size=val_share, stratify=rest_strata, random_state=seed + 1)
    return {"train": sorted(train_ids.tolist()), "validation": sorted(val_ids.tolist()), "test": sorted(test_ids.tolist())}


def fit_normalisation(manifest: dict[str, Any], train: Sequence[Stay]) -> dict[str, Any]:
    """Mean and std of every hourly value (after cleaning and binning) of the training split;
    statics over training stays that have them. A constant variable (MechVent is always 1
    when charted) keeps std 1: its information is in the mask."""
    m = copy.deepcopy(manifest)
    values = np.concatenate([s.values for s in train], axis=0)
    for j, v in enumerate(m["variables"]):
        col = values[:, j]
        col = col[~np.isnan(col)]
        mean = float(col.mean()) if col.size else 0.0
        std = float(col.std()) if col.size > 1 else 1.0
        v["mean"] = round(mean, 6)
        v["std"] = round(std, 6) if std > 1e-6 else 1.0
    for s in m["statics"]:
        if s["kind"] != "numeric":
            continue
        col = np.array([st.statics.get(s["name"]) for st in train if st.statics.get(s["name"]) is not None], dtype=float)
        s["mean"] = round(float(col.mean()), 6)
        s["std"] = round(float(col.std()), 6) or 1.0
    return m


def tensorize(stays: Sequence[Stay], manifest: dict[str, Any], keep: Sequence[str] | None = None,
              drop_statics: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """x [N, maxHours, n_inputs] float32 zero-padded, lengths [N]. `keep` blanks every other
    variable (and trims the trailing hours that are then empty), as if only those were sent."""
    names = [v["name"] for v in manifest["variables"]]
    keep_idx = None if keep is None else [names.index(k) for k in keep]
    kept_values, kept_statics = [], []
    for s in stays:
        values = s.values
        if keep_idx is not None:
            blank = np.full_like(values, np.nan)
            blank[:, keep_idx] = values[:, keep_idx]
            any_obs = np.where(~np.isnan(blank).all(axis=1))[0]
            values = blank[: (any_obs[-1] + 1 if any_obs.size else 1)]
        kept_values.append(values)
        kept_statics.append(raw_statics({k: None for k in s.statics} if drop_statics else s.statics, manifest))
    return build_inputs(kept_values, kept_statics, manifest)


def summary_features(stays: Sequence[Stay], manifest: dict[str, Any]) -> np.ndarray:
    """Per variable: first, last, min, max, median, count of the hourly values; plus the
    statics (NaN = missing). The gradient-boosted-trees baseline of the project brief."""
    rows = []
    for s in stays:
        v = s.values
        feats = []
        for j in range(v.shape[1]):
            col = v[:, j]
            col = col[~np.isnan(col)]
            if col.size:
                feats += [col[0], col[-1], col.min(), col.max(), float(np.median(col)), col.size]
            else:
                feats += [np.nan] * 5 + [0]
        for st in manifest["statics"]:
            val = s.statics.get(st["name"])
            feats.append(np.nan if val is None else float(val))
        rows.append(feats)
    return np.array(rows, dtype=np.float64)
