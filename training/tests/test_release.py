"""`npm run train` (training.release): the version is written once, and its commands are the ones the
shipped manifests record."""
import json
import os

from training import release, train
from training.version import VERSION

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def recorded(version: str) -> str:
    with open(os.path.join(ROOT, "models", "icu-mortality", version, "manifest.json")) as f:
        return json.load(f)["provenance"]["training"]["command"]


def test_the_training_steps_are_the_commands_the_shipped_manifests_record():
    lstm, gru, *_ = release.steps([])
    assert " ".join(lstm) == recorded(f"{VERSION}-lstm")
    assert " ".join(gru) == recorded(VERSION)


def test_the_default_version_is_the_released_one():
    assert train.parse_args([]).version == VERSION
    steps = release.steps(["--data", "/elsewhere"])
    assert [s[-2:] for s in steps[:2]] == [["--data", "/elsewhere"]] * 2
    # The explanation check runs on the GRU before its card is rendered the last time.
    assert steps[3] == ["npm", "run", "explain-evidence", "--", f"models/icu-mortality/{VERSION}"]
    assert steps[4][:4] == ["/usr/bin/python3", "-m", "training.model_card", f"models/icu-mortality/{VERSION}"]
