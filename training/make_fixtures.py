"""Writes the tiny test model and its PyTorch reference outputs.

    /usr/bin/python3 -m training.make_fixtures

test/fixtures/tiny-model/ (and tiny-gru-model/, tiny-hybrid-model/): model.onnx and
manifest.json of an untrained (bootstrap) reference network with the real model's variables and statics but hidden size 8 and seeded random
weights, and pytorch-reference.json: 60 stays of random raw inputs (hourly values, NaN = not
measured, and statics, as the graph takes them), lengths 1..48 (each at least once), and the
probabilities PyTorch computes for them through InputTensor and pack_padded_sequence.
"""
from __future__ import annotations

import json
import os

import numpy as np
import torch

from .export import export
from .model import HybridClinicalModel, MortalityRNN
from .preprocess import InputTensor
from .spec import MAX_HOURS, SCENARIOS, base_manifest, input_width

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_DIR = os.path.join(ROOT, "test", "fixtures", "tiny-model")
# The same fixture with GRU layers: the serving path's architecture-independence is tested on both.
TINY_GRU_DIR = os.path.join(ROOT, "test", "fixtures", "tiny-gru-model")
TINY_SEED = 20120
TINY_TEMPERATURE = 1.5

# Rough centre and spread of each variable (medians / spreads of the challenge data) so the
# tiny model's inputs are on a sensible scale; the real model computes these from its
# training split.
_PLACEHOLDER_STATS = {
    "Albumin": (2.9, 0.65), "ALP": (116, 170), "ALT": (390, 1200), "AST": (500, 1700), "Bilirubin": (2.9, 5.6),
    "BUN": (27, 23), "Cholesterol": (156, 45), "Creatinine": (1.5, 1.6), "DiasABP": (59, 13), "FiO2": (0.54, 0.19),
    "GCS": (11.4, 3.9), "Glucose": (141, 67), "HCO3": (23, 4.6), "HCT": (30.7, 5.0), "HR": (87, 18), "K": (4.1, 0.68),
    "Lactate": (2.9, 2.6), "Mg": (2.0, 0.4), "MAP": (80, 16), "MechVent": (1, 1), "Na": (139, 5.2),
    "NIDiasABP": (58, 15), "NIMAP": (77, 15), "NISysABP": (119, 24), "PaCO2": (40, 9.4), "PaO2": (147, 85),
    "pH": (7.39, 0.07), "Platelets": (191, 106), "RespRate": (19.7, 5.6), "SaO2": (96.6, 3.8), "SysABP": (119, 23),
    "Temp": (37.0, 0.9), "TroponinI": (7.2, 10.4), "TroponinT": (1.2, 2.8), "Urine": (117, 170), "WBC": (12.7, 7.8),
    "Weight": (83, 24),
}
_PLACEHOLDER_STATICS = {"Age": (64.5, 17.0), "Height": (170, 11)}


def tiny_manifest() -> dict:
    m = base_manifest("icu-mortality", "0.0.0-tiny", "2026-11-25T00:00:00Z", hidden=8, bootstrap=True,
                      description="Untrained test fixture: seeded random weights, placeholder normalisation. Not a model.")
    for v in m["variables"]:
        v["mean"], v["std"] = _PLACEHOLDER_STATS[v["name"]]
    for s in m["statics"]:
        if s["kind"] == "numeric":
            s["mean"], s["std"] = _PLACEHOLDER_STATICS[s["name"]]
    m["provenance"] = {"dataset": "none (random weights)", "licence": "n/a", "generator": "training/make_fixtures.py",
                       "seed": TINY_SEED}
    # The shipped model's scenarios, unevaluated: an untrained model has no held-out AUROC.
    m["scenarios"] = [{"name": sc["name"], "label": sc["label"], "variables": sc["variables"], "maxHours": sc["maxHours"],
                       "heldOutAuroc": None} for sc in SCENARIOS]
    return m


def tiny_model(architecture: str = "lstm") -> MortalityRNN:
    torch.manual_seed(TINY_SEED)
    n_inputs = base_manifest("x", "0", "", hidden=8, bootstrap=True, description="")["architecture"]["nInputs"]
    return MortalityRNN(n_inputs, hidden=8, dropout=0.0, architecture=architecture).eval()


def reference_inputs(manifest: dict, seed: int = 7, stays: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random raw stays around the manifest's means: values [stays, 48, V] (a third of the cells
    measured, NaN elsewhere and after each stay's length), statics [stays, S] (a tenth missing,
    categorical codes from the manifest's, or one it does not know), lengths."""
    rng = np.random.default_rng(seed)
    lengths = np.concatenate([np.arange(1, MAX_HOURS + 1), rng.integers(1, MAX_HOURS + 1, stays - MAX_HOURS)])
    rng.shuffle(lengths)
    mean = np.array([v["mean"] for v in manifest["variables"]])
    std = np.array([v["std"] for v in manifest["variables"]])
    values = np.full((stays, MAX_HOURS, len(mean)), np.nan)
    for b, n in enumerate(lengths):
        hours = np.round(mean + std * rng.normal(0, 1.2, (n, len(mean))), 4)
        values[b, :n] = np.where(rng.random((n, len(mean))) < 1 / 3, hours, np.nan)
    statics = np.full((stays, len(manifest["statics"])), np.nan)
    for i, spec in enumerate(manifest["statics"]):
        if spec["kind"] == "numeric":
            column = np.round(spec["mean"] + spec["std"] * rng.normal(0, 1, stays), 2)
        else:
            column = rng.choice(spec["categories"] + [max(spec["categories"]) + 1], stays).astype(np.float64)
        statics[:, i] = np.where(rng.random(stays) < 0.1, np.nan, column)
    return values, statics, lengths.astype(np.int64)


def _reference(manifest: dict, model: torch.nn.Module, description: str, note: np.ndarray | None = None) -> dict:
    values, statics, lengths = reference_inputs(manifest)
    with torch.no_grad():
        x = InputTensor(manifest)(torch.from_numpy(values), torch.from_numpy(statics))
        extra = () if note is None else (torch.tensor(note, dtype=torch.float32),)
        p = model.predict_proba(x, torch.tensor(lengths), *extra, TINY_TEMPERATURE)
    ref = {
        "description": description,
        "generator": "training/make_fixtures.py",
        "temperature": TINY_TEMPERATURE,
        "lengths": lengths.tolist(),
        "values": np.where(np.isnan(values), None, values).tolist(),
        "statics": np.where(np.isnan(statics), None, statics).tolist(),
        "probability": [float(v) for v in p.numpy().astype(np.float64)],
    }
    return ref if note is None else {**ref, "note": [[float(v) for v in row] for row in note]}


def _write_reference(out_dir: str, ref: dict) -> None:
    with open(os.path.join(out_dir, "pytorch-reference.json"), "w") as f:
        json.dump(ref, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {out_dir}")


_LAYOUT = ("values is batch-major [stay][hour][variable] in the manifest's order, null = not measured, padded "
           "with null to 48 hours; statics is [stay][static] (value or category code, null = missing)")


def write_tiny(out_dir: str = TINY_DIR, architecture: str = "lstm") -> None:
    manifest = tiny_manifest()
    model = tiny_model(architecture)
    export([model], TINY_TEMPERATURE, manifest, out_dir)
    _write_reference(out_dir, _reference(manifest, model, "PyTorch (InputTensor, pack_padded_sequence) "
                                         f"probabilities of the tiny model for these inputs; {_LAYOUT}."))


# The hybrid fixture: the tiny network fused with a 768-wide note projection (random weights).
TINY_HYBRID_DIR = os.path.join(ROOT, "test", "fixtures", "tiny-hybrid-model")
TINY_NOTE_HIDDEN = 4


def write_tiny_hybrid(out_dir: str = TINY_HYBRID_DIR) -> None:
    """An untrained HybridClinicalModel and its PyTorch probabilities for random stays and
    random note embeddings, in the layout of pytorch-reference.json plus "note" [stay][dim]."""
    manifest = tiny_manifest()
    manifest["description"] = ("Untrained hybrid test fixture: seeded random weights, placeholder normalisation, "
                               "random note embeddings. Not a model.")
    manifest["noteEmbedding"] = {"encoder": "any 768-wide encoder (test fixture: the weights are random)",
                                 "normalisation": "none: the encoder's [CLS] vector as it comes"}
    torch.manual_seed(TINY_SEED)
    model = HybridClinicalModel(input_width(manifest), hidden=8, note_hidden=TINY_NOTE_HIDDEN).eval()
    export([model], TINY_TEMPERATURE, manifest, out_dir)
    note = np.round(np.random.default_rng(11).normal(0, 0.5, (60, model.note_dim)), 4)
    _write_reference(out_dir, _reference(manifest, model, "PyTorch (InputTensor, pack_padded_sequence) "
                                         f"probabilities of the tiny hybrid model for these inputs; {_LAYOUT}; "
                                         "note is [stay][dimension].", note))


def main(argv: list[str] | None = None) -> None:
    import argparse
    from .model import load_checkpoint
    p = argparse.ArgumentParser(description="Regenerate the test fixtures.")
    p.add_argument("--skew-model", default=None, help="model folder whose manifest drives the skew fixture, "
                   "e.g. models/icu-mortality/1.1.0 (needs --checkpoint)")
    p.add_argument("--checkpoint", default=None, help="PyTorch checkpoint of that model (training/runs/<version>/checkpoint.pt)")
    args = p.parse_args(argv)
    write_tiny()
    write_tiny(TINY_GRU_DIR, "gru")
    write_tiny_hybrid()
    if args.skew_model:
        if not args.checkpoint:
            p.error("--skew-model needs --checkpoint")
        models, temperature = load_checkpoint(args.checkpoint)
        write_skew(args.skew_model, models, temperature)


if __name__ == "__main__":
    main()


# --- Skew fixture: synthetic raw records through the Python pipeline --------------------

SKEW_DIR = os.path.join(ROOT, "test", "fixtures", "skew")


def _fmt(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def record_text(descriptors: list[tuple[str, str]], lines: list[tuple[int, str, str]]) -> str:
    out = ["Time,Parameter,Value"]
    out += [f"00:00,{name},{value}" for name, value in descriptors]
    out += [f"{_fmt(m)},{name},{value}" for m, name, value in lines]
    return "\n".join(out) + "\n"


def record_descriptors(rid: int, age="63", gender="1", height="175.3", icu="3", weight="81.2") -> list[tuple[str, str]]:
    d = [("RecordID", str(rid))]
    for name, v in (("Age", age), ("Gender", gender), ("Height", height), ("ICUType", icu), ("Weight", weight)):
        if v is not None:
            d.append((name, v))
    return d


def random_stay(rng: np.random.Generator, hours: int, start: int = 7) -> list[tuple[int, str, str]]:
    """Plausible hourly vitals, two-hourly urine, a few labs, at odd minutes."""
    lines: list[tuple[int, str, str]] = []
    for h in range(hours):
        m = h * 60 + start
        if m > hours * 60:
            break
        lines += [(m, "HR", str(int(rng.normal(90, 12)))), (m, "NISysABP", str(int(rng.normal(120, 15)))),
                  (m, "NIDiasABP", str(int(rng.normal(60, 8)))), (m, "NIMAP", f"{rng.normal(80, 9):.2f}"),
                  (m, "RespRate", str(int(rng.normal(19, 4))))]
        if h % 2 == 0:
            lines += [(m, "Urine", str(int(rng.uniform(0, 200)))), (m, "Temp", f"{rng.normal(37.1, 0.5):.1f}")]
        if h % 4 == 1:
            lines += [(m + 11, "GCS", str(int(rng.integers(8, 16))))]
        if h % 12 == 2:
            lines += [(m + 23, "pH", f"{rng.normal(7.38, 0.05):.2f}"), (m + 23, "PaO2", str(int(rng.normal(110, 30)))),
                      (m + 23, "PaCO2", str(int(rng.normal(40, 5)))), (m + 23, "HCO3", str(int(rng.normal(24, 3)))),
                      (m + 23, "Lactate", f"{rng.uniform(0.6, 4):.1f}"), (m + 23, "SaO2", str(int(rng.uniform(90, 100)))),
                      (m + 40, "Glucose", str(int(rng.normal(140, 30)))), (m + 40, "K", f"{rng.normal(4.1, 0.4):.1f}"),
                      (m + 40, "Na", str(int(rng.normal(139, 3)))), (m + 40, "BUN", str(int(rng.normal(25, 8)))),
                      (m + 40, "Creatinine", f"{rng.uniform(0.6, 2.5):.1f}"), (m + 40, "HCT", f"{rng.normal(31, 4):.1f}"),
                      (m + 40, "Platelets", str(int(rng.normal(200, 60)))), (m + 40, "WBC", f"{rng.normal(11, 3):.1f}"),
                      (m + 40, "Mg", f"{rng.normal(2.0, 0.3):.1f}")]
    lines.sort(key=lambda r: r[0])
    return lines


def skew_records() -> dict[str, str]:
    """~12 synthetic records in the challenge's text format, each with a dirty case."""
    rng = np.random.default_rng(2012)
    recs: dict[str, str] = {}
    recs["900001-clean-48h.txt"] = record_text(record_descriptors(900001), random_stay(rng, 48))
    recs["900002-temp-degF.txt"] = record_text(record_descriptors(900002, icu="4"), [
        (5, "Temp", "36.8"), (65, "Temp", "98.6"), (70, "HR", "88"), (125, "Temp", "101.3"), (190, "Temp", "37.9"),
        (250, "Temp", "-1"), (251, "Temp", "20.5"), (310, "Temp", "120")])
    recs["900003-fio2-percent.txt"] = record_text(record_descriptors(900003, icu="2"), [
        (10, "FiO2", "100"), (10, "MechVent", "1"), (75, "FiO2", "0.5"), (140, "FiO2", "40"), (200, "FiO2", "0.35"),
        (260, "FiO2", "0.1"), (262, "FiO2", "150"), (300, "HR", "75")])
    recs["900004-minus-one.txt"] = record_text(record_descriptors(900004, age="-1", gender="-1", height="-1", icu="1", weight="-1"), [
        (30, "HR", "-1"), (31, "HR", "72"), (90, "NISysABP", "-1"), (91, "NIDiasABP", "-1"), (95, "GCS", "-1"),
        (95, "GCS", "14"), (150, "Urine", "-1"), (151, "Urine", "35")])
    recs["900005-out-of-range.txt"] = record_text(record_descriptors(900005, icu="3"), [
        (12, "HR", "400"), (12, "SaO2", "0"), (12, "MAP", "0"), (13, "SysABP", "0"), (13, "DiasABP", "0"),
        (70, "pH", "735"), (75, "pH", "97"), (80, "pH", "7.21"), (90, "Weight", "0"), (95, "K", "22.9"),
        (130, "HR", "0"), (131, "RespRate", "0"), (140, "GCS", "2"), (141, "Lactate", "0"), (150, "SaO2", "100")])
    recs["900006-duplicates.txt"] = record_text(record_descriptors(900006), [
        (20, "MAP", "71"), (20, "MAP", "83"), (20, "Urine", "400"), (20, "Urine", "0"), (20, "Urine", "60"),
        (45, "Urine", "25"), (45, "HR", "101"), (45, "HR", "99"), (80, "Urine", "30"), (80, "Urine", "30")])
    recs["900007-hour-48.txt"] = record_text(record_descriptors(900007), random_stay(rng, 47) + [
        (47 * 60 + 30, "HR", "110"), (48 * 60, "HR", "115"), (48 * 60, "Urine", "50"), (47 * 60 + 59, "Urine", "20"),
        (48 * 60 + 1, "HR", "140"), (49 * 60, "Temp", "38.0")])
    recs["900008-three-hours.txt"] = record_text(record_descriptors(900008, age="88", gender="0", icu="1"), [
        (3, "HR", "120"), (3, "NIMAP", "55"), (64, "HR", "131"), (64, "Lactate", "6.1"), (165, "HR", "140"),
        (165, "NIMAP", "48")])
    recs["900009-weight-series.txt"] = record_text(record_descriptors(900009, weight="95.4"), [
        (0, "HR", "80"), (12 * 60, "Weight", "94.1"), (12 * 60 + 5, "HR", "82"), (30 * 60, "Weight", "92.7"),
        (30 * 60, "Weight", "92.9"), (31 * 60, "HR", "85")])
    recs["900010-missing-descriptors.txt"] = record_text(
        [("RecordID", "900010"), ("Gender", "0"), ("Height", "400"), ("ICUType", "7")], [
            (60, "HR", "77"), (62, "Albumin", "2.1"), (62, "ALP", "120"), (62, "ALT", "35"), (62, "AST", "41"),
            (62, "Bilirubin", "1.2"), (62, "Cholesterol", "180"), (62, "TroponinI", "2.4"), (62, "TroponinT", "0.31"),
            (200, "HR", "79")])
    recs["900011-descriptors-only.txt"] = record_text(record_descriptors(900011, weight="-1"), [])
    recs["900012-late-start-malformed.txt"] = (
        record_text(record_descriptors(900012, age="45", weight="-1", icu="2"), [(5 * 60 + 10, "HR", "66"), (5 * 60 + 10, "SysABP", "131"),
                                                                 (5 * 60 + 10, "DiasABP", "62"), (5 * 60 + 10, "MAP", "85")])
        + "06:15,,1.9\n06:20,HR,\n06:25,HR,abc\n6:5,HR,70\n06:75,HR,70\n06:30,Foo,12\n06:40,HR,0x10\n06:41,HR,NaN\n"
        + "07:00, HR , 71 \n07:05,Age,30\n")
    recs["900014-one-hour.txt"] = record_text(record_descriptors(900014, age="52", gender="1", icu="4", weight="70"), [
        (15, "HR", "104"), (15, "NIMAP", "66"), (40, "HR", "108"), (40, "Urine", "35"), (41, "Urine", "15"),
        (59, "Temp", "36.2")])
    recs["900013-random-dense.txt"] = record_text(
        record_descriptors(900013, age="71", gender="0", height="160", icu="4", weight="62"), random_stay(rng, 48, start=31))
    return recs


def write_skew(model_dir: str, models: list[MortalityRNN], temperature: float) -> None:
    """Writes the synthetic records and expected.json: cleaned rows, statics, input tensor and
    the PyTorch probability of the model in model_dir (whose manifest drives the cleaning)."""
    from .physionet import bin_observations, parse_record
    from .preprocess import preprocess

    with open(os.path.join(model_dir, "manifest.json")) as f:
        manifest = json.load(f)
    os.makedirs(SKEW_DIR, exist_ok=True)
    names = [v["name"] for v in manifest["variables"]]
    expected = {
        "description": "Synthetic PhysioNet 2012 records (made up, not patient data) through training/physionet.py "
                       "(cleaning, binning), training/preprocess.py (input tensor) and PyTorch (packed sequences).",
        "generator": "training/make_fixtures.py (also run by training.train)",
        "model": {"name": manifest["name"], "version": manifest["version"],
                  "dir": os.path.relpath(model_dir, ROOT)},
        "tolerance": {"x": 1e-6, "probability": 1e-5},
        "records": [],
    }
    for fname, text in sorted(skew_records().items()):
        with open(os.path.join(SKEW_DIR, fname), "w") as f:
            f.write(text)
        rec = parse_record(text, manifest)
        rows = bin_observations(rec.observations, manifest)
        x = preprocess(rows, rec.statics, manifest)
        xt = torch.tensor(x[None], dtype=torch.float32)
        lengths = torch.tensor([x.shape[0]])
        with torch.no_grad():
            logit = torch.stack([m(xt, lengths) for m in models]).mean(0)
            prob = float(torch.sigmoid(logit / temperature)[0])
        expected["records"].append({
            "file": fname,
            "id": rec.record_id,
            "statics": rec.statics,
            "hours": len(rows),
            "rows": [{n: row.get(n) for n in names} for row in rows],
            "x": x.tolist(),
            "probability": prob,
        })
    with open(os.path.join(SKEW_DIR, "expected.json"), "w") as f:
        json.dump(expected, f)
        f.write("\n")
    print(f"wrote {SKEW_DIR} ({len(expected['records'])} records) for {manifest['name']} {manifest['version']}")
