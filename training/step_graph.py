"""The one-step graph (step.onnx) of an exported model: one hour in, the probability after it out,
the network's recurrent state and the input tensor's carry in and out (models/README.md, "Step
graph"). Stepping a stay hour by hour from the zero state gives model.onnx's probability of every
prefix (training/tests/test_step_graph.py), at the cost of one hour per call.

Built from model.onnx itself (its ONNX-ordered LSTM/GRU weights, heads, note projection and
temperature, by the names training/export.py writes), so shipped versions, whose PyTorch
checkpoints are not shipped, get one too. The input tensor's hour (StepInput) reuses
InputTensor's normalisation and statics encoding and is exported by PyTorch, as the whole-stay
one is (training/export.py, input_tensor_onnx).

CLI:  /usr/bin/python3 -m training.step_graph models/icu-mortality/1.6.0 [...]   (writes step.onnx
      and the manifest's onnx.step)
"""
from __future__ import annotations

import argparse
import io
import json
import os
import warnings
from typing import Any

import numpy as np
import onnx
import torch
from onnx import TensorProto, compose, helper, numpy_helper

from .per_hour import branches
from .preprocess import InputTensor
from .spec import input_width

STEP_FILE = "step.onnx"
OPSET = 17
LAYERS = 2


class StepInput(torch.nn.Module):
    """One hour of InputTensor: values [batch, 1, V] float64, statics [batch, S] float64 and carry
    [batch, 2, V] float32 (row 0: the last observed normalised value, 0 before any; row 1: hours
    since it was observed, d_{t-1}, 0 before the first hour, kept capped at deltaCap, which
    min(d, deltaCap) cannot tell apart) -> x [batch, n_inputs] float32 and the new carry."""

    def __init__(self, manifest: dict[str, Any]):
        super().__init__()
        self.tensor = InputTensor(manifest)

    def forward(self, values: torch.Tensor, statics: torch.Tensor, carry: torch.Tensor):
        t = self.tensor
        hour = values[:, 0, :]
        observed = ~torch.isnan(hour)
        z_observed = ((hour - t.mean) / t.std).to(torch.float32)
        z = torch.where(observed, z_observed, carry[:, 0, :])
        since = torch.where(observed, torch.zeros_like(z), torch.clamp(carry[:, 1, :] + 1.0, max=t.delta_cap))
        x = torch.cat([z, observed.to(torch.float32), since / t.delta_cap, t._encode_statics(statics)], dim=1)
        return x, torch.stack([z, since], dim=1)


def step_input_onnx(manifest: dict[str, Any]) -> onnx.ModelProto:
    n_vars, n_statics = len(manifest["variables"]), len(manifest["statics"])
    values = torch.randn(2, 1, n_vars, dtype=torch.float64)
    values[0, 0, 1] = float("nan")
    statics = torch.ones(2, n_statics, dtype=torch.float64)
    carry = torch.zeros(2, 2, n_vars, dtype=torch.float32)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # as in export.input_tensor_onnx
        torch.onnx.export(StepInput(manifest).eval(), (values, statics, carry), buffer, opset_version=OPSET,
                          input_names=["values", "statics", "carry"], output_names=["x", "carry_out"],
                          dynamic_axes={"values": {0: "batch"}, "statics": {0: "batch"}, "carry": {0: "batch"},
                                        "x": {0: "batch"}, "carry_out": {0: "batch"}})
    return onnx.load_from_string(buffer.getvalue())


def state_layout(model: onnx.ModelProto) -> tuple[str, int, int, int]:
    """(architecture, ensemble members, tensors per layer: 2 for an LSTM's h and c, 1 for a GRU's h, hidden)."""
    found = branches(model.graph)
    arch = found[0][1]
    hidden = next(a.i for a in found[0][2].attribute if a.name == "hidden_size")
    return arch, len(found), 2 if arch == "lstm" else 1, hidden


def _network_step(model: onnx.ModelProto, n_inputs: int) -> onnx.ModelProto:
    """x [batch, n_inputs], state [batch, K, hidden] (and note) -> probability [batch], state_out."""
    arch, members, per_layer, hidden = state_layout(model)
    source = {i.name: i for i in model.graph.initializer}
    hybrid = any(name.endswith("note_W") for name in source)
    inits = [numpy_helper.from_array(np.array([0], dtype=np.int64), "axis0"),
             numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"), source["temperature"]]
    nodes = [helper.make_node("Unsqueeze", ["x", "axis0"], ["x_seq"], name="x_seq"),
             helper.make_node("Transpose", ["state"], ["state_tm"], name="state_time_major", perm=[1, 0, 2])]
    outs, logits, k = [], [], 0
    for prefix, _, _ in branches(model.graph):
        layer_in = "x_seq"
        for layer in range(LAYERS):
            base = f"{prefix}{arch}{layer}"
            inits += [source[f"{base}_{w}"] for w in ("W", "R", "B")]
            initial = []
            for _ in range(per_layer):
                nodes.append(helper.make_node("Slice", ["state_tm", f"k{k}", f"k{k + 1}", "axis0"], [f"state{k}"],
                                              name=f"state{k}"))
                initial.append(f"state{k}")
                k += 1
            produced = [f"{base}_Y", f"{base}_Y_h"] + ([f"{base}_Y_c"] if arch == "lstm" else [])
            extra = {"linear_before_reset": 1} if arch == "gru" else {}
            nodes.append(helper.make_node(arch.upper(), [layer_in, *(f"{base}_{w}" for w in "WRB"), "", *initial],
                                          produced, name=base, hidden_size=hidden, direction="forward", **extra))
            outs += produced[1:]
            layer_in = f"{base}_Y_h"  # [1, batch, hidden]: one hour, so Y_h is the next layer's input
        last = f"{prefix}h_last"
        nodes.append(helper.make_node("Squeeze", [layer_in, "axis0"], [last], name=f"{prefix}squeeze_h"))
        if hybrid:
            inits += [source[f"{prefix}note_W"], source[f"{prefix}note_b"]]
            nodes += [helper.make_node("Gemm", ["note", f"{prefix}note_W", f"{prefix}note_b"], [f"{prefix}note_lin"],
                                       name=f"{prefix}note_proj", transB=1),
                      helper.make_node("Relu", [f"{prefix}note_lin"], [f"{prefix}note_relu"], name=f"{prefix}note_relu"),
                      helper.make_node("Concat", [last, f"{prefix}note_relu"], [f"{prefix}fused"], name=f"{prefix}fuse",
                                       axis=1)]
            last = f"{prefix}fused"
        inits += [source[f"{prefix}fc{j}_{w}"] for j in (1, 2) for w in ("W", "b")]
        nodes += [helper.make_node("Gemm", [last, f"{prefix}fc1_W", f"{prefix}fc1_b"], [f"{prefix}fc1"],
                                   name=f"{prefix}fc1", transB=1),
                  helper.make_node("Relu", [f"{prefix}fc1"], [f"{prefix}relu"], name=f"{prefix}relu"),
                  helper.make_node("Gemm", [f"{prefix}relu", f"{prefix}fc2_W", f"{prefix}fc2_b"], [f"{prefix}logit"],
                                   name=f"{prefix}fc2", transB=1)]
        logits.append(f"{prefix}logit")
    inits += [numpy_helper.from_array(np.array([j], dtype=np.int64), f"k{j}") for j in range(k + 1)]
    logit = logits[0]
    if members > 1:
        nodes.append(helper.make_node("Mean", logits, ["logit"], name="ensemble_mean"))
        logit = "logit"
    nodes += [helper.make_node("Div", [logit, "temperature"], ["logit_calibrated"], name="calibration"),
              helper.make_node("Sigmoid", ["logit_calibrated"], ["probability_2d"], name="sigmoid"),
              helper.make_node("Squeeze", ["probability_2d", "axis1"], ["probability"], name="squeeze_out"),
              helper.make_node("Concat", outs, ["state_out_tm"], name="state_out_tm", axis=0),
              helper.make_node("Transpose", ["state_out_tm"], ["state_out"], name="state_out", perm=[1, 0, 2])]
    width = members * LAYERS * per_layer
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n_inputs]),
              helper.make_tensor_value_info("state", TensorProto.FLOAT, ["batch", width, hidden])]
    if hybrid:
        note_dim = numpy_helper.to_array(source[f"{branches(model.graph)[0][0]}note_W"]).shape[1]
        inputs.append(helper.make_tensor_value_info("note", TensorProto.FLOAT, ["batch", note_dim]))
    graph = helper.make_graph(nodes, "icu_mortality_step", inputs=inputs, initializer=inits, outputs=[
        helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch"]),
        helper.make_tensor_value_info("state_out", TensorProto.FLOAT, ["batch", width, hidden])])
    step = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                             producer_name="icu-mortality-training")
    step.ir_version = 8
    return step


def build_step(model: onnx.ModelProto, manifest: dict[str, Any]) -> onnx.ModelProto:
    """The step graph of `model` (a model.onnx of training/export.py) under `manifest`."""
    network = _network_step(model, input_width(manifest))
    front = compose.add_prefix(step_input_onnx(manifest), "step_input/")
    back = {f"step_input/{n}": n for n in ("values", "statics", "carry", "x", "carry_out")}
    for node in front.graph.node:
        node.input[:] = [back.get(e, e) for e in node.input]
        node.output[:] = [back.get(e, e) for e in node.output]
    for entry in [*front.graph.input, *front.graph.output]:
        entry.name = back.get(entry.name, entry.name)
    front.ir_version = network.ir_version
    step = compose.merge_models(front, network, io_map=[("x", "x")], producer_name="icu-mortality-training")
    if [o.name for o in step.graph.output] != ["carry_out", "probability", "state_out"]:
        raise ValueError(f"unexpected step outputs {[o.name for o in step.graph.output]}")
    onnx.checker.check_model(step, full_check=True)
    return step


def step_manifest(model: onnx.ModelProto, manifest: dict[str, Any]) -> dict[str, Any]:
    """manifest.onnx.step: the file, its tensor names and the state and carry shapes after batch."""
    arch, members, per_layer, hidden = state_layout(model)
    inputs = {"values": "values", "statics": "statics", "state": "state", "carry": "carry"}
    if "noteEmbedding" in manifest:
        inputs["note"] = "note"
    return {"file": STEP_FILE, "inputs": inputs,
            "outputs": {"probability": "probability", "state": "state_out", "carry": "carry_out"},
            "stateShape": [members * LAYERS * per_layer, hidden], "carryShape": [2, len(manifest["variables"])]}


def write_step(model_dir: str) -> None:
    with open(os.path.join(model_dir, "manifest.json")) as f:
        manifest = json.load(f)
    model = onnx.load(os.path.join(model_dir, manifest["onnx"]["file"]))
    onnx.save(build_step(model, manifest), os.path.join(model_dir, STEP_FILE))
    manifest["onnx"]["step"] = step_manifest(model, manifest)
    from .export import write_manifest
    write_manifest(model_dir, manifest)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Write the one-step graph (step.onnx) of exported models.")
    p.add_argument("model_dirs", nargs="+", help="folders models/<name>/<version>/")
    for model_dir in p.parse_args(argv).model_dirs:
        write_step(model_dir)
        print(f"wrote {os.path.join(model_dir, STEP_FILE)}")


if __name__ == "__main__":
    main()
