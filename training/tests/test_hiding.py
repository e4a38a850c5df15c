"""Input-group hiding in training must equal the tensor of the same stay sent without those variables."""
import numpy as np
import torch

from training.fit import Hiding
from training.make_fixtures import tiny_manifest
from training.preprocess import build_input, raw_statics
from training.spec import MONITOR_VARIABLES, SCENARIOS


def test_hiding_a_stays_variables_gives_the_tensor_of_the_stay_without_them():
    manifest = tiny_manifest()
    names = [v["name"] for v in manifest["variables"]]
    rng = np.random.default_rng(0)
    values = rng.normal(80, 10, (20, len(names)))
    values[rng.random(values.shape) < 0.6] = np.nan
    statics = raw_statics({"Age": 70, "Height": None, "Gender": 1, "ICUType": 3}, manifest)
    full = torch.from_numpy(build_input(values, statics, manifest).astype(np.float32))[None]
    keep = np.array([n in MONITOR_VARIABLES for n in names])
    # Reference: the raw values with every other variable never measured, through preprocess.
    blanked = values.copy()
    blanked[:, ~keep] = np.nan
    expected = build_input(blanked, statics, manifest)
    hidden, which = Hiding(profiles=keep[None], delta_cap=manifest["deltaCap"]).apply(full, rng, share=1.0)
    assert which.tolist() == [1]
    assert np.max(np.abs(hidden[0].numpy() - expected)) < 1e-5  # the hiding recomputes deltas in float32
    # share 0 leaves the batch as it was.
    unchanged, which = Hiding(profiles=keep[None], delta_cap=manifest["deltaCap"]).apply(full, rng, share=0.0)
    assert torch.equal(unchanged, full) and which.tolist() == [0]


def test_scenarios_are_ordered_most_specific_first_and_name_known_variables():
    manifest = tiny_manifest()
    names = {v["name"] for v in manifest["variables"]}
    for s in SCENARIOS:
        assert s["variables"] is None or set(s["variables"]) <= names
    assert SCENARIOS[-1]["variables"] is None and SCENARIOS[-1]["maxHours"] is None
    assert set(SCENARIOS[0]["variables"]) < set(SCENARIOS[1]["variables"])
