"""The fixed schedule and the mean-risk shift used by the refit (training/README.md, version 1.3.0)."""
import numpy as np
import torch

from training.fit import FitConfig, fit_one
from training.model import MortalityLSTM
from training.ensemble import match_mean_risk


def _stays(n=40, t=6, n_inputs=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, t, n_inputs)).astype(np.float32)
    lengths = rng.integers(1, t + 1, n).astype(np.int64)
    y = (rng.random(n) < 0.3).astype(np.float64)
    return x, lengths, y


def _logits(models, x, lengths):
    with torch.no_grad():
        return np.mean([m.forward(torch.from_numpy(x), torch.from_numpy(lengths)).double().numpy() for m in models], axis=0)


def test_the_shift_makes_the_mean_risk_equal_the_observed_rate_without_reordering_stays():
    x, lengths, y = _stays()
    torch.manual_seed(3)
    members = [MortalityLSTM(5, 8).eval() for _ in range(2)]
    temperature = 1.3
    before = _logits(members, x, lengths)
    shift = match_mean_risk(members, x, lengths, y, temperature)
    after = _logits(members, x, lengths)
    # Every network's output bias moved by the shift, so the ensemble logit moved by exactly that.
    np.testing.assert_allclose(after - before, shift, atol=1e-5)
    risk = 1 / (1 + np.exp(-after / temperature))
    assert abs(risk.mean() - y.mean()) < 1e-4
    assert list(np.argsort(after, kind="stable")) == list(np.argsort(before, kind="stable"))


def test_a_fixed_schedule_runs_every_epoch_keeps_the_last_weights_and_needs_no_validation():
    x, lengths, y = _stays(seed=1)
    cfg = FitConfig(hidden=8, dropout=0.0, batch_size=16, epochs=3, max_epochs=1, patience=1)
    fixed = fit_one(x, lengths, y, None, None, None, cfg, seed=5, log=lambda s: None)
    assert [h["epoch"] for h in fixed.history] == [0, 1, 2]
    assert fixed.best_epoch == 2 and fixed.best_val_auroc is None
    # The same seed for one epoch more gives other weights: the last epoch's were kept, not a copy
    # of an earlier one.
    longer = fit_one(x, lengths, y, None, None, None, FitConfig(**{**cfg.__dict__, "epochs": 4}), seed=5,
                     log=lambda s: None)
    shorter = fit_one(x, lengths, y, None, None, None, FitConfig(**{**cfg.__dict__, "epochs": 2}), seed=5,
                      log=lambda s: None)
    w = lambda r: r.model.head[-1].weight.detach().numpy().copy()  # noqa: E731
    assert not np.allclose(w(fixed), w(longer)) and not np.allclose(w(fixed), w(shorter))
