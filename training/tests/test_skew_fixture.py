"""test/fixtures/skew/ must still be what the Python pipeline produces from its records, and
the shipped ONNX model must give the PyTorch probabilities it holds."""
import json
import os

import numpy as np
import pytest

from training.physionet import bin_observations, parse_record
from training.preprocess import preprocess, raw_statics, rows_to_array

from .ort import ROOT, run_shipped

SKEW = os.path.join(ROOT, "test", "fixtures", "skew")


@pytest.fixture(scope="module")
def expected():
    path = os.path.join(SKEW, "expected.json")
    if not os.path.isfile(path):
        pytest.skip("test/fixtures/skew/expected.json not generated yet (python3 -m training.train)")
    with open(path) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def manifest(expected):
    with open(os.path.join(ROOT, expected["model"]["dir"], "manifest.json")) as f:
        return json.load(f)


def test_records_still_clean_bin_and_preprocess_to_the_fixture(expected, manifest):
    names = [v["name"] for v in manifest["variables"]]
    for rec in expected["records"]:
        with open(os.path.join(SKEW, rec["file"])) as f:
            parsed = parse_record(f.read(), manifest)
        rows = bin_observations(parsed.observations, manifest)
        assert parsed.statics == rec["statics"], rec["file"]
        assert [{n: r.get(n) for n in names} for r in rows] == rec["rows"], rec["file"]
        # The fixture's x may be float64 (written before the tensor was float32): equal once rounded.
        expected_x = np.array(rec["x"], dtype=np.float64).astype(np.float32)
        assert np.array_equal(preprocess(rows, parsed.statics, manifest), expected_x), rec["file"]


def test_shipped_onnx_model_matches_the_pytorch_probabilities(expected, manifest):
    model = os.path.join(ROOT, expected["model"]["dir"], "model.onnx")
    recs = expected["records"]
    names = [v["name"] for v in manifest["variables"]]
    longest = max(r["hours"] for r in recs)
    values = np.full((len(recs), longest, len(names)), np.nan)
    for i, r in enumerate(recs):
        values[i, : r["hours"]] = rows_to_array(r["rows"], manifest)
    statics = np.stack([raw_statics(r["statics"], manifest) for r in recs])
    got = run_shipped(model, values, statics, np.array([r["hours"] for r in recs]))
    assert np.max(np.abs(got - np.array([r["probability"] for r in recs]))) <= 1e-5
