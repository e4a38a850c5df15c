"""One epoch of the whole training command on synthetic records written here (no real data)."""
import io
import json
import os
import tarfile

import numpy as np

from training import evaluate, model_card, train
from training.make_fixtures import random_stay, record_descriptors, record_text


def write_synthetic_data(folder, per_set=40, seed=1):
    rng = np.random.default_rng(seed)
    rid = 200000
    for s in ("a", "c"):
        outcomes = ["RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death"]
        with tarfile.open(os.path.join(folder, f"set-{s}.tar.gz"), "w:gz") as tar:
            for i in range(per_set):
                rid += 1
                died = int(i % 4 == 0)
                descriptors = record_descriptors(rid, age=str(int(rng.integers(20, 90))), gender=str(i % 2),
                                                 icu=str(1 + i % 4))
                text = record_text(descriptors, random_stay(rng, int(rng.integers(2, 9))))
                data = text.encode()
                info = tarfile.TarInfo(f"set-{s}/{rid}.txt")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                outcomes.append(f"{rid},{int(rng.integers(5, 25))},{int(rng.integers(0, 15)) if i % 5 else -1},"
                                f"10,-1,{died}")
        with open(os.path.join(folder, f"Outcomes-{s}.txt"), "w") as f:
            f.write("\n".join(outcomes) + "\n")


def train_on_synthetic_data(tmp_path, *extra: str):
    """One epoch of `training.train` on synthetic records; returns the model folder and the metrics."""
    data = tmp_path / "data"
    data.mkdir()
    write_synthetic_data(str(data))
    out = tmp_path / "model"
    metrics = train.main(["--data", str(data), "--cache", str(tmp_path / "cache"), "--out", str(out),
                          "--members", "2", "--epochs", "1", "--hidden", "8", "--bootstrap", "20",
                          "--threads", "1", "--no-skew", "--version", "0.0.1-smoke", *extra])
    return out, metrics


def test_training_runs_end_to_end_and_writes_a_model_package(tmp_path):
    out, metrics = train_on_synthetic_data(tmp_path)
    for name in ("model.onnx", "manifest.json", "model-card.md", "metrics.json", "reliability.png", "split.json"):
        assert (out / name).is_file(), name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["architecture"]["nInputs"] == 121
    assert manifest["architecture"]["ensemble"] == 2
    assert manifest["provenance"]["licence"] == "ODC-By 1.0"
    hr = next(v for v in manifest["variables"] if v["name"] == "HR")
    assert 60 < hr["mean"] < 120 and hr["std"] > 0
    split = json.loads((out / "split.json").read_text())
    ids = split["train"] + split["validation"] + split["test"]
    assert len(ids) == len(set(ids)) == 80
    assert 0.0 <= metrics["model"]["auroc"] <= 1.0
    # The shipped networks are refit on every stay after the held-out evaluation (its twin's figures).
    assert manifest["provenance"]["trainingRecords"] == 80
    assert metrics["refit"]["trainingRecords"] == 80 and len(metrics["refit"]["members"]) == 2
    assert all(m["bestValAuroc"] is None for m in metrics["refit"]["members"])
    assert "twin" in (out / "model-card.md").read_text()


def test_a_fixed_schedule_without_the_refit_records_and_explains_its_mean_risk_shift(tmp_path):
    out, metrics = train_on_synthetic_data(tmp_path, "--no-refit")
    manifest = json.loads((out / "manifest.json").read_text())
    assert "refit" not in metrics and manifest["provenance"]["trainingRecords"] == len(json.loads(
        (out / "split.json").read_text())["train"])
    shift = manifest["calibration"]["meanRiskShift"]
    assert f"({shift:+.3f} on the logit scale)" in (out / "model-card.md").read_text()
    # The card is rendered from the folder's files alone: the explanation check that `npm run explain-evidence`
    # measures (explanation-check.json) appears once, before "## Limitations", and goes when the file does.
    card = out / "model-card.md"
    check = {"split": "test", "seed": 2012, "explainedStays": 12,
             **{k: {"removed": n, "stays": 12, "shareTopMovesMore": 0.75, "medianMoveTop": 0.05, "medianMoveRandom": 0.01,
                    "auroc": {"asIs": 0.8, "withoutTop": 0.6, "withoutRandom": 0.75}}
                for k, n in (("topOne", 1), ("topThree", 3))}}
    (out / "explanation-check.json").write_text(json.dumps(check))
    model_card.main([str(out)])
    rewritten = card.read_text()
    assert rewritten.count("## Explanations checked") == 1
    assert rewritten.index("<!-- /explanation-check -->") < rewritten.index("## Limitations")
    assert "| 3 variables together | 12 | 75% | 5.0 points | 1.0 points | 0.800 / 0.600 / 0.750 |" in rewritten
    (out / "explanation-check.json").unlink()
    model_card.main([str(out)])
    assert "## Explanations checked" not in card.read_text()


def test_refit_needs_a_fixed_schedule(tmp_path):
    # With early stopping there would be nothing to stop on once every stay is in training.
    try:
        train.main(["--data", str(tmp_path), "--epochs", "0", "--refit"])
    except SystemExit as exit_:
        assert exit_.code == 2
    else:
        raise AssertionError("--refit with --epochs 0 was accepted")


def test_the_gru_trains_end_to_end_with_hiding_and_names_its_scenarios(tmp_path, monkeypatch):
    plotted = []
    monkeypatch.setattr(evaluate, "reliability_plot", lambda path, curves, **kw: plotted.append(list(curves)))
    out, metrics = train_on_synthetic_data(tmp_path, "--architecture", "gru", "--no-refit")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["architecture"]["type"] == "gru"
    # The figures and their labels name the GRU: the plot's legend, the card (no "LSTM" before the alternatives).
    assert plotted == [["GRU ensemble (calibrated)", "gradient-boosted trees"]]
    assert "LSTM" not in (out / "model-card.md").read_text().split("## Alternatives considered")[0]
    assert "lstm" not in json.dumps({k: v for k, v in metrics.items() if k != "alternativesConsidered"})
    assert manifest["provenance"]["training"]["hyperparameters"]["hide"] == 0.5
    assert manifest["provenance"]["training"]["hyperparameters"]["hide_copies"] is True
    names = [s["name"] for s in manifest["scenarios"]]
    assert names == ["vitals", "vitals-routine-labs", "first-6h", "first-12h", "first-24h", "full"]
    assert all(0.0 <= s["heldOutAuroc"] <= 1.0 for s in manifest["scenarios"])
    import onnx
    graph = onnx.load(str(out / "model.onnx")).graph
    assert [n.op_type for n in graph.node].count("GRU") == 4  # 2 layers x 2 networks
    assert "| `vitals`:" in (out / "model-card.md").read_text()
