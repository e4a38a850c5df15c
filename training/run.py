"""What one training run (training/train.py) works on and produces, as typed records: the run's
settings and data, the trees, and an ensemble of networks with its calibration."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from .data import Stay
from .features import tensorize
from .fit import FitConfig, Hiding, predict_logits
from .model import MortalityRNN


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@dataclass
class Split:
    """One split's stays, their input tensor [N, hours, inputs], lengths and outcomes."""
    stays: list[Stay]
    x: np.ndarray
    lengths: np.ndarray
    y: np.ndarray

    @classmethod
    def of(cls, stays: list[Stay], manifest: dict[str, Any]) -> "Split":
        x, lengths = tensorize(stays, manifest)
        return cls(stays, x, lengths, np.array([s.died for s in stays]))


@dataclass
class Run:
    """The settings and data of a run. `manifest` grows as the run goes (normalisation, decision
    threshold, input profiles; the refit normalises it again on every stay)."""
    args: argparse.Namespace
    command: str  # the command that retrains this run, recorded in the manifest
    out_dir: str
    cfg: FitConfig
    hiding: Hiding
    manifest: dict[str, Any]
    split_ids: dict[str, list[str]]
    stays: list[Stay]
    train: Split
    val: Split
    test: Split
    started: float
    timing: dict[str, float] = field(default_factory=dict)

    @property
    def seeds(self) -> list[int]:
        """Member k's seed: --seed + 100 k."""
        return [self.args.seed + 100 * k for k in range(self.args.members)]


@dataclass
class Trees:
    """The baseline trees, their validation and test probabilities, and the networks' soft targets
    (None without distillation)."""
    model: HistGradientBoostingClassifier
    count: int
    p_va: np.ndarray
    p_te: np.ndarray
    targets: np.ndarray | None


@dataclass
class Ensemble:
    """Networks averaged on the logit scale, with their calibration: temperature, the mean-risk shift
    already added to their output biases, and the decision threshold."""
    seeds: list[int]
    members: list[MortalityRNN]
    log: list[dict]  # per member: seed, best epoch, validation AUROC, history
    temperature: float = 1.0
    shift: float = 0.0
    threshold: float | None = None

    def predict(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, as the exported graph computes them."""
        return sigmoid(predict_logits(self.members, x, lengths) / self.temperature)
