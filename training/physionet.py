"""Reading and cleaning the PhysioNet/CinC Challenge 2012 record format.

A record is CSV `Time,Parameter,Value` with `Time` as `hh:mm` since ICU admission. The
cleaning rules (models/README.md, "Raw record cleaning", is their reference; the
TypeScript reader src/clinical/physionet.ts mirrors them) are driven by the manifest:

1. Lines that do not parse (time not `h+:mm`, value not a plain decimal number) and parameters the
   manifest does not know (including the empty name some records carry) are ignored.
2. Descriptors `RecordID`, `Age`, `Gender`, `Height`, `ICUType` are read from any line (they
   only occur at 00:00; the first occurrence wins). `-1` means unknown; a numeric static
   outside its bounds is unknown; Gender must be 0 or 1 and ICUType 1..4, else unknown.
3. Every other line, the `Weight` descriptor included, is an observation of a time-series
   variable. The descriptor Weight at 00:00 is therefore the hour-0 Weight observation
   (the manifest's `staticWeightVariable`), and its `-1` is dropped by rule 6.
4. Observations after `maxHours` (minute > 48 * 60) are dropped. 48:00 itself is kept and
   binned into the last hour (see bin_observations).
5. Unit slips: the first of the variable's `rawUnitSlips` whose `above` the value exceeds
   (strictly) converts it, canonical = (value + offset) * scale. Only one slip applies.
6. Impossible values: a value outside the variable's `bounds` (inclusive) after rule 5 is
   dropped. This removes the `-1` placeholders and zero blood pressures (line artefacts).
7. Several values of one variable in one hour (including several at the same minute, which
   the records hold for MAP and Urine from different charting sources) are combined by the
   variable's aggregation: `last` keeps the last line in file order, `sum` adds them (Urine).
"""
from __future__ import annotations

import math
import re
import os
import tarfile
from dataclasses import dataclass, field
from typing import Any, Iterable

DESCRIPTORS = ("RecordID", "Age", "Gender", "Height", "ICUType")


@dataclass
class Record:
    record_id: str
    statics: dict[str, float | None]
    # (minute, variable, canonical value), in file order, already cleaned
    observations: list[tuple[int, str, float]] = field(default_factory=list)


_TIME = re.compile(r"^(\d+):(\d{2})$")


def _parse_time(text: str) -> int | None:
    """`hh:mm` (hours may exceed 24) -> minutes since admission; None if malformed."""
    match = _TIME.match(text.strip())
    if match is None or int(match.group(2)) >= 60:
        return None
    return int(match.group(1)) * 60 + int(match.group(2))


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _parse_value(text: str) -> float | None:
    """A plain decimal number (no hex, no inf/nan, not empty); None otherwise."""
    text = text.strip()
    if _NUMBER.match(text) is None:
        return None
    v = float(text)
    return v if math.isfinite(v) else None


def clean_value(spec: dict[str, Any], value: float) -> float | None:
    """Rules 5 and 6 for one raw value of a time-series variable."""
    for slip in spec.get("rawUnitSlips", []):
        if value > slip["above"]:
            value = (value + slip["offset"]) * slip["scale"]
            break
    b = spec["bounds"]
    if value < b["min"] or value > b["max"]:
        return None
    return value


def _clean_static(spec: dict[str, Any], value: float) -> float | None:
    if value == -1:
        return None
    if spec["kind"] == "numeric":
        b = spec["bounds"]
        return value if b["min"] <= value <= b["max"] else None
    return value if value in spec["categories"] else None


def parse_record(text: str, manifest: dict[str, Any], record_id: str | None = None) -> Record:
    variables = {v["name"]: v for v in manifest["variables"]}
    statics_spec = {s["name"]: s for s in manifest["statics"]}
    last_minute = manifest["maxHours"] * 60
    statics: dict[str, float | None] = {s: None for s in statics_spec}
    seen_descriptor: set[str] = set()
    rid = record_id
    observations: list[tuple[int, str, float]] = []
    for i, line in enumerate(text.splitlines()):
        line = line.strip()
        if not line or (i == 0 and line.lower().startswith("time")):
            continue
        parts = line.split(",")
        if len(parts) != 3:
            continue
        minute, name, value = _parse_time(parts[0]), parts[1].strip(), _parse_value(parts[2])
        if minute is None or value is None:
            continue
        if name in DESCRIPTORS:
            if name in seen_descriptor:
                continue
            seen_descriptor.add(name)
            if name == "RecordID":
                if rid is None and value != -1:
                    rid = str(int(value)) if value == int(value) else str(value)
            elif name in statics_spec:
                statics[name] = _clean_static(statics_spec[name], value)
            continue
        spec = variables.get(name)
        if spec is None or minute > last_minute:
            continue
        cleaned = clean_value(spec, value)
        if cleaned is not None:
            observations.append((minute, name, cleaned))
    return Record(record_id=rid or "", statics=statics, observations=observations)


def bin_observations(observations: Iterable[tuple[int, str, float]], manifest: dict[str, Any]) -> list[dict[str, float]]:
    """Hourly rows exactly as src/clinical/binning.ts: hour = floor(minute / 60), minute
    48:00 goes to hour 47, `last` (file order) or `sum` within an hour, rows from hour 0 to
    the last hour with any observation (at least one row)."""
    aggregation = {v["name"]: v["aggregation"] for v in manifest["variables"]}
    max_hours = manifest["maxHours"]
    last_minute = max_hours * 60
    cells: dict[int, dict[str, float]] = {}
    last_hour = 0
    for minute, name, value in observations:
        how = aggregation.get(name)
        if how is None:
            continue
        hour = max_hours - 1 if minute == last_minute else minute // 60
        last_hour = max(last_hour, hour)
        row = cells.setdefault(hour, {})
        if how == "sum" and name in row:
            row[name] = row[name] + value
        else:
            row[name] = value
    return [dict(cells.get(h, {})) for h in range(last_hour + 1)]


def read_outcomes(path: str) -> dict[str, dict[str, float]]:
    """RecordID -> {SAPS-I, SOFA, Length_of_stay, Survival, In-hospital_death}."""
    out: dict[str, dict[str, float]] = {}
    with open(path) as f:
        header = f.readline().strip().split(",")
        for line in f:
            parts = line.strip().split(",")
            if len(parts) != len(header):
                continue
            out[parts[0]] = {h: float(v) for h, v in zip(header[1:], parts[1:])}
    return out


def extract_sets(data_dir: str, cache_dir: str, sets: Iterable[str] = ("a", "c")) -> dict[str, str]:
    """Extracts set-<x>.tar.gz into cache_dir once; returns set name -> folder of records."""
    folders = {}
    for s in sets:
        folder = os.path.join(cache_dir, f"set-{s}")
        archive = os.path.join(data_dir, f"set-{s}.tar.gz")
        if not os.path.isdir(folder) or len(os.listdir(folder)) == 0:
            os.makedirs(cache_dir, exist_ok=True)
            with tarfile.open(archive) as tar:
                members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".txt")
                           and not os.path.isabs(m.name) and ".." not in m.name.split("/")]
                tar.extractall(cache_dir, members=members)
        folders[s] = folder
    return folders
