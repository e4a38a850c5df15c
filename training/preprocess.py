"""Hourly rows -> the model's input tensor, exactly as models/README.md ("Input tensor, hour
by hour") defines it from the manifest. src/clinical/ implements the same function in
TypeScript; test/fixtures/skew/expected.json holds this module's output for comparison."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np


def rows_to_array(rows: Sequence[Mapping[str, float | None]], manifest: dict[str, Any]) -> np.ndarray:
    """[T, V] float64 with NaN for missing, rows cut to the last maxHours."""
    names = [v["name"] for v in manifest["variables"]]
    rows = list(rows)[-manifest["maxHours"]:]
    out = np.full((len(rows), len(names)), np.nan)
    for t, row in enumerate(rows):
        for j, name in enumerate(names):
            v = row.get(name)
            if v is not None:
                out[t, j] = v
    return out


def static_vector(statics: Mapping[str, float | None], manifest: dict[str, Any]) -> np.ndarray:
    parts: list[float] = []
    for s in manifest["statics"]:
        v = statics.get(s["name"])
        if s["kind"] == "numeric":
            if v is None:
                parts += [0.0, 1.0]
            else:
                parts += [(float(v) - s["mean"]) / s["std"], 0.0]
        else:
            parts += [1.0 if v is not None and v == c else 0.0 for c in s["categories"]]
    return np.array(parts, dtype=np.float64)


def build_input(values: np.ndarray, statics_vec: np.ndarray, manifest: dict[str, Any]) -> np.ndarray:
    """values [T, V] (NaN = missing, canonical units) -> x [T, n_inputs] float64."""
    mean = np.array([v["mean"] for v in manifest["variables"]], dtype=np.float64)
    std = np.array([v["std"] for v in manifest["variables"]], dtype=np.float64)
    cap = float(manifest["deltaCap"])
    t_len, n_vars = values.shape
    observed = ~np.isnan(values)
    filled = np.empty_like(values)
    delta = np.empty_like(values)
    last = np.full(n_vars, np.nan)
    d = np.zeros(n_vars)
    for t in range(t_len):
        last = np.where(observed[t], values[t], last)
        filled[t] = last
        d = np.where(observed[t], 0.0, d + 1.0)  # d_{-1} = 0, so never observed gives t + 1
        delta[t] = d
    z = (filled - mean) / std
    z[np.isnan(z)] = 0.0  # never observed so far: the training mean
    x = np.concatenate([
        z,
        observed.astype(np.float64),
        np.minimum(delta, cap) / cap,
        np.broadcast_to(statics_vec, (t_len, statics_vec.shape[0])),
    ], axis=1)
    return x


def preprocess(rows: Sequence[Mapping[str, float | None]], statics: Mapping[str, float | None],
               manifest: dict[str, Any]) -> np.ndarray:
    return build_input(rows_to_array(rows, manifest), static_vector(statics, manifest), manifest)
