"""`npm run train`: rebuilds the shipped pair of training.version.VERSION from the raw data, each
step a process of its own, as one would type them:

    1. <VERSION>-lstm: the reference LSTM, same recipe (no skew fixtures: those follow the default model)
    2. <VERSION>: the GRU, the default, with the LSTM beside it in its card; test/fixtures/skew/
    3. the LSTM's card again, now with the GRU beside it
    4. npm run explain-evidence on <VERSION>: explanation-check.json
    5. <VERSION>'s card again, with that check

Extra arguments (e.g. --data DIR) go to both trainings.
"""
from __future__ import annotations

import subprocess
import sys

from .data import ROOT
from .version import VERSION

PYTHON = "/usr/bin/python3"
BENCH = "bench/architectures.json"


def steps(extra: list[str]) -> list[list[str]]:
    """The commands, relative to the repository root (the manifests record the training commands)."""
    gru, lstm = f"models/icu-mortality/{VERSION}", f"models/icu-mortality/{VERSION}-lstm"
    return [
        [PYTHON, "-m", "training.train", "--architecture", "lstm", "--version", f"{VERSION}-lstm", "--no-skew", *extra],
        # --version left at its default (VERSION), as the command the manifest records has always read.
        [PYTHON, "-m", "training.train", "--compare", lstm, *extra],
        [PYTHON, "-m", "training.model_card", lstm, "--compare", gru, "--bench", BENCH],
        ["npm", "run", "explain-evidence", "--", gru],
        [PYTHON, "-m", "training.model_card", gru, "--compare", lstm, "--bench", BENCH],
    ]


def main(argv: list[str] | None = None) -> None:
    for command in steps(sys.argv[1:] if argv is None else argv):
        print("$ " + " ".join(command), flush=True)
        subprocess.run(command, cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
