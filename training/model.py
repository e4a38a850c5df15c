"""The reference network: a stacked LSTM (or its lighter sibling, a GRU) over packed sequences and a small head."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

HEAD_WIDTH = 32


ARCHITECTURES = ("lstm", "gru")


class MortalityRNN(nn.Module):
    """`LSTM` or `GRU(n_inputs, hidden, 2 layers)` -> last layer's final hidden state -> Dropout ->
    Linear(hidden, 32) -> ReLU -> Linear(32, 1).

    Sequences are packed, so each stay is read up to its own last real hour and padding never
    reaches the state; `training/export.py` reproduces this with ONNX `sequence_lens`. The
    recurrent module is registered under its architecture's name (`lstm.*`, `gru.*` weights).
    """

    def __init__(self, n_inputs: int, hidden: int = 64, dropout: float = 0.0, architecture: str = "lstm"):
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}")
        self.n_inputs = n_inputs
        self.hidden = hidden
        self.dropout_p = dropout
        self.architecture = architecture
        rnn = (nn.LSTM if architecture == "lstm" else nn.GRU)(n_inputs, hidden, num_layers=2, batch_first=True,
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

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits [batch] for x [batch, time, n_inputs] and lengths [batch] (1..time)."""
        packed = pack_padded_sequence(x, lengths.to("cpu").long(), batch_first=True, enforce_sorted=False)
        _, state = self.rnn(packed)
        h_n = state[0] if self.architecture == "lstm" else state
        # h_n is [layers, batch, hidden] in the caller's batch order (unsorted by PyTorch).
        return self.head(h_n[-1]).squeeze(-1)

    def forward_unpadded_gather(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Same logits as `forward`, computed without packing: the network is causal, so the last
        layer's output at step `length - 1` of the padded sequence is exactly the packed
        final hidden state; the steps after it are computed and thrown away. About 5x faster
        on CPU for training (PyTorch's packed CPU path is slow); tests check the equality."""
        out, _ = self.rnn(x)
        idx = (lengths.to(x.device).long() - 1).clamp(min=0)
        last = out[torch.arange(out.shape[0], device=x.device), idx]
        return self.head(last).squeeze(-1)

    def predict_proba(self, x: torch.Tensor, lengths: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        return torch.sigmoid(self.forward(x, lengths) / temperature)

    def config(self) -> dict:
        return {"n_inputs": self.n_inputs, "hidden": self.hidden, "dropout": self.dropout_p,
                "architecture": self.architecture}


class MortalityLSTM(MortalityRNN):
    """The reference network: the classic clinical LSTM."""

    def __init__(self, n_inputs: int, hidden: int = 64, dropout: float = 0.0):
        super().__init__(n_inputs, hidden, dropout, "lstm")


class MortalityGRU(MortalityRNN):
    """Its lighter sibling: the same network with GRU layers (3 gates instead of 4)."""

    def __init__(self, n_inputs: int, hidden: int = 64, dropout: float = 0.0):
        super().__init__(n_inputs, hidden, dropout, "gru")


def save_checkpoint(path: str, models: list[MortalityRNN], temperature: float = 1.0) -> None:
    """A checkpoint holds one or more reference networks (an ensemble averages their
    probabilities) and the calibration temperature applied to each logit."""
    torch.save({
        "format": "icu-mortality-lstm/1",
        "config": models[0].config(),
        "state_dicts": [m.state_dict() for m in models],
        "temperature": float(temperature),
    }, path)


def load_checkpoint(path: str) -> tuple[list[MortalityRNN], float]:
    """Loads our checkpoint format, or a bare state_dict / {"state_dict": ...} of the
    reference class (n_inputs and hidden are read from the weights)."""
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
    models = []
    for sd in states:
        architecture = "gru" if "gru.weight_ih_l0" in sd else "lstm"
        hidden = sd[f"{architecture}.weight_hh_l0"].shape[1]
        n_inputs = sd[f"{architecture}.weight_ih_l0"].shape[1]
        m = MortalityRNN(n_inputs, hidden, architecture=architecture)
        m.load_state_dict(sd)
        m.eval()
        models.append(m)
    return models, temperature
