"""Runs any ONNX graph through onnxruntime-node on named numpy feeds (ort_feeds.mjs), several runs in
one session: the per-hour output and the step graph's state and carry, which ort.py's fixed
interface does not carry."""
from __future__ import annotations

import json
import os
import subprocess

import numpy as np

from .ort import ROOT, require_node

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ort_feeds.mjs")
_TYPES = {np.dtype(np.float64): "float64", np.dtype(np.float32): "float32", np.dtype(np.int32): "int32"}


def _tensor(a: np.ndarray) -> dict:
    a = np.asarray(a)
    flat = a.ravel().astype(np.float64)
    return {"type": _TYPES[a.dtype], "dims": list(a.shape),
            "data": [None if np.isnan(v) else float(v) for v in flat]}


def run_feeds(model_path: str, runs: list[dict[str, np.ndarray]], fetch: list[str],
              feedback: dict[str, str] | None = None) -> list[dict[str, np.ndarray]]:
    """One dict of outputs (float64 arrays, NaN kept) per dict of feeds, in order. `feedback`
    {output: input}: each run after the first takes that input from the previous run's output
    (as ONNX Runtime returned it, never through JSON), e.g. a step graph's state."""
    node = require_node()
    payload = {"fetch": fetch, "runs": [{k: _tensor(v) for k, v in feeds.items()} for feeds in runs],
               "feedback": feedback or {}}
    proc = subprocess.run([node, SCRIPT, model_path], input=json.dumps(payload), capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"ort_feeds.mjs failed: {proc.stderr}")
    out = []
    for run in json.loads(proc.stdout)["runs"]:
        out.append({k: np.array([np.nan if v is None else v for v in t["data"]], dtype=np.float64).reshape(t["dims"])
                    for k, t in run.items()})
    return out
