"""The coverage each validated input profile needs before the service claims its held-out AUROC,
measured on the held-out test split of a trained version and written into its manifest:

    /usr/bin/python3 -m training.experiments.profile_coverage models/icu-mortality/1.6.0 [--write]

Training writes the same figures (scenarios.evaluate); this adds them to a version trained before
they existed. The rule depends on the data, the split (split.json) and the profiles only, never on
the networks, so it is the same for every version with the same split and profiles.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

from .. import scenarios
from ..data import DEFAULT_CACHE, DEFAULT_DATA, load_stays


def _quantiles(values: np.ndarray) -> str:
    return " ".join(f"{q:.0%}:{int(np.quantile(values, q, method='inverted_cdf'))}" for q in (0.01, 0.05, 0.10, 0.25, 0.5))


def measure(model_dir: str, data_dir: str, cache_dir: str) -> list[dict]:
    """The manifest's scenarios with their coverage rule, and a line per scenario of what the
    test stays as sent have (quantiles of observed variables and hours)."""
    manifest = json.load(open(os.path.join(model_dir, "manifest.json")))
    split = json.load(open(os.path.join(model_dir, "split.json")))
    by_id = {s.record_id: s for s in load_stays(manifest, data_dir, cache_dir)}
    test = [by_id[i] for i in split["test"]]
    out = []
    for scenario in manifest["scenarios"]:
        sent = scenarios.as_sent(test, manifest, scenario)
        k, h = np.array([scenarios.coverage(s.values, manifest, scenario) for s in sent]).T
        rule = scenarios.coverage_rule(sent, manifest, scenario)
        print(f"{scenario['name']:<20} n={len(sent)} variables {_quantiles(k)} | hours {_quantiles(h)} | "
              f"rule >= {rule['minVariables']} variables over >= {rule['minHours']} h, met by {rule['heldOutShare']:.1%}")
        out.append({**scenario, "coverage": rule})
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dirs", nargs="+", help="version folders with manifest.json and split.json")
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--cache", default=DEFAULT_CACHE)
    p.add_argument("--write", action="store_true", help="add each scenario's coverage to the manifest")
    args = p.parse_args(argv)
    for model_dir in args.model_dirs:
        print(model_dir)
        measured = measure(model_dir, args.data, args.cache)
        if args.write:
            path = os.path.join(model_dir, "manifest.json")
            manifest = json.load(open(path))
            manifest["scenarios"] = measured
            with open(path, "w") as f:
                json.dump(manifest, f, indent=2)
                f.write("\n")


if __name__ == "__main__":
    main()
