"""The model card: one program renders it from a model folder's files, every figure from them."""
import copy
import json
import os
import shutil

import pytest

from training import model_card

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED = os.path.join(ROOT, "models", "icu-mortality")
BENCH = os.path.join(ROOT, "bench", "architectures.json")


def without_bench_line(text: str) -> str:
    # The engine figures come from bench/architectures.json, which `npm run bench` rewrites on its own schedule.
    return "\n".join(line for line in text.split("\n") if not line.startswith("Engine throughput (`npm run bench`"))


@pytest.mark.parametrize("version,other", [("1.6.0", "1.6.0-lstm"), ("1.6.0-lstm", "1.6.0")])
def test_the_shipped_cards_are_what_their_folders_render(tmp_path, version, other):
    for v in (version, other):
        shutil.copytree(os.path.join(SHIPPED, v), tmp_path / v, ignore=shutil.ignore_patterns("*.onnx"))
    model_card.main([str(tmp_path / version), "--compare", str(tmp_path / other), "--bench", BENCH])
    with open(os.path.join(SHIPPED, version, "model-card.md")) as f:
        committed = f.read()
    assert without_bench_line((tmp_path / version / "model-card.md").read_text()) == without_bench_line(committed)


def load(version: str, name: str) -> dict:
    with open(os.path.join(SHIPPED, version, name)) as f:
        return json.load(f)


def render(tmp_path, manifest: dict, metrics: dict, explanation: dict | None = None) -> str:
    path = tmp_path / "model-card.md"
    model_card.write_model_card(str(path), manifest, metrics, load("1.6.0", "split.json"), explanation=explanation)
    return path.read_text()


def test_the_population_mortality_and_the_refit_step_come_from_the_metrics(tmp_path):
    manifest, metrics = load("1.6.0", "manifest.json"), copy.deepcopy(load("1.6.0", "metrics.json"))
    metrics["mortality"] = 0.25
    metrics["alternativesConsidered"]["refitLearningCurve"] = {
        "seeds": 5, "stays": {"subsample": 1000, "whole": 1500},
        "networkValAuroc": {"subsample": 0.80, "whole": 0.83}, "treesValAuroc": {"subsample": 0.78, "whole": 0.79}}
    card = render(tmp_path, manifest, metrics)
    assert "Calibration was fitted on this population's 25% mortality;" in card
    assert "(mortality 25.0%)" in card
    assert "On validation, 50% more training" in card
    assert "stays were worth about +0.030 AUROC to one network (5 seeds; the trees gained +0.010)" in card


def test_labels_name_the_architecture_and_the_alternatives_keep_theirs(tmp_path):
    manifest, metrics = load("1.6.0", "manifest.json"), load("1.6.0", "metrics.json")
    assert manifest["architecture"]["type"] == "gru"
    card = render(tmp_path, manifest, metrics)
    before_alternatives, alternatives = card.split("## Alternatives considered")
    assert "LSTM" not in before_alternatives
    assert "each is `GRU(121, 64, 2 layers)`" in card and "| **GRU, 4 network(s) averaged (this model)** |" in card
    assert "| GRU, only the six bedside vitals (HR, SaO2, MAP, RespRate, Temp, Lactate; all else missing) |" in card
    # The recipes compared were LSTMs: their cost is in LSTM(64) units whatever ships.
    assert "cost (x one LSTM(64))" in alternatives
    lstm = copy.deepcopy(manifest)
    lstm["architecture"]["type"] = "lstm"
    assert "GRU" not in render(tmp_path, lstm, metrics).split("## Alternatives considered")[0]


def test_to_fixed_rounds_as_javascript_does():
    # Expected strings printed by node 20: (x).toFixed(d).
    assert [model_card.to_fixed(x, d) for x, d in ((0.125, 2), (1.005, 2), (2.5, 0), (-2.5, 0), (96.5, 0), (0.045, 1))] \
        == ["0.13", "1.00", "3", "-3", "97", "0.0"]


def test_the_explanation_check_is_rendered_from_its_measurements(tmp_path):
    manifest, metrics = load("1.6.0", "manifest.json"), load("1.6.0", "metrics.json")
    check = {"model": {"name": "icu-mortality", "version": "1.6.0"}, "split": "test", "seed": 7, "explainedStays": 1234,
             "topOne": {"removed": 1, "stays": 1234, "shareTopMovesMore": 0.905, "medianMoveTop": 0.04125,
                        "medianMoveRandom": 0.0037, "auroc": {"asIs": 0.9, "withoutTop": 0.8125, "withoutRandom": 0.89}},
             "topThree": {"removed": 3, "stays": 1200, "shareTopMovesMore": 0.5, "medianMoveTop": 0.1,
                          "medianMoveRandom": 0.01, "auroc": {"asIs": 0.9, "withoutTop": 0.6, "withoutRandom": 0.885}}}
    card = render(tmp_path, manifest, metrics, check)
    assert card.count("## Explanations checked") == 1
    assert card.index("<!-- /explanation-check -->") < card.index("## Limitations")
    assert "Checked on the 1,234 stays of the test split" in card and "drawn at random (seed 7):" in card
    # 100 x 0.905 = 90.5 -> 91 (half up, as toFixed); 0.8125 -> 0.813 (Python's format: 0.812); 100 x 0.04125 is
    # just under 4.125 in binary -> 4.1.
    assert "| 1 variable | 1234 | 91% | 4.1 points | 0.4 points | 0.900 / 0.813 / 0.890 |" in card
    assert "| 3 variables together | 1200 | 50% | 10.0 points | 1.0 points | 0.900 / 0.600 / 0.885 |" in card
    assert "## Explanations checked" not in render(tmp_path, manifest, metrics, None)
