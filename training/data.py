"""Loads sets a and c into arrays: cleaned hourly values, statics, outcomes, baselines."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from .physionet import bin_observations, extract_sets, parse_record, read_outcomes
from .preprocess import rows_to_array

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "physionet2012"))
DEFAULT_CACHE = os.path.join(ROOT, "training", ".cache")


@dataclass
class Stay:
    record_id: str
    source: str  # "a" or "c"
    values: np.ndarray  # [T, V] canonical units, NaN = missing
    statics: dict[str, float | None]
    died: int
    saps: float | None
    sofa: float | None


def load_stays(manifest: dict[str, Any], data_dir: str = DEFAULT_DATA, cache_dir: str = DEFAULT_CACHE,
               sets: tuple[str, ...] = ("a", "c")) -> list[Stay]:
    folders = extract_sets(data_dir, cache_dir, sets)
    stays: list[Stay] = []
    for s in sets:
        outcomes = read_outcomes(os.path.join(data_dir, f"Outcomes-{s}.txt"))
        for name in sorted(os.listdir(folders[s])):
            if not name.endswith(".txt"):
                continue
            with open(os.path.join(folders[s], name)) as f:
                rec = parse_record(f.read(), manifest, record_id=name[:-4])
            out = outcomes.get(rec.record_id)
            if out is None:
                continue
            rows = bin_observations(rec.observations, manifest)
            saps = out.get("SAPS-I", -1)
            sofa = out.get("SOFA", -1)
            stays.append(Stay(rec.record_id, s, rows_to_array(rows, manifest), rec.statics,
                              int(out["In-hospital_death"]), saps if saps >= 0 else None,
                              sofa if sofa >= 0 else None))
    return stays
