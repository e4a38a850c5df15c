"""Builds the ONNX graph of a reference network (LSTM, GRU or the hybrid) directly from its weights.

Why by hand: PyTorch's exporter only turns packed sequences into `sequence_lens` cleanly with
`enforce_sorted=True`, and its sort/scatter ops have failed with a dynamic batch for exactly
this model (microsoft/onnxruntime#11830). Writing the graph with `onnx.helper` is short and
exact. The network (build_onnx): x [batch, time, n_inputs] float32 and lengths [batch] int32
in, probability [batch] float32 out; Transpose to time-major (the CPU LSTM kernel rejects
layout=1), two native LSTM (or GRU) nodes fed `sequence_lens`, Y_h of the last layer,
Gemm/Relu/Gemm, logit / temperature, Sigmoid. What ships (with_input_tensor) puts
training/preprocess.py's InputTensor, exported by PyTorch (it has no packed sequences), in
front of x: values [batch, time, V] and statics [batch, S] float64 in (models/README.md).
An ensemble of k networks averages their
logits (ONNX Mean) before the temperature. A HybridClinicalModel also takes note [batch,
note_dim] float32, projected (Gemm, Relu) and concatenated to Y_h before the head.

CLI:  /usr/bin/python3 -m training.export --checkpoint ckpt.pt --manifest manifest.json --out models/<name>/<version>/
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

from .model import HybridClinicalModel, Network, load_checkpoint
from .per_hour import PER_HOUR, add_per_hour
from .preprocess import InputTensor
from .spec import input_width
from .step_graph import STEP_FILE, build_step, step_manifest

OPSET = 17
# PyTorch stacks LSTM gates as (i, f, g, o), ONNX as (i, o, f, c); GRU gates (r, z, n) in
# PyTorch, (z, r, h) in ONNX (https://onnx.ai/onnx/operators/onnx__LSTM.html, onnx__GRU.html).
_GATE_ORDER = {"lstm": [0, 3, 1, 2], "gru": [1, 0, 2]}


def _reorder_gates(w: np.ndarray, hidden: int, architecture: str) -> np.ndarray:
    order = _GATE_ORDER[architecture]
    blocks = [w[k * hidden:(k + 1) * hidden] for k in range(len(order))]
    return np.concatenate([blocks[k] for k in order], axis=0)


def _f32(name: str, arr: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ascontiguousarray(arr, dtype=np.float32), name)


def _branch(model: Network, prefix: str, x_tm: str, inits: list, nodes: list) -> str:
    """Adds one network's nodes; returns the name of its logit [batch, 1]."""
    sd = {k: v.detach().cpu().numpy().astype(np.float64) for k, v in model.state_dict().items()}
    h = model.hidden
    arch = model.architecture
    layer_in = x_tm
    y_h = ""
    for layer in range(2):
        w = _reorder_gates(sd[f"{arch}.weight_ih_l{layer}"], h, arch)[None]
        r = _reorder_gates(sd[f"{arch}.weight_hh_l{layer}"], h, arch)[None]
        b = np.concatenate([_reorder_gates(sd[f"{arch}.bias_ih_l{layer}"], h, arch),
                            _reorder_gates(sd[f"{arch}.bias_hh_l{layer}"], h, arch)])[None]
        names = [f"{prefix}{arch}{layer}_{k}" for k in ("W", "R", "B")]
        inits += [_f32(names[0], w), _f32(names[1], r), _f32(names[2], b)]
        y = f"{prefix}{arch}{layer}_Y" if layer == 0 else ""
        y_h = f"{prefix}{arch}{layer}_Y_h"
        # PyTorch's GRU applies the reset gate after the recurrent matrix product: ONNX's
        # linear_before_reset=1.
        extra = {"linear_before_reset": 1} if arch == "gru" else {}
        nodes.append(helper.make_node(
            arch.upper(), [layer_in, names[0], names[1], names[2], "lengths"], [y, y_h],
            name=f"{prefix}{arch}{layer}", hidden_size=h, direction="forward", **extra))
        if layer == 0:
            # Y is [time, num_directions=1, batch, hidden]: drop the direction axis.
            layer_in = f"{prefix}{arch}0_seq"
            nodes.append(helper.make_node("Squeeze", [y, "axis1"], [layer_in], name=f"{prefix}squeeze_Y"))
    last = f"{prefix}h_last"
    nodes.append(helper.make_node("Squeeze", [y_h, "axis0"], [last], name=f"{prefix}squeeze_Y_h"))
    if isinstance(model, HybridClinicalModel):
        last = _fuse_note(sd, prefix, last, inits, nodes)
    inits += [_f32(f"{prefix}fc1_W", sd["head.1.weight"]), _f32(f"{prefix}fc1_b", sd["head.1.bias"]),
              _f32(f"{prefix}fc2_W", sd["head.3.weight"]), _f32(f"{prefix}fc2_b", sd["head.3.bias"])]
    nodes.append(helper.make_node("Gemm", [last, f"{prefix}fc1_W", f"{prefix}fc1_b"], [f"{prefix}fc1"],
                                  name=f"{prefix}fc1", transB=1))
    nodes.append(helper.make_node("Relu", [f"{prefix}fc1"], [f"{prefix}relu"], name=f"{prefix}relu"))
    logit = f"{prefix}logit"
    nodes.append(helper.make_node("Gemm", [f"{prefix}relu", f"{prefix}fc2_W", f"{prefix}fc2_b"], [logit],
                                  name=f"{prefix}fc2", transB=1))
    return logit


def _fuse_note(sd: dict, prefix: str, last: str, inits: list, nodes: list) -> str:
    """The hybrid's fusion: [h_last, ReLU(note W^T + b)] along the feature axis."""
    inits += [_f32(f"{prefix}note_W", sd["note_proj.0.weight"]), _f32(f"{prefix}note_b", sd["note_proj.0.bias"])]
    nodes.append(helper.make_node("Gemm", ["note", f"{prefix}note_W", f"{prefix}note_b"], [f"{prefix}note_lin"],
                                  name=f"{prefix}note_proj", transB=1))
    nodes.append(helper.make_node("Relu", [f"{prefix}note_lin"], [f"{prefix}note_relu"], name=f"{prefix}note_relu"))
    fused = f"{prefix}fused"
    nodes.append(helper.make_node("Concat", [last, f"{prefix}note_relu"], [fused], name=f"{prefix}fuse", axis=1))
    return fused


def _kind(model: Network) -> str:
    return "hybrid" if isinstance(model, HybridClinicalModel) else model.architecture


def build_onnx(models: list[Network], temperature: float = 1.0) -> onnx.ModelProto:
    if not models:
        raise ValueError("no networks to export")
    n_inputs = models[0].n_inputs
    if any(m.n_inputs != n_inputs for m in models):
        raise ValueError("ensemble members disagree on n_inputs")
    if len({_kind(m) for m in models}) > 1:
        raise ValueError("ensemble members disagree on the architecture")
    hybrid = isinstance(models[0], HybridClinicalModel)
    if hybrid and len({m.note_dim for m in models}) > 1:
        raise ValueError("ensemble members disagree on the note embedding's dimension")
    if not temperature > 0:
        raise ValueError("temperature must be positive")
    nodes: list = []
    inits: list = [
        numpy_helper.from_array(np.array([0], dtype=np.int64), "axis0"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        _f32("temperature", np.array(temperature)),
    ]
    nodes.append(helper.make_node("Transpose", ["x"], ["x_time_major"], name="to_time_major", perm=[1, 0, 2]))
    logits = [_branch(m, f"m{k}_" if len(models) > 1 else "", "x_time_major", inits, nodes)
              for k, m in enumerate(models)]
    if len(logits) > 1:
        nodes.append(helper.make_node("Mean", logits, ["logit"], name="ensemble_mean"))
        logit = "logit"
    else:
        logit = logits[0]
    nodes.append(helper.make_node("Div", [logit, "temperature"], ["logit_calibrated"], name="calibration"))
    nodes.append(helper.make_node("Sigmoid", ["logit_calibrated"], ["probability_2d"], name="sigmoid"))
    nodes.append(helper.make_node("Squeeze", ["probability_2d", "axis1"], ["probability"], name="squeeze_out"))
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "time", n_inputs]),
              helper.make_tensor_value_info("lengths", TensorProto.INT32, ["batch"])]
    if hybrid:
        inputs.append(helper.make_tensor_value_info("note", TensorProto.FLOAT, ["batch", models[0].note_dim]))
    graph = helper.make_graph(
        nodes, f"icu_mortality_{_kind(models[0])}",
        inputs=inputs,
        outputs=[helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch"])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="icu-mortality-training")
    model.ir_version = 8  # readable by onnx 1.12 and every current ONNX Runtime
    onnx.checker.check_model(model, full_check=True)
    return model


def input_tensor_onnx(manifest: dict[str, Any]) -> onnx.ModelProto:
    """InputTensor as an ONNX graph: values, statics in; x out."""
    n_vars, n_statics = len(manifest["variables"]), len(manifest["statics"])
    values = torch.randn(2, 3, n_vars, dtype=torch.float64)
    values[0, 1] = float("nan")
    statics = torch.ones(2, n_statics, dtype=torch.float64)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # torch 1.13 warns about slices it will not fold and constants it cannot type; onnx.checker
        # checks the graph, and the tests check its tensor to the bit.
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(InputTensor(manifest).eval(), (values, statics), buffer, opset_version=OPSET,
                          input_names=["values", "statics"], output_names=["x"],
                          dynamic_axes={"values": {0: "batch", 1: "time"}, "statics": {0: "batch"},
                                        "x": {0: "batch", 1: "time"}})
    return onnx.load_from_string(buffer.getvalue())


def with_input_tensor(network: onnx.ModelProto, manifest: dict[str, Any]) -> onnx.ModelProto:
    """The network graph (input x) behind InputTensor: what the service feeds and models/README.md documents."""
    front = compose.add_prefix(input_tensor_onnx(manifest), "input_tensor/")
    _unprefix(front.graph, "input_tensor/", ["values", "statics", "x"])
    front.ir_version = network.ir_version
    model = compose.merge_models(front, network, io_map=[("x", "x")], producer_name="icu-mortality-training")
    # x stays readable as a second output, for audits and the skew tests; the service fetches only the probability.
    model.graph.output.append(helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "time",
                                                                                     input_width(manifest)]))
    onnx.checker.check_model(model, full_check=True)
    return model


def _unprefix(graph: onnx.GraphProto, prefix: str, names: list[str]) -> None:
    """onnx 1.12's add_prefix renames a graph's inputs and outputs with its edges: give these back."""
    back = {prefix + n: n for n in names}
    for node in graph.node:
        node.input[:] = [back.get(e, e) for e in node.input]
        node.output[:] = [back.get(e, e) for e in node.output]
    for entry in [*graph.input, *graph.output]:
        entry.name = back.get(entry.name, entry.name)


def graph_inputs(hybrid: bool) -> dict[str, str]:
    inputs = {"values": "values", "statics": "statics", "lengths": "lengths"}
    return {**inputs, "note": "note"} if hybrid else inputs


def write_manifest(out_dir: str, manifest: dict[str, Any]) -> None:
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")


def fill_manifest(manifest: dict[str, Any], models: list[Network], temperature: float) -> dict[str, Any]:
    """Writes the architecture and calibration facts of these weights into the manifest."""
    width = input_width(manifest)
    if width != models[0].n_inputs:
        raise ValueError(f"manifest defines {width} inputs, checkpoint expects {models[0].n_inputs}")
    out = dict(manifest)
    hybrid = isinstance(models[0], HybridClinicalModel)
    out["onnx"] = {"file": "model.onnx", "opset": OPSET,
                   "inputs": graph_inputs(hybrid), "output": "probability"}
    out["architecture"] = {**manifest.get("architecture", {}), "type": _kind(models[0]), "layers": 2,
                           "hidden": models[0].hidden, "head": [32], "nInputs": width, "ensemble": len(models)}
    if hybrid:
        out["architecture"]["noteProjection"] = models[0].note_hidden
        out["noteEmbedding"] = _note_embedding(manifest, models[0].note_dim)
    elif "noteEmbedding" in manifest:
        raise ValueError("the manifest declares a noteEmbedding but the checkpoint is not a HybridClinicalModel")
    out["calibration"] = {**manifest.get("calibration", {}), "method": manifest.get("calibration", {}).get("method", "temperature"),
                          "temperature": float(temperature), "foldedIntoGraph": True}
    return out


def _note_embedding(manifest: dict[str, Any], note_dim: int) -> dict[str, Any]:
    """The manifest's note-embedding declaration, checked against the weights: the service can
    only refuse wrong embeddings if it knows their size, their encoder and their scaling."""
    declared = manifest.get("noteEmbedding")
    if not isinstance(declared, dict) or not declared.get("encoder") or not declared.get("normalisation"):
        raise ValueError("a hybrid model's manifest must declare noteEmbedding.encoder (the model that makes the "
                         "embedding) and noteEmbedding.normalisation (how it was scaled before training)")
    if declared.get("dimension", note_dim) != note_dim:
        raise ValueError(f"manifest noteEmbedding.dimension is {declared['dimension']}, the weights take {note_dim}")
    return {**declared, "dimension": note_dim}


def export(models: list[Network], temperature: float, manifest: dict[str, Any], out_dir: str) -> dict[str, Any]:
    os.makedirs(out_dir, exist_ok=True)
    manifest = fill_manifest(manifest, models, temperature)
    model = with_input_tensor(add_per_hour(build_onnx(models, temperature)), manifest)
    onnx.save(model, os.path.join(out_dir, "model.onnx"))
    # The per-hour output and the step graph: training/per_hour.py, training/step_graph.py.
    onnx.save(build_step(model, manifest), os.path.join(out_dir, STEP_FILE))
    manifest["onnx"] = {**manifest["onnx"], "outputs": {"perHour": PER_HOUR}, "step": step_manifest(model, manifest)}
    write_manifest(out_dir, manifest)
    return manifest


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Export a checkpoint of a reference network to ONNX with its manifest.")
    p.add_argument("--checkpoint", required=True, help="torch checkpoint (training.model format, or a state_dict of "
                   "MortalityRNN or HybridClinicalModel)")
    p.add_argument("--manifest", required=True, help="manifest.json with variables, statics and normalisation statistics "
                   "(a hybrid's also with noteEmbedding: encoder, normalisation)")
    p.add_argument("--out", required=True, help="output folder models/<name>/<version>/")
    p.add_argument("--temperature", type=float, default=None, help="calibration temperature (default: the checkpoint's, else 1)")
    args = p.parse_args(argv)
    models, temperature = load_checkpoint(args.checkpoint)
    if args.temperature is not None:
        temperature = args.temperature
    with open(args.manifest) as f:
        manifest = json.load(f)
    m = export(models, temperature, manifest, args.out)
    print(f"wrote {args.out} (n_inputs={m['architecture']['nInputs']}, hidden={m['architecture']['hidden']}, "
          f"ensemble={m['architecture']['ensemble']}, temperature={temperature:g})")


if __name__ == "__main__":
    main()
