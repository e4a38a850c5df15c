"""Training loop of one reference network, ensemble prediction and temperature calibration."""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from .model import MortalityRNN


@dataclass
class FitConfig:
    hidden: int = 64
    dropout: float = 0.5
    lr: float = 2e-3
    weight_decay: float = 1e-3
    batch_size: int = 128
    max_epochs: int = 14
    patience: int = 4
    pos_weight: float = 1.0
    grad_clip: float = 1.0
    # Random-prefix training: each training stay in a batch is, with probability `crop`, read only up to
    # a random hour in [crop_min, maxHours] (its label unchanged). The service scores stays after 1-48
    # hours; on validation it regularised better than longer schedules, weight averaging or a stronger
    # teacher (training/alternatives.json). 0 = whole stays (version 1.1.0); train.py uses 0.3.
    crop: float = 0.0
    crop_min: int = 12
    # Target replication (Lipton et al., ICLR 2016): in training the head also reads the hidden state of
    # every real hour, each with the stay's target; the loss is `replicate` x their mean + (1 - replicate)
    # x the last hour's loss. Inference is unchanged (last real hour only). It teaches the network to give
    # a sensible risk from any hour on, which is how the service is called (training/alternatives.json).
    replicate: float = 0.0
    # Fixed schedule: train exactly this many epochs and keep the last weights, with no validation
    # split needed (the refit on every development stay has none). 0 = early stopping on validation
    # AUROC (`max_epochs`, `patience`), as versions 1.2.0 and earlier.
    epochs: int = 0
    architecture: str = "lstm"
    # Input-group hiding: each training stay in a batch is, with probability `hide`, read with only the
    # variables of one input profile (`Hiding.profiles`, e.g. the bedside vitals), the others blanked as if
    # never measured. Teaches one network to score well whatever a caller sends (version 1.4.0).
    hide: float = 0.0
    # With hiding: the chosen stays are added to the batch as hidden copies instead of replacing the
    # full record, so every stay is also read whole in every epoch.
    hide_copies: bool = False
    # Running summaries (model.RunningSummaries) of this many variables appended to the inputs; 0 = none.
    summary_vars: int = 0


@dataclass
class Hiding:
    """What `FitConfig.hide` may keep: profiles [P, V] (True = the variable is kept) over the
    manifest's variables, and the manifest's deltaCap (a never-measured variable's hours-since
    input after t + 1 hours is min(t + 1, deltaCap) / deltaCap)."""
    profiles: np.ndarray
    delta_cap: int

    def apply(self, x: torch.Tensor, rng: np.random.Generator, share: float) -> tuple[torch.Tensor, np.ndarray]:
        """A copy of x [batch, time, n_inputs] with the hidden variables of the chosen stays blanked,
        and which profile each stay got (0 = none, p + 1 = profiles[p])."""
        n_vars = self.profiles.shape[1]
        chosen = rng.random(len(x)) < share
        which = np.zeros(len(x), dtype=np.int64)
        if not chosen.any():
            return x, which
        which[chosen] = 1 + rng.integers(len(self.profiles), size=int(chosen.sum()))
        keep = np.ones((len(x), n_vars), dtype=np.float32)
        keep[chosen] = self.profiles[which[chosen] - 1]
        k = torch.from_numpy(keep)[:, None, :]
        never = torch.clamp(torch.arange(1, x.shape[1] + 1, dtype=torch.float32), max=self.delta_cap) / self.delta_cap
        out = x.clone()
        out[:, :, :n_vars] *= k
        out[:, :, n_vars:2 * n_vars] *= k
        out[:, :, 2 * n_vars:3 * n_vars] = out[:, :, 2 * n_vars:3 * n_vars] * k + never[None, :, None] * (1 - k)
        return out, which


@dataclass
class FitResult:
    model: MortalityRNN
    best_epoch: int
    # None when the fixed schedule ran without a validation split.
    best_val_auroc: float | None
    history: list[dict] = field(default_factory=list)


def predict_logits(models: list[MortalityRNN], x: np.ndarray, lengths: np.ndarray, batch: int = 500) -> np.ndarray:
    """Mean logit of the ensemble (what the exported graph computes before the temperature)."""
    out = np.zeros(len(x), dtype=np.float64)
    for m in models:
        m.eval()
        with torch.no_grad():
            for i in range(0, len(x), batch):
                out[i:i + batch] += m.forward_unpadded_gather(torch.from_numpy(x[i:i + batch]),
                                                             torch.from_numpy(lengths[i:i + batch])).double().numpy()
    return out / len(models)


def replicated_loss(model: MortalityRNN, x: torch.Tensor, lengths: torch.Tensor, y: torch.Tensor, alpha: float,
                     loss_fn: torch.nn.BCEWithLogitsLoss) -> torch.Tensor:
    """alpha x (each stay's mean loss over its real hours) + (1 - alpha) x the loss at its last real hour."""
    out = model.sequence(x)
    z = model.head(out).squeeze(-1)  # [batch, time]
    last = z[torch.arange(len(z)), (lengths.long() - 1).clamp(min=0)]
    real = (torch.arange(z.shape[1])[None, :] < lengths[:, None]).float()
    per_hour = torch.nn.functional.binary_cross_entropy_with_logits(
        z, y[:, None].expand_as(z), pos_weight=loss_fn.pos_weight, reduction="none")
    replicated = ((per_hour * real).sum(1) / real.sum(1)).mean()
    return alpha * replicated + (1 - alpha) * loss_fn(last, y)


def hidden_batch(xb: torch.Tensor, lengths: torch.Tensor, idx: torch.Tensor, hiding: Hiding | None, cfg: FitConfig,
                 rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, torch.Tensor]:
    """The batch as trained on: its inputs, lengths, profile per row (Hiding.apply) and stay index per
    row. With `cfg.hide_copies` the hidden stays are appended after the whole batch instead of
    replacing their full records."""
    none = np.zeros(len(idx), dtype=np.int64)
    if hiding is None or cfg.hide <= 0:
        return xb, lengths, none, idx
    hidden, which = hiding.apply(xb, rng, cfg.hide)
    if not cfg.hide_copies:
        return hidden, lengths, which, idx
    copies = torch.from_numpy(which > 0)
    return (torch.cat([xb, hidden[copies]]), torch.cat([lengths, lengths[copies]]),
            np.concatenate([none, which[which > 0]]), torch.cat([idx, idx[copies]]))


def fit_one(x: np.ndarray, lengths: np.ndarray, y: np.ndarray, x_val: np.ndarray | None, lengths_val: np.ndarray | None,
            y_val: np.ndarray | None, cfg: FitConfig, seed: int, log=print, targets: np.ndarray | None = None,
            hiding: Hiding | None = None) -> FitResult:
    """Adam with decoupled weight decay, early stopping on validation AUROC (the best epoch's
    weights are kept) or a fixed number of epochs (`cfg.epochs`, the last weights kept; the
    validation arrays may then be None); optional random-prefix training (`cfg.crop`) and target replication
    (`cfg.replicate`)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = MortalityRNN(x.shape[2], cfg.hidden, cfg.dropout, cfg.architecture, cfg.summary_vars)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(cfg.pos_weight))
    # `targets` (soft labels in [0, 1]) replace y in the loss when given: see train.py (distillation). With
    # hiding they are [1 + profiles, N]: row p + 1 is the teacher that saw only profile p's inputs.
    soft = y[None] if targets is None else (targets if targets.ndim == 2 else targets[None])
    yt = torch.from_numpy(soft.astype(np.float32))
    xt, lt = torch.from_numpy(x), torch.from_numpy(lengths)
    best = FitResult(model=copy.deepcopy(model), best_epoch=-1, best_val_auroc=-1.0)
    stale = 0
    for epoch in range(cfg.epochs or cfg.max_epochs):
        started, cpu = time.time(), time.process_time()
        model.train()
        order = rng.permutation(len(x))
        total = 0.0
        for i in range(0, len(order), cfg.batch_size):
            idx = torch.from_numpy(order[i:i + cfg.batch_size])
            n_stays = len(idx)
            li = lt[idx]
            if cfg.crop > 0:
                # The LSTM is causal, so reading a stay up to hour k is gathering its output at k - 1.
                cut = torch.from_numpy(rng.integers(cfg.crop_min, x.shape[1] + 1, len(idx)))
                use = torch.from_numpy(rng.random(len(idx)) < cfg.crop)
                li = torch.where(use, torch.minimum(li, cut), li)
            xb, li, which, idx = hidden_batch(xt[idx], li, idx, hiding, cfg, rng)
            yb = yt[torch.from_numpy(np.minimum(which, len(yt) - 1)), idx]
            opt.zero_grad()
            if cfg.replicate > 0:
                loss = replicated_loss(model, xb, li, yb, cfg.replicate, loss_fn)
            else:
                loss = loss_fn(model.forward_unpadded_gather(xb, li), yb)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            total += float(loss) * n_stays
        has_val = y_val is not None and len(np.unique(y_val)) > 1
        val = float(roc_auc_score(y_val, predict_logits([model], x_val, lengths_val))) if has_val else None
        entry = {"epoch": epoch, "loss": total / len(order), "valAuroc": val,
                 "wallS": round(time.time() - started, 1), "cpuS": round(time.process_time() - cpu, 1)}
        best.history.append(entry)
        log(f"  seed {seed} epoch {epoch}: loss {entry['loss']:.4f} val AUROC {'-' if val is None else f'{val:.4f}'} "
            f"({entry['wallS']} s)")
        if cfg.epochs:
            continue
        if (val or 0.0) > best.best_val_auroc:
            best.model, best.best_epoch, best.best_val_auroc = copy.deepcopy(model), epoch, float(val or 0.0)
            stale = 0
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    if cfg.epochs:
        last = best.history[-1]["valAuroc"]
        best.model, best.best_epoch, best.best_val_auroc = model, cfg.epochs - 1, last
    best.model.eval()
    return best


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature T minimising the validation log loss of sigmoid(logit / T)."""
    z = torch.tensor(logits, dtype=torch.float64)
    yt = torch.tensor(y, dtype=torch.float64)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z / torch.exp(log_t), yt)
        loss.backward()
        return loss
    opt.step(closure)
    return float(torch.exp(log_t))
