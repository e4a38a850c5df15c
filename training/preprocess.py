"""Hourly rows -> the model's input tensor, as models/README.md ("Input tensor, hour by hour")
defines it from the manifest. `InputTensor` is its one definition: training runs it, and
training/export.py puts the same module at the front of the ONNX graph, so the service sends
only the binned values and the raw statics."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


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


def raw_statics(statics: Mapping[str, float | None], manifest: dict[str, Any]) -> np.ndarray:
    """[S] float64 in the manifest's order: a numeric static's value, a categorical's code; NaN if missing."""
    out = [statics.get(s["name"]) for s in manifest["statics"]]
    return np.array([np.nan if v is None else float(v) for v in out], dtype=np.float64)


class InputTensor(nn.Module):
    """values [batch, time, V] float64 (NaN = not measured that hour) and statics [batch, S]
    float64 (raw_statics) -> x [batch, time, 3V + static width] float32: per variable the
    forward-filled normalised value (0, the training mean, before the first observation), the
    observed mask and min(hours since observed, deltaCap) / deltaCap (t + 1 if never observed);
    then the statics, numeric as (value - mean) / std and a missing flag, categorical one-hot.
    Normalisation is float64, as the numpy code this replaced computed it, rounded once to
    float32; the deltas' float32 division equals that code's rounded float64 one (a test checks
    every integer deltaCap up to 199). Written for the exported graph's cost: no cummax (ONNX
    lacks it), no shape-dependent padding per step, statics encoded by column gathers."""

    def __init__(self, manifest: dict[str, Any]):
        super().__init__()
        variables = manifest["variables"]
        self.max_hours = int(manifest["maxHours"])
        self.delta_cap = float(manifest["deltaCap"])
        self.register_buffer("mean", torch.tensor([v["mean"] for v in variables], dtype=torch.float64))
        self.register_buffer("std", torch.tensor([v["std"] for v in variables], dtype=torch.float64))
        specs = manifest["statics"]
        numeric = [i for i, s in enumerate(specs) if s["kind"] == "numeric"]
        onehot = [(i, float(c)) for i, s in enumerate(specs) if s["kind"] == "categorical" for c in s["categories"]]
        self.register_buffer("numeric_columns", torch.tensor(numeric, dtype=torch.int64))
        self.register_buffer("numeric_mean", torch.tensor([specs[i]["mean"] for i in numeric], dtype=torch.float64))
        self.register_buffer("numeric_std", torch.tensor([specs[i]["std"] for i in numeric], dtype=torch.float64))
        self.register_buffer("onehot_columns", torch.tensor([i for i, _ in onehot], dtype=torch.int64))
        self.register_buffer("codes", torch.tensor([c for _, c in onehot], dtype=torch.float64))
        self.register_buffer("static_order", torch.tensor(_static_order(specs), dtype=torch.int64))

    def forward(self, values: torch.Tensor, statics: torch.Tensor) -> torch.Tensor:
        observed = ~torch.isnan(values)
        z_observed = ((values - self.mean) / self.std).to(torch.float32)
        # Hours as float32 (small integers, exact); the last observed hour, -1 before the first.
        hour = torch.cumsum(torch.ones_like(values[:1, :, :1], dtype=torch.float32), dim=1) - 1
        last = (hour + 1) * observed.to(torch.float32) - 1
        # Running maximum over time: 2^k - 1 >= maxHours - 1 hours of -1 padded in front once,
        # then each step keeps max(hour j, hour j - s) and drops s hours from the front.
        shifts = [2 ** k for k in range(max(1, (self.max_hours - 1).bit_length()))]
        last = F.pad(last, (0, 0, sum(shifts), 0), value=-1.0)
        for shift in shifts:
            last = torch.maximum(last[:, shift:], last[:, :-shift])
        filled = torch.gather(z_observed, 1, torch.clamp(last, min=0).long())
        z = torch.where(last >= 0, filled, torch.zeros_like(filled))
        delta = torch.clamp(hour - last, max=self.delta_cap) / self.delta_cap
        static_part = self._encode_statics(statics).unsqueeze(1).expand(-1, values.shape[1], -1)
        return torch.cat([z, observed.to(torch.float32), delta, static_part], dim=2)

    def _encode_statics(self, statics: torch.Tensor) -> torch.Tensor:
        numeric = statics[:, self.numeric_columns]
        missing = torch.isnan(numeric)
        scaled = torch.where(missing, torch.zeros_like(numeric), (numeric - self.numeric_mean) / self.numeric_std)
        onehot = statics[:, self.onehot_columns] == self.codes
        parts = [scaled.to(torch.float32), missing.to(torch.float32), onehot.to(torch.float32)]
        return torch.cat(parts, dim=1)[:, self.static_order]


def _static_order(specs: list[dict[str, Any]]) -> list[int]:
    """Where each encoded static column of [scaled..., missing..., one-hot...] goes in the
    manifest's order (numeric: value, missing flag; categorical: its categories)."""
    scaled, missing, onehot, width = [], [], [], 0
    for s in specs:
        if s["kind"] == "numeric":
            scaled.append(width)
            missing.append(width + 1)
            width += 2
        else:
            onehot += range(width, width + len(s["categories"]))
            width += len(s["categories"])
    order = [0] * width
    for k, position in enumerate(scaled + missing + onehot):
        order[position] = k
    return order


def build_input(values: np.ndarray, statics: np.ndarray, manifest: dict[str, Any]) -> np.ndarray:
    """One stay: values [T, V] (NaN = missing, canonical units), raw_statics [S] -> x [T, n_inputs] float32."""
    with torch.no_grad():
        x = InputTensor(manifest)(torch.from_numpy(values[None]), torch.from_numpy(statics[None]))
    return x[0].numpy()


def build_inputs(stays_values: Sequence[np.ndarray], stays_statics: Sequence[np.ndarray], manifest: dict[str, Any],
                 chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Many stays -> x [N, maxHours, n_inputs] float32, zero after each stay's last hour, and lengths [N]."""
    module = InputTensor(manifest)
    max_hours = manifest["maxHours"]
    lengths = np.array([v.shape[0] for v in stays_values], dtype=np.int64)
    out: list[np.ndarray] = []
    for start in range(0, len(stays_values), chunk):
        part = stays_values[start:start + chunk]
        values = np.full((len(part), max_hours, part[0].shape[1]), np.nan)
        for i, v in enumerate(part):
            values[i, : v.shape[0]] = v
        with torch.no_grad():
            x = module(torch.from_numpy(values), torch.from_numpy(np.stack(stays_statics[start:start + chunk]))).numpy()
        for i, v in enumerate(part):
            x[i, v.shape[0]:] = 0.0
        out.append(x)
    return np.concatenate(out), lengths


def preprocess(rows: Sequence[Mapping[str, float | None]], statics: Mapping[str, float | None],
               manifest: dict[str, Any]) -> np.ndarray:
    return build_input(rows_to_array(rows, manifest), raw_statics(statics, manifest), manifest)
