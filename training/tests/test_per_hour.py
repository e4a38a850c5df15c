"""probability_per_hour (training/per_hour.py): one pass gives every prefix's probability."""
import json
import os

import numpy as np
import onnx
import pytest
import torch

from training.export import build_onnx, with_input_tensor
from training.make_fixtures import ROOT, TINY_TEMPERATURE, reference_inputs, tiny_manifest, tiny_model
from training.per_hour import PER_HOUR, add_per_hour
from training.preprocess import InputTensor

from .ort_graph import run_feeds

FIXTURES = {kind: os.path.join(ROOT, "test", "fixtures", name)
            for kind, name in (("lstm", "tiny-model"), ("gru", "tiny-gru-model"), ("hybrid", "tiny-hybrid-model"))}
SHIPPED = os.path.join(ROOT, "models", "icu-mortality", "1.6.0")


def _nan(rows):
    """Nested lists with None (JSON's NaN) as a float array."""
    return np.array(rows, dtype=object).astype(float)


def fixture_inputs(model_dir):
    with open(os.path.join(model_dir, "pytorch-reference.json")) as f:
        ref = json.load(f)
    feeds = {"values": _nan(ref["values"]), "statics": _nan(ref["statics"]),
             "lengths": np.array(ref["lengths"], dtype=np.int32)}
    if "note" in ref:
        feeds["note"] = np.array(ref["note"], dtype=np.float32)
    return feeds


def prefixes(feeds, stays):
    """Every prefix 1..length of the given stays, each scored alone: NaN after its last hour."""
    rows = [(b, h) for b in stays for h in range(1, int(feeds["lengths"][b]) + 1)]
    values = np.full((len(rows),) + feeds["values"].shape[1:], np.nan)
    for k, (b, h) in enumerate(rows):
        values[k, :h] = feeds["values"][b, :h]
    out = {"values": values, "statics": feeds["statics"][[b for b, _ in rows]],
           "lengths": np.array([h for _, h in rows], dtype=np.int32)}
    if "note" in feeds:
        out["note"] = feeds["note"][[b for b, _ in rows]]
    return rows, out


@pytest.mark.parametrize("kind", ["lstm", "gru", "hybrid"])
def test_the_per_hour_output_is_each_prefix_scored_alone(kind):
    path = os.path.join(FIXTURES[kind], "model.onnx")
    feeds = fixture_inputs(FIXTURES[kind])
    whole = run_feeds(path, [feeds], ["probability", PER_HOUR])[0]
    per_hour, lengths = whole[PER_HOUR], feeds["lengths"]
    assert per_hour.shape == feeds["values"].shape[:2]
    real = np.arange(per_hour.shape[1])[None, :] < lengths[:, None]
    assert np.isfinite(per_hour[real]).all() and np.isnan(per_hour[~real]).all()
    # The last real hour is the stay's probability, through the other branch of the graph.
    assert np.abs(per_hour[np.arange(len(lengths)), lengths - 1] - whole["probability"]).max() <= 1e-6
    rows, alone = prefixes(feeds, range(0, len(lengths), 3))
    scored = run_feeds(path, [alone], ["probability"])[0]["probability"]
    one_pass = np.array([per_hour[b, h - 1] for b, h in rows])
    assert np.abs(one_pass - scored).max() <= 1e-6
    assert np.ptp(one_pass) > 1e-3  # the prefixes differ: a constant output would pass the rest


@pytest.mark.parametrize("architecture", ["lstm", "gru"])
def test_the_per_hour_output_matches_pytorch_on_every_prefix(architecture):
    # PyTorch's packed forward pass on each prefix (NaN after its hours), an independent reference.
    model_dir = FIXTURES[architecture]
    with open(os.path.join(model_dir, "manifest.json")) as f:
        manifest = json.load(f)
    feeds = fixture_inputs(model_dir)
    per_hour = run_feeds(os.path.join(model_dir, "model.onnx"), [feeds], [PER_HOUR])[0][PER_HOUR]
    rows, alone = prefixes(feeds, range(0, len(feeds["lengths"]), 5))
    with torch.no_grad():
        x = InputTensor(manifest)(torch.from_numpy(alone["values"]), torch.from_numpy(alone["statics"]))
        expected = tiny_model(architecture).predict_proba(x, torch.from_numpy(alone["lengths"]), TINY_TEMPERATURE)
    got = np.array([per_hour[b, h - 1] for b, h in rows])
    assert np.abs(got - expected.numpy()).max() <= 1e-5


def test_adding_the_output_leaves_probability_equal_to_the_bit(tmp_path):
    manifest = tiny_manifest()
    before, after = str(tmp_path / "before.onnx"), str(tmp_path / "after.onnx")
    onnx.save(with_input_tensor(build_onnx([tiny_model("gru"), tiny_model("gru")], 1.3), manifest), before)
    onnx.save(with_input_tensor(add_per_hour(build_onnx([tiny_model("gru"), tiny_model("gru")], 1.3)), manifest), after)
    values, statics, lengths = reference_inputs(manifest, seed=5, stays=50)
    feeds = {"values": values, "statics": statics, "lengths": lengths.astype(np.int32)}
    old = run_feeds(before, [feeds], ["probability"])[0]["probability"]
    new = run_feeds(after, [feeds], ["probability", PER_HOUR])[0]
    assert np.array_equal(old, new["probability"])
    assert np.array_equal(new[PER_HOUR][np.arange(50), lengths - 1], old)
    with pytest.raises(ValueError, match="already"):
        add_per_hour(onnx.load(after))


def test_the_shipped_model_has_it_and_its_manifest_names_it():
    with open(os.path.join(SHIPPED, "manifest.json")) as f:
        manifest = json.load(f)
    assert manifest["onnx"]["outputs"] == {"perHour": PER_HOUR}
    values, statics, lengths = reference_inputs(manifest, seed=9, stays=48)
    feeds = {"values": values, "statics": statics, "lengths": lengths.astype(np.int32)}
    path = os.path.join(SHIPPED, "model.onnx")
    per_hour = run_feeds(path, [feeds], [PER_HOUR])[0][PER_HOUR]
    rows, alone = prefixes(feeds, range(0, 48, 4))
    scored = run_feeds(path, [alone], ["probability"])[0]["probability"]
    assert np.abs(np.array([per_hour[b, h - 1] for b, h in rows]) - scored).max() <= 1e-6
