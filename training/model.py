"""The reference networks: a stacked LSTM (or its lighter sibling, a GRU) over packed sequences and a
small head, and the hybrid that fuses it with a clinical-note embedding."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

HEAD_WIDTH = 32


ARCHITECTURES = ("lstm", "gru")


class RunningSummaries(nn.Module):
    """Appends, per variable, the running maximum, minimum and mean of the normalised values
    observed so far and the count of observed hours / max_hours (all 0 before the first
    observation) to the input tensor [batch, time, 3V + statics] (models/README.md layout:
    values, masks, deltas, statics). Causal, so the last real hour's state is unchanged by
    padding. The trees read these statistics directly; the recurrent layers forget them over a
    48-hour stay, worst when only a few vitals are sent."""

    def __init__(self, n_vars: int, max_hours: int):
        super().__init__()
        self.n_vars = n_vars
        self.max_hours = max_hours

    @property
    def extra(self) -> int:
        return 4 * self.n_vars

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.n_vars
        z, mask = x[..., :v], x[..., v:2 * v]
        observed = mask > 0
        count = torch.cumsum(mask, dim=1)
        seen = count > 0
        hi = torch.cummax(torch.where(observed, z, torch.full_like(z, -1e4)), dim=1).values
        lo = torch.cummin(torch.where(observed, z, torch.full_like(z, 1e4)), dim=1).values
        zero = torch.zeros_like(z)
        mean = torch.cumsum(z * mask, dim=1) / torch.clamp(count, min=1.0)
        return torch.cat([x, torch.where(seen, hi, zero), torch.where(seen, lo, zero), mean,
                          count / self.max_hours], dim=-1)


class MortalityRNN(nn.Module):
    """`LSTM` or `GRU(n_inputs, hidden, 2 layers)` -> last layer's final hidden state -> Dropout ->
    Linear(hidden, 32) -> ReLU -> Linear(32, 1).

    Sequences are packed, so each stay is read up to its own last real hour and padding never
    reaches the state; `training/export.py` reproduces this with ONNX `sequence_lens`. The
    recurrent module is registered under its architecture's name (`lstm.*`, `gru.*` weights).
    """

    def __init__(self, n_inputs: int, hidden: int = 64, dropout: float = 0.0, architecture: str = "lstm",
                 summary_vars: int = 0, max_hours: int = 48):
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}")
        self.n_inputs = n_inputs
        self.hidden = hidden
        self.dropout_p = dropout
        self.architecture = architecture
        self.summary_vars = summary_vars
        self.max_hours = max_hours
        self.summaries = RunningSummaries(summary_vars, max_hours) if summary_vars else None
        width = n_inputs + (self.summaries.extra if self.summaries else 0)
        rnn = (nn.LSTM if architecture == "lstm" else nn.GRU)(width, hidden, num_layers=2, batch_first=True,
                                                             dropout=dropout)
        setattr(self, architecture, rnn)
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(hidden, HEAD_WIDTH),
            nn.ReLU(),
            nn.Linear(HEAD_WIDTH, 1),
        )

    @property
    def rnn(self) -> nn.Module:
        return getattr(self, self.architecture)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """What the recurrent layers read: the input tensor, with running summaries when configured."""
        return self.summaries(x) if self.summaries is not None else x

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        """The last layer's output at every hour [batch, time, hidden] (causal: hour t sees hours <= t)."""
        out, _ = self.rnn(self.features(x))
        return out

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits [batch] for x [batch, time, n_inputs] and lengths [batch] (1..time)."""
        packed = pack_padded_sequence(self.features(x), lengths.to("cpu").long(), batch_first=True, enforce_sorted=False)
        _, state = self.rnn(packed)
        h_n = state[0] if self.architecture == "lstm" else state
        # h_n is [layers, batch, hidden] in the caller's batch order (unsorted by PyTorch).
        return self.head(h_n[-1]).squeeze(-1)

    def forward_unpadded_gather(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Same logits as `forward`, computed without packing: the network is causal, so the last
        layer's output at step `length - 1` of the padded sequence is exactly the packed
        final hidden state; the steps after it are computed and thrown away. About 5x faster
        on CPU for training (PyTorch's packed CPU path is slow); tests check the equality."""
        out = self.sequence(x)
        idx = (lengths.to(x.device).long() - 1).clamp(min=0)
        last = out[torch.arange(out.shape[0], device=x.device), idx]
        return self.head(last).squeeze(-1)

    def predict_proba(self, x: torch.Tensor, lengths: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        return torch.sigmoid(self.forward(x, lengths) / temperature)

    def config(self) -> dict:
        return {"n_inputs": self.n_inputs, "hidden": self.hidden, "dropout": self.dropout_p,
                "architecture": self.architecture, "summary_vars": self.summary_vars, "max_hours": self.max_hours}


class MortalityLSTM(MortalityRNN):
    """The reference network: the classic clinical LSTM."""

    def __init__(self, n_inputs: int, hidden: int = 64, dropout: float = 0.0):
        super().__init__(n_inputs, hidden, dropout, "lstm")


class MortalityGRU(MortalityRNN):
    """Its lighter sibling: the same network with GRU layers (3 gates instead of 4)."""

    def __init__(self, n_inputs: int, hidden: int = 64, dropout: float = 0.0):
        super().__init__(n_inputs, hidden, dropout, "gru")


# BERT-base's hidden width, the size of its [CLS] vector (Devlin et al., NAACL 2019, section 3).
NOTE_DIM = 768


class HybridClinicalModel(nn.Module):
    """The reference hybrid: the vitals LSTM of MortalityRNN fused with a projection of one
    clinical-note embedding per stay (e.g. a BERT [CLS] vector). The last real hour's hidden
    state and ReLU(Linear(note_dim, note_hidden)(note)) are concatenated, then the reference head:
    Dropout -> Linear(hidden + note_hidden, 32) -> ReLU -> Linear(32, 1)."""

    architecture = "lstm"
    kind = "hybrid"

    def __init__(self, n_inputs: int, note_dim: int = NOTE_DIM, hidden: int = 64, note_hidden: int = 64,
                 dropout: float = 0.0):
        super().__init__()
        self.n_inputs = n_inputs
        self.note_dim = note_dim
        self.hidden = hidden
        self.note_hidden = note_hidden
        self.dropout_p = dropout
        self.lstm = nn.LSTM(n_inputs, hidden, num_layers=2, batch_first=True, dropout=dropout)
        self.note_proj = nn.Sequential(nn.Linear(note_dim, note_hidden), nn.ReLU())
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(hidden + note_hidden, HEAD_WIDTH),
            nn.ReLU(),
            nn.Linear(HEAD_WIDTH, 1),
        )

    @property
    def rnn(self) -> nn.Module:
        return self.lstm

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, note: torch.Tensor) -> torch.Tensor:
        """Logits [batch] for x [batch, time, n_inputs], lengths [batch] and note [batch, note_dim]."""
        packed = pack_padded_sequence(x, lengths.to("cpu").long(), batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)
        return self.head(torch.cat([h_n[-1], self.note_proj(note)], dim=-1)).squeeze(-1)

    def predict_proba(self, x: torch.Tensor, lengths: torch.Tensor, note: torch.Tensor,
                      temperature: float = 1.0) -> torch.Tensor:
        return torch.sigmoid(self.forward(x, lengths, note) / temperature)

    def config(self) -> dict:
        return {"kind": self.kind, "n_inputs": self.n_inputs, "note_dim": self.note_dim, "hidden": self.hidden,
                "note_hidden": self.note_hidden, "dropout": self.dropout_p, "architecture": self.architecture}


Network = MortalityRNN | HybridClinicalModel


def save_checkpoint(path: str, models: list[Network], temperature: float = 1.0) -> None:
    """A checkpoint holds one or more reference networks (an ensemble averages their
    probabilities) and the calibration temperature applied to each logit."""
    torch.save({
        "format": "icu-mortality-lstm/1",
        "config": models[0].config(),
        "state_dicts": [m.state_dict() for m in models],
        "temperature": float(temperature),
    }, path)


def load_checkpoint(path: str) -> tuple[list[Network], float]:
    """Loads our checkpoint format, or a bare state_dict / {"state_dict": ...} of a reference
    class, MortalityRNN or HybridClinicalModel (sizes are read from the weights)."""
    obj = torch.load(path, map_location="cpu")
    temperature = 1.0
    if isinstance(obj, dict) and "state_dicts" in obj:
        states = obj["state_dicts"]
        temperature = float(obj.get("temperature", 1.0))
    elif isinstance(obj, dict) and "state_dict" in obj:
        states = [obj["state_dict"]]
        temperature = float(obj.get("temperature", 1.0))
    elif isinstance(obj, nn.Module):
        states = [obj.state_dict()]
    else:
        states = [obj]
    models: list[Network] = []
    for sd in states:
        if "note_proj.0.weight" in sd:
            note_hidden, note_dim = sd["note_proj.0.weight"].shape
            hybrid = HybridClinicalModel(sd["lstm.weight_ih_l0"].shape[1], note_dim=note_dim,
                                         hidden=sd["lstm.weight_hh_l0"].shape[1], note_hidden=note_hidden)
            hybrid.load_state_dict(sd)
            models.append(hybrid.eval())
            continue
        architecture = "gru" if "gru.weight_ih_l0" in sd else "lstm"
        hidden = sd[f"{architecture}.weight_hh_l0"].shape[1]
        n_inputs = sd[f"{architecture}.weight_ih_l0"].shape[1]
        m = MortalityRNN(n_inputs, hidden, architecture=architecture)
        m.load_state_dict(sd)
        m.eval()
        models.append(m)
    return models, temperature
