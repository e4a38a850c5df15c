"""step.onnx (training/step_graph.py): stepping a stay hour by hour from zeros gives model.onnx's
probability of every prefix."""
import json
import os

import numpy as np
import pytest
import torch

from training.make_fixtures import reference_inputs
from training.preprocess import InputTensor
from training.step_graph import StepInput

from .ort_graph import run_feeds
from .test_per_hour import FIXTURES, SHIPPED, fixture_inputs, prefixes

MODELS = {**FIXTURES, "1.6.0": SHIPPED}


def load(model_dir):
    with open(os.path.join(model_dir, "manifest.json")) as f:
        manifest = json.load(f)
    if model_dir == SHIPPED:
        values, statics, lengths = reference_inputs(manifest, seed=21, stays=48)
        return manifest, {"values": values, "statics": statics, "lengths": lengths.astype(np.int32)}
    return manifest, fixture_inputs(model_dir)


def stepped(model_dir, manifest, feeds, stays):
    """The step graph's probability after each hour [stays, time], from the documented zero state."""
    step = manifest["onnx"]["step"]
    values, statics = feeds["values"][stays], feeds["statics"][stays]
    first = {"values": values[:, :1], "statics": statics,
             "state": np.zeros((len(stays), *step["stateShape"]), np.float32),
             "carry": np.zeros((len(stays), *step["carryShape"]), np.float32)}
    if "note" in feeds:
        first["note"] = feeds["note"][stays]
    runs = [first] + [{k: (values[:, h:h + 1] if k == "values" else v) for k, v in first.items()
                       if k not in ("state", "carry")} for h in range(1, values.shape[1])]
    out = run_feeds(os.path.join(model_dir, step["file"]), runs, ["probability", "state_out", "carry_out"],
                    feedback={"state_out": "state", "carry_out": "carry"})
    return np.stack([o["probability"] for o in out], axis=1)


@pytest.mark.parametrize("kind", ["lstm", "gru", "hybrid", "1.6.0"])
def test_stepping_hour_by_hour_equals_every_prefix_scored_by_model_onnx(kind):
    model_dir = MODELS[kind]
    manifest, feeds = load(model_dir)
    stays = list(range(0, len(feeds["lengths"]), 3))
    probabilities = stepped(model_dir, manifest, feeds, stays)
    rows, alone = prefixes(feeds, stays)
    scored = run_feeds(os.path.join(model_dir, "model.onnx"), [alone], ["probability"])[0]["probability"]
    got = np.array([probabilities[stays.index(b), h - 1] for b, h in rows])
    assert len(rows) > 300
    assert np.abs(got - scored).max() <= 1e-5
    assert np.ptp(got) > 1e-3


def test_the_manifest_names_the_step_graph_and_its_shapes():
    with open(os.path.join(SHIPPED, "manifest.json")) as f:
        step = json.load(f)["onnx"]["step"]
    # 4 GRU members x 2 layers x h only; hidden 64; carry: value and hours since, 37 variables.
    assert step == {"file": "step.onnx",
                    "inputs": {"values": "values", "statics": "statics", "state": "state", "carry": "carry"},
                    "outputs": {"probability": "probability", "state": "state_out", "carry": "carry_out"},
                    "stateShape": [8, 64], "carryShape": [2, 37]}
    with open(os.path.join(FIXTURES["hybrid"], "manifest.json")) as f:
        hybrid = json.load(f)["onnx"]["step"]
    assert hybrid["inputs"]["note"] == "note" and hybrid["stateShape"] == [4, 8]  # 1 LSTM x 2 layers x (h, c)


def test_step_input_carries_forward_fill_and_deltas_past_the_cap():
    # The recurrence (carry) against InputTensor's running maximum over a 60-hour stay, where
    # never-observed variables pass deltaCap = 48: the carry's capped hours must read the same.
    with open(os.path.join(SHIPPED, "manifest.json")) as f:
        manifest = json.load(f)
    rng = np.random.default_rng(4)
    mean = np.array([v["mean"] for v in manifest["variables"]])
    values = mean + rng.normal(0, 1, (3, 60, len(mean)))
    values[rng.random(values.shape) < 0.8] = np.nan
    values[:, :, 5] = np.nan  # one variable never observed
    statics = np.array([[70.0, 180.0, 1.0, 3.0], [np.nan, np.nan, np.nan, 9.0], [30.0, 150.0, 0.0, 1.0]])
    with torch.no_grad():
        whole = InputTensor(manifest)(torch.from_numpy(values), torch.from_numpy(statics)).numpy()
        step = StepInput(manifest)
        carry = torch.zeros(3, 2, len(mean))
        for h in range(60):
            x, carry = step(torch.from_numpy(values[:, h:h + 1]), torch.from_numpy(statics), carry)
            np.testing.assert_array_equal(x.numpy(), whole[:, h])
    assert float(carry[0, 1, 5]) == manifest["deltaCap"]
