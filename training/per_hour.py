"""Adds `probability_per_hour` [batch, time] to a network graph of training/export.py: the
calibrated probability after every hour, from the same pass that gives `probability`.

The last recurrent layer's `Y` (its output at every hour; ONNX `sequence_lens` leaves zeros past a
stay's length) goes through each member's head, the ensemble mean, the temperature and the
Sigmoid, exactly as `Y_h` does for `probability`. Hours past a stay's length are NaN (the logit is
masked before the Sigmoid, so a recalibration folded in by src/model/recalibrate-graph.ts, which
rewrites every Sigmoid-fed output, folds into this output too). The network is causal and the
input tensor has no look-ahead (forward fill, masks and deltas read earlier hours only; statics
and a hybrid's note are per stay), so hour t's value equals the first t + 1 hours scored alone;
training/tests/test_per_hour.py checks it. Works on a graph from build_onnx and on a shipped
model.onnx alike (it reads the node and initializer names build_onnx writes), and leaves every
node that computes `probability` as it was.

CLI:  /usr/bin/python3 -m training.per_hour models/icu-mortality/1.6.0 [...]   (rewrites model.onnx
      and the manifest's onnx.outputs.perHour in place)
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

PER_HOUR = "probability_per_hour"
_RECURRENT = ("LSTM", "GRU")


def branches(graph: onnx.GraphProto) -> list[tuple[str, str, onnx.NodeProto]]:
    """(prefix, architecture, last recurrent node) of each ensemble member, in graph order."""
    out = []
    for node in graph.node:
        arch = node.op_type.lower()
        if node.op_type in _RECURRENT and node.name.endswith(f"{arch}1"):
            out.append((node.name[: -len(f"{arch}1")], arch, node))
    if not out:
        raise ValueError("no second LSTM/GRU layer named as training/export.py names it")
    return out


def has_per_hour(model: onnx.ModelProto) -> bool:
    return any(o.name == PER_HOUR for o in model.graph.output)


def add_per_hour(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same model with the `probability_per_hour` output added (in place, and returned)."""
    graph = model.graph
    if has_per_hour(model):
        raise ValueError(f"the graph already has {PER_HOUR}")
    inits = {i.name for i in graph.initializer}
    nodes: list = []
    new_inits: list = [numpy_helper.from_array(np.array([2], dtype=np.int64), "per_hour/axis2"),
                       numpy_helper.from_array(np.array(np.nan, dtype=np.float32), "per_hour/nan"),
                       numpy_helper.from_array(np.array(0, dtype=np.int64), "per_hour/zero"),
                       numpy_helper.from_array(np.array(1, dtype=np.int64), "per_hour/one"),
                       numpy_helper.from_array(np.array([1, 1], dtype=np.int64), "per_hour/ones2")]
    logits = []
    for prefix, arch, last in branches(graph):
        p = f"per_hour/{prefix}"
        y = f"{prefix}{arch}1_Y"
        last.output[0] = y  # [time, 1, batch, hidden]: the layer's output at every hour
        seq = f"{p}seq"
        nodes.append(helper.make_node("Squeeze", [y, "axis1"], [seq], name=f"{p}squeeze_Y"))
        if f"{prefix}note_W" in inits:
            seq = _fuse_note_per_hour(prefix, p, seq, nodes)
        for k in (1, 2):
            w = f"{prefix}fc{k}_W"
            if w not in inits:
                raise ValueError(f"the graph has no initializer {w}")
            nodes.append(helper.make_node("Transpose", [w], [f"{p}fc{k}_WT"], name=f"{p}fc{k}_WT", perm=[1, 0]))
            nodes.append(helper.make_node("MatMul", [seq, f"{p}fc{k}_WT"], [f"{p}fc{k}_mm"], name=f"{p}fc{k}_mm"))
            nodes.append(helper.make_node("Add", [f"{p}fc{k}_mm", f"{prefix}fc{k}_b"], [f"{p}fc{k}"], name=f"{p}fc{k}"))
            if k == 1:
                nodes.append(helper.make_node("Relu", [f"{p}fc1"], [f"{p}relu"], name=f"{p}relu"))
                seq = f"{p}relu"
        logits.append(f"{p}fc2")  # [time, batch, 1]
    logit = logits[0]
    if len(logits) > 1:
        logit = "per_hour/logit"
        nodes.append(helper.make_node("Mean", logits, [logit], name="per_hour/ensemble_mean"))
    nodes += [
        helper.make_node("Div", [logit, "temperature"], ["per_hour/calibrated_tb1"], name="per_hour/calibration"),
        helper.make_node("Squeeze", ["per_hour/calibrated_tb1", "per_hour/axis2"], ["per_hour/calibrated_tb"],
                         name="per_hour/squeeze"),
        helper.make_node("Transpose", ["per_hour/calibrated_tb"], ["per_hour/calibrated"], name="per_hour/batch_major",
                         perm=[1, 0]),
        # Hour t is real when t < lengths[b]: Range(0, time) against lengths as a column.
        helper.make_node("Shape", ["per_hour/calibrated"], ["per_hour/shape"], name="per_hour/shape"),
        helper.make_node("Gather", ["per_hour/shape", "per_hour/one"], ["per_hour/time"], name="per_hour/time", axis=0),
        helper.make_node("Range", ["per_hour/zero", "per_hour/time", "per_hour/one"], ["per_hour/hours"],
                         name="per_hour/hours"),
        helper.make_node("Cast", ["lengths"], ["per_hour/lengths64"], name="per_hour/lengths64", to=TensorProto.INT64),
        helper.make_node("Unsqueeze", ["per_hour/lengths64", "axis1"], ["per_hour/lengths_col"],
                         name="per_hour/lengths_col"),
        helper.make_node("Less", ["per_hour/hours", "per_hour/lengths_col"], ["per_hour/real"], name="per_hour/real"),
        helper.make_node("Where", ["per_hour/real", "per_hour/calibrated", "per_hour/nan"], ["per_hour/masked"],
                         name="per_hour/mask"),
        helper.make_node("Sigmoid", ["per_hour/masked"], [PER_HOUR], name="per_hour/sigmoid"),
    ]
    graph.node.extend(nodes)
    graph.initializer.extend(new_inits)
    graph.output.append(helper.make_tensor_value_info(PER_HOUR, TensorProto.FLOAT, ["batch", "time"]))
    onnx.checker.check_model(model, full_check=True)
    return model


def _fuse_note_per_hour(prefix: str, p: str, seq: str, nodes: list) -> str:
    """The hybrid's [h_t, ReLU(note W^T + b)] at every hour: the note's projection repeated over time."""
    note = f"{prefix}note_relu"  # [batch, note_hidden], computed once by the graph's own note_proj
    nodes += [
        helper.make_node("Unsqueeze", [note, "axis0"], [f"{p}note_1b"], name=f"{p}note_1b"),
        helper.make_node("Shape", [seq], [f"{p}seq_shape"], name=f"{p}seq_shape"),
        helper.make_node("Slice", [f"{p}seq_shape", "axis0", "axis1"], [f"{p}time_dim"], name=f"{p}time_dim"),
        helper.make_node("Concat", [f"{p}time_dim", "per_hour/ones2"], [f"{p}expand_to"], name=f"{p}expand_to", axis=0),
        helper.make_node("Expand", [f"{p}note_1b", f"{p}expand_to"], [f"{p}note_tb"], name=f"{p}note_tb"),
        helper.make_node("Concat", [seq, f"{p}note_tb"], [f"{p}fused"], name=f"{p}fuse", axis=2),
    ]
    return f"{p}fused"


def rewrite(model_dir: str) -> None:
    """Adds the output to model_dir's model.onnx and names it in its manifest (onnx.outputs.perHour)."""
    with open(os.path.join(model_dir, "manifest.json")) as f:
        manifest = json.load(f)
    path = os.path.join(model_dir, manifest["onnx"]["file"])
    onnx.save(add_per_hour(onnx.load(path)), path)
    manifest["onnx"]["outputs"] = {**manifest["onnx"].get("outputs", {}), "perHour": PER_HOUR}
    from .export import write_manifest
    write_manifest(model_dir, manifest)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=f"Add the {PER_HOUR} output to exported models.")
    p.add_argument("model_dirs", nargs="+", help="folders models/<name>/<version>/")
    for model_dir in p.parse_args(argv).model_dirs:
        rewrite(model_dir)
        print(f"added {PER_HOUR} to {model_dir}")


if __name__ == "__main__":
    main()
