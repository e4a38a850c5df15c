"""Puts the input tensor (training/preprocess.py's InputTensor) in front of a model whose graph
takes x (every export before the input tensor moved into the graph): its network and weights
are unchanged, only the graph's inputs become values and statics (models/README.md).

CLI:  /usr/bin/python3 -m training.repackage models/icu-mortality/1.4.0 [...]
"""
from __future__ import annotations

import argparse
import json
import os

import onnx

from .export import graph_inputs, with_input_tensor, write_manifest


def repackage(model_dir: str) -> None:
    """Rewrites model.onnx and the manifest's onnx.inputs in place."""
    path = os.path.join(model_dir, "model.onnx")
    with open(os.path.join(model_dir, "manifest.json")) as f:
        manifest = json.load(f)
    network = onnx.load(path)
    if [i.name for i in network.graph.input][0] != "x":
        raise ValueError(f"{path} does not take x: already repackaged?")
    onnx.save(with_input_tensor(network, manifest), path)
    manifest["onnx"]["inputs"] = graph_inputs("noteEmbedding" in manifest)
    write_manifest(model_dir, manifest)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Give models exported with an x input the values/statics input.")
    p.add_argument("model_dirs", nargs="+", help="folders models/<name>/<version>/")
    for model_dir in p.parse_args(argv).model_dirs:
        repackage(model_dir)
        print(f"repackaged {model_dir}")


if __name__ == "__main__":
    main()
