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
    float64 (raw_statics) -> x [batch, time, 3V + static width] float64: per variable the
    forward-filled normalised value (0, the training mean, before the first observation), the
    observed mask and min(hours since observed, deltaCap) / deltaCap (t + 1 if never observed);
    then the statics, numeric as (value - mean) / std and a missing flag, categorical one-hot.
    Float64 throughout so that training's tensors are exactly the numbers the graph computes.
    Only ONNX-exportable operators (no cummax): the last observation's hour comes from
    ceil(log2(maxHours)) shifted maxima."""

    def __init__(self, manifest: dict[str, Any]):
        super().__init__()
        variables = manifest["variables"]
        self.max_hours = int(manifest["maxHours"])
        self.delta_cap = float(manifest["deltaCap"])
        self.register_buffer("mean", torch.tensor([v["mean"] for v in variables], dtype=torch.float64))
        self.register_buffer("std", torch.tensor([v["std"] for v in variables], dtype=torch.float64))
        self.statics = [dict(s) for s in manifest["statics"]]
        for i, spec in enumerate(self.statics):
            if spec["kind"] == "categorical":
                self.register_buffer(f"codes{i}", torch.tensor([spec["categories"]], dtype=torch.float64))

    def forward(self, values: torch.Tensor, statics: torch.Tensor) -> torch.Tensor:
        time = values.shape[1]
        observed = ~torch.isnan(values)
        hour = torch.arange(time, dtype=torch.int64).view(1, -1, 1)
        last = torch.where(observed, hour, torch.full_like(hour, -1))
        shift = 1
        while shift < self.max_hours:
            earlier = F.pad(last, (0, 0, shift, 0), value=-1)[:, :time]
            last = torch.maximum(last, earlier)
            shift *= 2
        seen = last >= 0
        filled = torch.gather(values, 1, torch.clamp(last, min=0))
        zero = torch.zeros_like(values)
        z = torch.where(seen, (filled - self.mean) / self.std, zero)
        delta = torch.clamp((hour - last).to(torch.float64), max=self.delta_cap) / self.delta_cap
        static_row = self._encode_statics(statics)
        static_part = static_row.unsqueeze(1).expand(-1, time, -1)
        return torch.cat([z, observed.to(torch.float64), delta, static_part], dim=2)

    def _encode_statics(self, statics: torch.Tensor) -> torch.Tensor:
        parts = []
        for i, spec in enumerate(self.statics):
            column = statics[:, i:i + 1]
            missing = torch.isnan(column)
            if spec["kind"] == "numeric":
                scaled = (column - spec["mean"]) / spec["std"]
                parts += [torch.where(missing, torch.zeros_like(column), scaled), missing.to(torch.float64)]
            else:
                parts.append((column == getattr(self, f"codes{i}")).to(torch.float64))
        return torch.cat(parts, dim=1)


def build_input(values: np.ndarray, statics: np.ndarray, manifest: dict[str, Any]) -> np.ndarray:
    """One stay: values [T, V] (NaN = missing, canonical units), raw_statics [S] -> x [T, n_inputs] float64."""
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
        out.append(x.astype(np.float32))
    return np.concatenate(out), lengths


def preprocess(rows: Sequence[Mapping[str, float | None]], statics: Mapping[str, float | None],
               manifest: dict[str, Any]) -> np.ndarray:
    return build_input(rows_to_array(rows, manifest), raw_statics(statics, manifest), manifest)
