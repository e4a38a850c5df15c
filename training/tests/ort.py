"""Runs ONNX models through onnxruntime-node (the service's runtime) from the Python tests."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ort_run.mjs")


def require_node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: ONNX Runtime parity is checked with onnxruntime-node")
    if not os.path.isdir(os.path.join(ROOT, "node_modules", "onnxruntime-node")):
        pytest.skip("onnxruntime-node is not installed (run npm install first)")
    return node


def run_onnx(model_path: str, x: np.ndarray, lengths: np.ndarray, note: np.ndarray | None = None) -> np.ndarray:
    """The network alone (training.export.build_onnx): x in."""
    return _run(model_path, {"x": np.asarray(x, dtype=np.float64).tolist()}, lengths, note)


def run_shipped(model_path: str, values: np.ndarray, statics: np.ndarray, lengths: np.ndarray,
                note: np.ndarray | None = None) -> np.ndarray:
    """A shipped graph: raw values [batch, time, V] and statics [batch, S], NaN = missing."""
    return _run(model_path, {"values": _with_nulls(values), "statics": _with_nulls(statics)}, lengths, note)


def input_tensor_of(model_path: str, values: np.ndarray, statics: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The x a shipped graph computes (its second output), [batch, time, n_inputs] float32."""
    out = _run(model_path, {"values": _with_nulls(values), "statics": _with_nulls(statics), "fetchX": True},
               lengths, None, key="x")
    return out.reshape(values.shape[0], values.shape[1], -1).astype(np.float32)


def _with_nulls(a: np.ndarray) -> list:
    a = np.asarray(a, dtype=np.float64)
    return np.where(np.isnan(a), None, a).tolist()


def _run(model_path: str, inputs: dict, lengths: np.ndarray, note: np.ndarray | None,
         key: str = "probability") -> np.ndarray:
    node = require_node()
    inputs = {**inputs, "lengths": [int(v) for v in lengths]}
    if note is not None:
        inputs["note"] = np.asarray(note, dtype=np.float64).tolist()
    proc = subprocess.run([node, SCRIPT, model_path], input=json.dumps(inputs), capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"ort_run.mjs failed: {proc.stderr}")
    out = json.loads(proc.stdout)
    return np.array(out[key], dtype=np.float64)
