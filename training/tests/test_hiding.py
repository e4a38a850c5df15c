"""Input-group hiding in training must equal the tensor of the same stay sent without those variables."""
import numpy as np
import torch

from training.fit import FitConfig, Hiding, hidden_batch
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


def test_hidden_copies_keep_the_whole_stay_and_add_its_blanked_copy_after_the_batch():
    manifest = tiny_manifest()
    names = [v["name"] for v in manifest["variables"]]
    keep = np.array([n in MONITOR_VARIABLES for n in names])
    n_vars = len(names)
    rng = np.random.default_rng(1)
    values = rng.normal(80, 10, (3, 12, n_vars))
    statics = raw_statics({"Age": 60, "Height": 170, "Gender": 0, "ICUType": 2}, manifest)
    x = torch.from_numpy(np.stack([build_input(v, statics, manifest) for v in values]).astype(np.float32))
    lengths, idx = torch.tensor([12, 5, 9]), torch.tensor([7, 2, 4])
    hiding = Hiding(profiles=keep[None], delta_cap=manifest["deltaCap"])
    cfg = FitConfig(hide=1.0, hide_copies=True)
    xb, lb, which, ib = hidden_batch(x, lengths, idx, hiding, cfg, np.random.default_rng(0))
    assert xb.shape[0] == 6 and torch.equal(xb[:3], x)
    assert lb.tolist() == [12, 5, 9, 12, 5, 9] and ib.tolist() == [7, 2, 4, 7, 2, 4] and which.tolist() == [0, 0, 0, 1, 1, 1]
    # The copies are exactly what hiding without copies gives from the same random draws.
    replaced, _, which_replaced, _ = hidden_batch(x, lengths, idx, hiding, FitConfig(hide=1.0), np.random.default_rng(0))
    assert torch.equal(xb[3:], replaced) and which_replaced.tolist() == [1, 1, 1]
    # A lab measured in the original is blanked in the copy (its mask is 0).
    lab = int(np.flatnonzero(~keep)[0])
    assert float(xb[3:, :, n_vars + lab].abs().sum()) == 0.0 and float(x[:, :, n_vars + lab].sum()) > 0
