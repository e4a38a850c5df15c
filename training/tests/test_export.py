"""ONNX Runtime (onnxruntime-node) against PyTorch's packed-sequence forward pass."""
import json
import os

import numpy as np
import onnx
import torch
import pytest

from training.export import build_onnx, fill_manifest, main as export_main, write_manifest
from training.make_fixtures import TINY_DIR, reference_inputs, tiny_manifest
from training.model import HybridClinicalModel, MortalityGRU, MortalityLSTM, load_checkpoint, save_checkpoint
from training.preprocess import InputTensor
from training.repackage import repackage
from training.spec import input_width

from .ort import run_onnx, run_shipped


def raw_batch(manifest, seed, stays=50):
    """Raw stays as a shipped graph takes them (values, statics, NaN = missing) and their lengths."""
    return reference_inputs(manifest, seed=seed, stays=stays)


def pytorch_probability(model, manifest, values, statics, lengths, temperature=1.0):
    with torch.no_grad():
        x = InputTensor(manifest)(torch.from_numpy(values), torch.from_numpy(statics))
        return model.predict_proba(x, torch.from_numpy(lengths), temperature).numpy()


def random_batch(n_inputs, stays, max_len, seed):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, max_len + 1, (stays,), generator=g)
    lengths[0] = max_len  # the padded time axis is as long as the longest stay
    lengths[1] = 1
    x = torch.randn(stays, max_len, n_inputs, generator=g)
    x = torch.round(x * 1e5) / 1e5
    for b, n in enumerate(lengths.tolist()):
        x[b, n:] = 0
    return x, lengths


def test_onnx_matches_pytorch_on_random_lengths(tmp_path):
    torch.manual_seed(3)
    model = MortalityLSTM(121, hidden=16, dropout=0.3).eval()
    path = str(tmp_path / "m.onnx")
    onnx.save(build_onnx([model], temperature=1.7), path)
    x, lengths = random_batch(121, 40, 48, seed=11)
    with torch.no_grad():
        expected = model.predict_proba(x, lengths, 1.7).numpy()
    got = run_onnx(path, x.numpy(), lengths.numpy())
    assert got.shape == expected.shape
    assert np.max(np.abs(got - expected)) <= 1e-5


def test_gru_onnx_matches_pytorch_packed_sequences_on_random_lengths(tmp_path):
    # Gate order (r, z, n) -> (z, r, h) and linear_before_reset=1: a wrong choice of either
    # moves the probabilities by far more than 1e-5.
    torch.manual_seed(13)
    model = MortalityGRU(121, hidden=16, dropout=0.3).eval()
    path = str(tmp_path / "gru.onnx")
    graph = build_onnx([model], temperature=1.3)
    assert {n.op_type for n in graph.graph.node} >= {"GRU"}
    onnx.save(graph, path)
    x, lengths = random_batch(121, 40, 48, seed=17)
    with torch.no_grad():
        expected = model.predict_proba(x, lengths, 1.3).numpy()
    got = run_onnx(path, x.numpy(), lengths.numpy())
    assert np.max(np.abs(got - expected)) <= 1e-5


def test_gru_checkpoints_load_as_gru(tmp_path):
    models = [MortalityGRU(11, hidden=6).eval() for _ in range(2)]
    save_checkpoint(str(tmp_path / "g.pt"), models, 1.2)
    loaded, temperature = load_checkpoint(str(tmp_path / "g.pt"))
    assert [m.architecture for m in loaded] == ["gru", "gru"] and temperature == 1.2
    x, lengths = random_batch(11, 5, 9, seed=2)
    with torch.no_grad():
        assert torch.equal(loaded[0](x, lengths), models[0](x, lengths))


def test_padding_past_each_length_does_not_change_the_output(tmp_path):
    torch.manual_seed(4)
    model = MortalityLSTM(121, hidden=8).eval()
    path = str(tmp_path / "m.onnx")
    onnx.save(build_onnx([model]), path)
    x, lengths = random_batch(121, 10, 20, seed=5)
    noisy = x.clone()
    for b, n in enumerate(lengths.tolist()):
        noisy[b, n:] = 9.0
    assert np.max(np.abs(run_onnx(path, x.numpy(), lengths.numpy()) - run_onnx(path, noisy.numpy(), lengths.numpy()))) == 0


def test_ensemble_graph_averages_member_logits_before_the_temperature(tmp_path):
    torch.manual_seed(5)
    models = [MortalityLSTM(121, hidden=8).eval() for _ in range(3)]
    path = str(tmp_path / "m.onnx")
    onnx.save(build_onnx(models, temperature=0.8), path)
    x, lengths = random_batch(121, 12, 30, seed=6)
    with torch.no_grad():
        logits = torch.stack([m(x, lengths) for m in models]).mean(0)
        expected = torch.sigmoid(logits / 0.8).numpy()
    assert np.max(np.abs(run_onnx(path, x.numpy(), lengths.numpy()) - expected)) <= 1e-5


def test_export_cli_turns_a_checkpoint_and_manifest_into_a_model_package(tmp_path):
    torch.manual_seed(6)
    model = MortalityLSTM(121, hidden=12).eval()
    ckpt = tmp_path / "ckpt.pt"
    save_checkpoint(str(ckpt), [model], temperature=1.2)
    manifest = tiny_manifest()
    manifest["architecture"]["nInputs"] = 0
    (tmp_path / "in.json").write_text(json.dumps(manifest))
    out = tmp_path / "pkg"
    export_main(["--checkpoint", str(ckpt), "--manifest", str(tmp_path / "in.json"), "--out", str(out)])
    written = json.loads((out / "manifest.json").read_text())
    assert written["architecture"]["nInputs"] == 121
    assert written["architecture"]["hidden"] == 12
    assert written["calibration"]["temperature"] == 1.2
    assert written["onnx"]["inputs"] == {"values": "values", "statics": "statics", "lengths": "lengths"}
    values, statics, lengths = raw_batch(written, seed=8)
    expected = pytorch_probability(model, written, values, statics, lengths, 1.2)
    assert np.max(np.abs(run_shipped(str(out / "model.onnx"), values, statics, lengths) - expected)) <= 1e-5


def test_export_accepts_a_bare_state_dict_of_the_reference_class(tmp_path):
    torch.manual_seed(7)
    model = MortalityLSTM(121, hidden=10).eval()
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    (tmp_path / "in.json").write_text(json.dumps(tiny_manifest()))
    export_main(["--checkpoint", str(tmp_path / "sd.pt"), "--manifest", str(tmp_path / "in.json"),
                 "--out", str(tmp_path / "pkg")])
    values, statics, lengths = raw_batch(tiny_manifest(), seed=9)
    expected = pytorch_probability(model, tiny_manifest(), values, statics, lengths)
    got = run_shipped(str(tmp_path / "pkg" / "model.onnx"), values, statics, lengths)
    assert np.max(np.abs(got - expected)) <= 1e-5


def test_tiny_model_fixture_reproduces_its_pytorch_reference():
    ref = json.loads(open(os.path.join(TINY_DIR, "pytorch-reference.json")).read())
    assert sorted(set(ref["lengths"])) == list(range(1, 49))
    nan = lambda rows: np.array(rows, dtype=np.float64)  # null -> NaN
    got = run_shipped(os.path.join(TINY_DIR, "model.onnx"), nan(ref["values"]), nan(ref["statics"]),
                      np.array(ref["lengths"]))
    assert np.max(np.abs(got - np.array(ref["probability"]))) <= 1e-5


def test_hybrid_onnx_matches_pytorch_packed_sequences_on_random_lengths(tmp_path):
    # The note projection, the concatenation order and sequence_lens: getting any of them wrong
    # moves the probabilities by far more than 1e-5.
    torch.manual_seed(23)
    model = HybridClinicalModel(121, note_dim=768, hidden=16, note_hidden=12, dropout=0.3).eval()
    path = str(tmp_path / "hybrid.onnx")
    graph = build_onnx([model], temperature=1.4)
    assert [i.name for i in graph.graph.input] == ["x", "lengths", "note"]
    onnx.save(graph, path)
    x, lengths = random_batch(121, 40, 48, seed=29)
    note = torch.round(torch.randn(40, 768, generator=torch.Generator().manual_seed(31)) * 1e4) / 1e4
    with torch.no_grad():
        expected = model.predict_proba(x, lengths, note, 1.4).numpy()
    got = run_onnx(path, x.numpy(), lengths.numpy(), note.numpy())
    assert np.max(np.abs(got - expected)) <= 1e-5
    # The note is read: another embedding gives other probabilities.
    assert np.max(np.abs(run_onnx(path, x.numpy(), lengths.numpy(), -note.numpy()) - expected)) > 1e-3


def test_hybrid_checkpoint_exports_with_its_note_declaration(tmp_path):
    torch.manual_seed(37)
    model = HybridClinicalModel(input_width(tiny_manifest()), note_dim=32, hidden=8, note_hidden=4).eval()
    torch.save(model.state_dict(), tmp_path / "bare.pt")  # a bare state_dict of the reference class
    manifest = tiny_manifest()
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="noteEmbedding.encoder"):
        export_main(["--checkpoint", str(tmp_path / "bare.pt"), "--manifest", str(tmp_path / "m.json"),
                     "--out", str(tmp_path / "out")])
    manifest["noteEmbedding"] = {"encoder": "test encoder", "normalisation": "none"}
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    export_main(["--checkpoint", str(tmp_path / "bare.pt"), "--manifest", str(tmp_path / "m.json"),
                 "--out", str(tmp_path / "out")])
    written = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert written["noteEmbedding"] == {"encoder": "test encoder", "normalisation": "none", "dimension": 32}
    assert written["onnx"]["inputs"] == {"values": "values", "statics": "statics", "lengths": "lengths", "note": "note"}
    assert written["architecture"]["type"] == "hybrid" and written["architecture"]["noteProjection"] == 4
    loaded, _ = load_checkpoint(str(tmp_path / "bare.pt"))
    assert isinstance(loaded[0], HybridClinicalModel) and loaded[0].note_dim == 32


def test_repackaging_an_x_graph_leaves_its_probabilities_unchanged(tmp_path):
    # A model exported before the input tensor moved into the graph: the network alone, fed
    # x as training built it, against the repackaged graph fed the raw stays.
    torch.manual_seed(41)
    model = MortalityGRU(input_width(tiny_manifest()), hidden=8).eval()
    manifest = fill_manifest(tiny_manifest(), [model], 1.3)
    manifest["onnx"]["inputs"] = {"x": "x", "lengths": "lengths"}
    onnx.save(build_onnx([model], temperature=1.3), str(tmp_path / "model.onnx"))
    write_manifest(str(tmp_path), manifest)
    values, statics, lengths = raw_batch(manifest, seed=43)
    with torch.no_grad():
        x = InputTensor(manifest)(torch.from_numpy(values), torch.from_numpy(statics)).numpy()
    before = run_onnx(str(tmp_path / "model.onnx"), x, lengths)
    repackage(str(tmp_path))
    after = run_shipped(str(tmp_path / "model.onnx"), values, statics, lengths)
    assert np.array_equal(before, after)
    assert json.loads((tmp_path / "manifest.json").read_text())["onnx"]["inputs"] == {
        "values": "values", "statics": "statics", "lengths": "lengths"}
    with pytest.raises(ValueError, match="already repackaged"):
        repackage(str(tmp_path))
