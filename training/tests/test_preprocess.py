"""The input tensor of models/README.md, checked against values worked out by hand."""
import numpy as np
import torch

from training.export import export
from training.make_fixtures import reference_inputs, tiny_manifest
from training.model import MortalityGRU
from training.preprocess import InputTensor, build_input, build_inputs, preprocess
from training.spec import input_width

from .ort import input_tensor_of


def small_manifest():
    return {
        "maxHours": 4,
        "deltaCap": 2,
        "variables": [{"name": "HR", "mean": 80.0, "std": 10.0}, {"name": "Temp", "mean": 37.0, "std": 0.5}],
        "statics": [
            {"name": "Age", "kind": "numeric", "mean": 60.0, "std": 20.0},
            {"name": "Gender", "kind": "categorical", "categories": [0, 1]},
            {"name": "ICUType", "kind": "categorical", "categories": [1, 2, 3, 4]},
        ],
    }


def test_values_masks_deltas_and_statics_follow_the_contract():
    rows = [{"HR": 90.0}, {}, {"HR": 70.0, "Temp": 38.0}]
    x = preprocess(rows, {"Age": 80.0, "Gender": 1.0, "ICUType": 3.0}, small_manifest())
    expected = np.array([
        # z(HR), z(Temp), mask HR, mask Temp, delta HR, delta Temp, Age z, Age missing, Gender, ICUType
        [1.0, 0.0, 1, 0, 0.0, 0.5, 1.0, 0, 0, 1, 0, 0, 1, 0],
        [1.0, 0.0, 0, 0, 0.5, 1.0, 1.0, 0, 0, 1, 0, 0, 1, 0],
        [-1.0, 2.0, 1, 1, 0.0, 0.0, 1.0, 0, 0, 1, 0, 0, 1, 0],
    ])
    assert x.shape == (3, 14)
    np.testing.assert_allclose(x, expected, atol=1e-12)


def test_deltas_are_capped_and_missing_statics_are_flagged():
    rows = [{}, {}, {}, {"Temp": 37.5}]
    x = preprocess(rows, {"Age": None, "Gender": None, "ICUType": 9.0}, small_manifest())
    np.testing.assert_allclose(x[:, 4], [0.5, 1.0, 1.0, 1.0])  # HR never seen: t + 1, capped at 2
    np.testing.assert_allclose(x[:, 5], [0.5, 1.0, 1.0, 0.0])
    np.testing.assert_allclose(x[:, 6:], np.tile([0, 1, 0, 0, 0, 0, 0, 0], (4, 1)))


def test_rows_are_cut_to_the_last_max_hours():
    rows = [{"HR": 100.0}] + [{}] * 4 + [{"HR": 60.0}]
    x = preprocess(rows, {}, small_manifest())
    assert x.shape[0] == 4
    # the first kept row has no earlier observation left: HR is the mean and the delta starts over
    np.testing.assert_allclose(x[:, 0], [0.0, 0.0, 0.0, -2.0])
    np.testing.assert_allclose(x[:, 4], [0.5, 1.0, 1.0, 0.0])


def test_the_shipped_graph_computes_the_tensor_training_computes(tmp_path):
    # The InputTensor exported into the ONNX graph, run by onnxruntime-node, against the same
    # module run by PyTorch: equal to the bit.
    manifest = tiny_manifest()
    export([MortalityGRU(input_width(manifest), hidden=4).eval()], 1.0, manifest, str(tmp_path))
    values, statics, lengths = reference_inputs(manifest, seed=3, stays=50)
    with torch.no_grad():
        expected = InputTensor(manifest)(torch.from_numpy(values), torch.from_numpy(statics)).numpy()
    got = input_tensor_of(str(tmp_path / "model.onnx"), values, statics, lengths)
    assert got.shape == expected.shape
    assert np.array_equal(got, expected)


def test_a_batch_gives_each_stay_the_tensor_it_gets_alone():
    manifest = tiny_manifest()
    values, statics, lengths = reference_inputs(manifest, seed=5, stays=49)
    stays = [values[i, :n] for i, n in enumerate(lengths)]
    x, got_lengths = build_inputs(stays, list(statics), manifest, chunk=16)
    assert got_lengths.tolist() == lengths.tolist()
    for i, n in enumerate(lengths):
        assert np.array_equal(x[i, :n], build_input(stays[i], statics[i], manifest).astype(np.float32))
        assert not x[i, n:].any()


def test_the_graph_computes_the_hand_worked_tensor(tmp_path):
    # Moved from the TypeScript tests when the tensor moved into the graph: forward fill, masks,
    # deltas capped at 1, statics, worked out by hand for two stays of one batch.
    manifest = {
        "name": "hand", "version": "1.0.0", "maxHours": 3, "deltaCap": 1,
        "variables": [{"name": "A", "mean": 10.0, "std": 2.0}, {"name": "B", "mean": 0.0, "std": 4.0}],
        "statics": [{"name": "Age", "kind": "numeric", "mean": 50.0, "std": 10.0},
                    {"name": "Gender", "kind": "categorical", "categories": [0, 1]}],
    }
    export([MortalityGRU(10, hidden=2).eval()], 1.0, manifest, str(tmp_path))
    nan = np.nan
    values = np.array([[[12, nan], [nan, 2], [nan, nan]], [[nan, -4], [nan, nan], [nan, nan]]])
    statics = np.array([[60, 1], [nan, nan]])
    x = input_tensor_of(str(tmp_path / "model.onnx"), values, statics, np.array([3, 1]))
    #          values    masks   deltas   age  miss  female male
    expected = [[[1, 0, 1, 0, 0, 1, 1, 0, 0, 1],
                 [1, 0.5, 0, 1, 1, 0, 1, 0, 0, 1],
                 [1, 0.5, 0, 0, 1, 1, 1, 0, 0, 1]],
                [[0, -1, 0, 1, 1, 0, 0, 1, 0, 0]]]
    np.testing.assert_array_equal(x[0], np.array(expected[0], dtype=np.float32))
    np.testing.assert_array_equal(x[1, :1], np.array(expected[1], dtype=np.float32))


def test_float32_deltas_equal_the_float64_quotient_rounded_for_every_integer_cap():
    for cap in range(1, 200):
        manifest = {"maxHours": cap + 2, "deltaCap": cap, "variables": [{"name": "A", "mean": 0.0, "std": 1.0}],
                    "statics": []}
        never = np.full((1, cap + 2, 1), np.nan)
        x = InputTensor(manifest)(torch.from_numpy(never), torch.zeros((1, 0), dtype=torch.float64)).numpy()
        expected = np.array([min(t + 1, cap) / cap for t in range(cap + 2)], dtype=np.float64).astype(np.float32)
        assert np.array_equal(x[0, :, 2], expected), cap
