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
    node = require_node()
    inputs = {"x": np.asarray(x, dtype=np.float64).tolist(), "lengths": [int(v) for v in lengths]}
    if note is not None:
        inputs["note"] = np.asarray(note, dtype=np.float64).tolist()
    payload = json.dumps(inputs)
    proc = subprocess.run([node, SCRIPT, model_path], input=payload, capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"ort_run.mjs failed: {proc.stderr}")
    out = json.loads(proc.stdout)
    return np.array(out["probability"], dtype=np.float64)
