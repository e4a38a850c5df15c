"""Coverage of a validated profile (scenarios.coverage), worked out by hand on small stays; the
same stays give the same figures in test/clinical/input-profile.test.ts."""
import json
import os

import numpy as np

from training import scenarios
from training.data import Stay

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MANIFEST = json.load(open(os.path.join(ROOT, "models", "icu-mortality", "1.6.0", "manifest.json")))
NAMES = [v["name"] for v in MANIFEST["variables"]]
BY_NAME = {s["name"]: s for s in MANIFEST["scenarios"]}
MONITOR = {"HR": 90, "NIMAP": 70, "RespRate": 20, "Temp": 37.2, "SaO2": 96}
LABS = {"Na": 139, "K": 4.1, "BUN": 20, "Creatinine": 1.1, "Glucose": 120, "HCO3": 24, "HCT": 33, "Platelets": 210,
        "WBC": 9}


def stay(rows):
    values = np.full((len(rows), len(NAMES)), np.nan)
    for h, row in enumerate(rows):
        for name, value in row.items():
            values[h, NAMES.index(name)] = value
    return values


def test_two_hours_of_vitals_and_gcs_are_six_variables_over_two_hours():
    assert scenarios.coverage(stay([{**MONITOR, "GCS": 9}] * 2), MANIFEST, BY_NAME["first-6h"]) == (6, 2)


def test_hours_run_from_the_first_to_the_last_row_with_a_variable_of_the_profile():
    rows = [MONITOR if 2 <= h <= 46 else {} for h in range(48)]
    assert scenarios.coverage(stay(rows), MANIFEST, BY_NAME["vitals"]) == (5, 45)
    # GCS is outside the vitals profile: it neither counts nor stretches the hours.
    rows[0] = {"GCS": 15}
    assert scenarios.coverage(stay(rows), MANIFEST, BY_NAME["vitals"]) == (5, 45)
    assert scenarios.coverage(stay(rows), MANIFEST, BY_NAME["full"]) == (6, 47)


def test_a_window_profile_reads_only_its_first_hours():
    rows = [{**MONITOR, **LABS} if h == 3 else MONITOR for h in range(48)]
    assert scenarios.coverage(stay(rows), MANIFEST, BY_NAME["vitals-routine-labs"]) == (14, 48)
    assert scenarios.coverage(stay(rows), MANIFEST, BY_NAME["first-12h"]) == (14, 12)
    assert scenarios.coverage(stay([{}] * 6 + [MONITOR]), MANIFEST, BY_NAME["first-6h"]) == (0, 0)


def test_the_rule_is_the_five_percent_quantile_of_the_profiles_held_out_stays():
    # 20 stays: variables 1..20 over 1..20 hours (one vital charted in hour h only, so the span is 1
    # for all but the counts). inverted_cdf at 5% of 20 values is the first: 1; all 20 meet it.
    sent = []
    for n in range(1, 21):
        rows = [{}] * (n - 1) + [dict(list(MONITOR.items())[: min(n, 5)])]
        sent.append(Stay(str(n), "a", stay(rows), {}, 0, None, None))
    rule = scenarios.coverage_rule(sent, MANIFEST, BY_NAME["vitals"])
    assert rule == {"minVariables": 1, "minHours": 1, "quantile": 0.05, "heldOutShare": 1.0}
    # Two stays of nothing among 20 (10%): the 5% quantile of the counts is then 0.
    sent[0] = sent[1] = Stay("0", "a", stay([{}]), {}, 0, None, None)
    assert scenarios.coverage_rule(sent, MANIFEST, BY_NAME["vitals"])["minVariables"] == 0


def test_the_manifest_entries_carry_the_coverage():
    result = {"name": "vitals", "label": "x", "variables": ["HR"], "maxHours": None,
              "model": {"auroc": 0.79, "aurocCi95": [0.75, 0.82]}, "gbt": {"auroc": 0.8},
              "coverage": {"minVariables": 4, "minHours": 46, "quantile": 0.05, "heldOutShare": 0.953}}
    assert scenarios.manifest_entries([result])[0]["coverage"]["minHours"] == 46
