"""The input tensor of models/README.md, checked against values worked out by hand."""
import numpy as np
import pytest

from training.preprocess import preprocess


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
