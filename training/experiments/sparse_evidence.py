"""Why a stay sparser than every validated profile gets no held-out figure: the test stays thinned
several ways below every coverage rule, scored by shipped graphs through onnxruntime-node.

    /usr/bin/python3 -m training.experiments.sparse_evidence 1.2.0 1.6.0     (about 3 minutes)

Each line: the thinning, the share of thinned stays that cover no profile of the rules' version
(--rules, default the version training.version names), and the AUROC (95% bootstrap CI) on the test split. Only a version whose
networks never saw the test split (1.2.0 and before) gives held-out figures; a refit one (1.3.0 on)
shows how far its figures on that split are from held out.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
from typing import Callable

import numpy as np

from .. import evaluate as ev
from .. import scenarios
from ..data import DEFAULT_CACHE, DEFAULT_DATA, ROOT, load_stays
from ..preprocess import raw_statics
from ..spec import MONITOR_VARIABLES
from ..tests.ort import run_shipped
from ..version import VERSION


def _keep(values: np.ndarray, names: list[str], cols: list[str] | None = None, hours: int | None = None,
          first_only: bool = False) -> np.ndarray:
    """The stay with only `cols` (None: all), its first `hours`, and with `first_only` each variable's first value."""
    v = values[:hours].copy()
    if cols is not None:
        v[:, [n not in cols for n in names]] = np.nan
    if first_only:
        for j in range(v.shape[1]):
            v[np.where(~np.isnan(v[:, j]))[0][1:], j] = np.nan
    observed = np.where(~np.isnan(v).all(axis=1))[0]
    return v[: observed[-1] + 1] if observed.size else v[:1]


def thinnings(names: list[str]) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    return {
        "full record (reference)": lambda v: v,
        "monitor vitals, 48 h (reference)": lambda v: _keep(v, names, MONITOR_VARIABLES),
        "one heart-rate value": lambda v: _keep(v, names, ["HR"], first_only=True),
        "monitor vitals, first 12 h": lambda v: _keep(v, names, MONITOR_VARIABLES, hours=12),
        "full record, first 2 h": lambda v: _keep(v, names, None, hours=2),
        "first value of each variable, first 6 h": lambda v: _keep(v, names, None, hours=6, first_only=True),
    }


def _covers_none(values: np.ndarray, manifest: dict, rules: list[dict]) -> bool:
    for r in rules:
        k, h = scenarios.coverage(values, manifest, r)
        if k >= r["coverage"]["minVariables"] and h >= r["coverage"]["minHours"]:
            return False
    return True


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("versions", nargs="+", help="versions of models/icu-mortality to score")
    p.add_argument("--rules", default=VERSION, help="the version whose coverage rules define sparse")
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--cache", default=DEFAULT_CACHE)
    args = p.parse_args(argv)
    folder = os.path.join(ROOT, "models", "icu-mortality")
    rules = json.load(open(os.path.join(folder, args.rules, "manifest.json")))["scenarios"]
    for version in args.versions:
        d = os.path.join(folder, version)
        manifest = json.load(open(os.path.join(d, "manifest.json")))
        split = json.load(open(os.path.join(d, "split.json")))
        by_id = {s.record_id: s for s in load_stays(manifest, args.data, args.cache)}
        test = [by_id[i] for i in split["test"]]
        y = np.array([s.died for s in test])
        names = [v["name"] for v in manifest["variables"]]
        trained_on = manifest["provenance"].get("splits", {}).get("shippedNetworksTrainedOn", "the training split")
        print(f"{version} (networks trained on {trained_on}): {len(test)} test stays, {y.sum()} deaths")
        for name, thin in thinnings(names).items():
            sent = [dataclasses.replace(s, values=thin(s.values)) for s in test]
            values = np.full((len(sent), max(len(s.values) for s in sent), len(names)), np.nan)
            for i, s in enumerate(sent):
                values[i, : len(s.values)] = s.values
            statics = np.stack([raw_statics(s.statics, manifest) for s in sent])
            prob = run_shipped(os.path.join(d, manifest["onnx"]["file"]), values, statics,
                               np.array([len(s.values) for s in sent]))
            auc = ev.discrimination(y, prob, 1000, 2012)
            sparse = np.mean([_covers_none(s.values, manifest, rules) for s in sent])
            print(f"  {name:<42} sparse {sparse:6.1%}  AUROC {auc['auroc']:.3f} "
                  f"({auc['aurocCi95'][0]:.3f}-{auc['aurocCi95'][1]:.3f})")


if __name__ == "__main__":
    main()
