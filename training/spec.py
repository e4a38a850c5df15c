"""The variables, statics and cleaning rules of the model, as written into manifest.json.

This module is the Python source of the manifest's clinical facts. Both pipelines read the
manifest (never this module) when they preprocess, so a shipped model carries its own
definition. Units are UCUM; LOINC codes from loinc.org, the invasive pressures' from FHIR R4's
vital-signs value sets (hl7.org/fhir/ValueSet/observation-vitalsign-systolicbp and siblings).
Bounds are the physiologically possible range: values outside them are dropped in training
and rejected by the API.
"""
from __future__ import annotations

import copy
from typing import Any

F_TO_C = 5.0 / 9.0
LACTATE_MGDL_TO_MMOLL = 1.0 / 9.008  # lactate molar mass 90.08 g/mol
MG_MMOLL_TO_MGDL = 2.4305  # magnesium molar mass 24.305 g/mol
MG_MEQL_TO_MGDL = 1.21525  # divalent: 1 mEq/L = 0.5 mmol/L

# name, label, UCUM unit, LOINC codes (mass and molar forms), bounds (inclusive), aggregation, extras.
# molarMass (g/mol) and charge let the service convert mass, moles and equivalents (UCUM); atomic
# weights from IUPAC's table (2021), compound masses from PubChem.
_VARIABLES: list[dict[str, Any]] = [
    dict(name="Albumin", label="Albumin", unit="g/dL", loinc=["1751-7"], bounds=(0.5, 10)),
    dict(name="ALP", label="Alkaline phosphatase", unit="U/L", loinc=["6768-6"], bounds=(1, 10000)),
    dict(name="ALT", label="Alanine aminotransferase", unit="U/L", loinc=["1742-6"], bounds=(1, 50000)),
    dict(name="AST", label="Aspartate aminotransferase", unit="U/L", loinc=["1920-8"], bounds=(1, 50000)),
    dict(name="Bilirubin", label="Bilirubin, total", unit="mg/dL", loinc=["1975-2", "14631-6"], bounds=(0, 100),
         molarMass=584.66),
    # Urea in mmol/L (22664-7) is BUN by its two nitrogen atoms: 28.0134 g of nitrogen per mole of urea.
    dict(name="BUN", label="Blood urea nitrogen", unit="mg/dL", loinc=["3094-0", "22664-7"], bounds=(0, 300),
         molarMass=28.0134),
    dict(name="Cholesterol", label="Cholesterol", unit="mg/dL", loinc=["2093-3"], bounds=(10, 1500), molarMass=386.65),
    dict(name="Creatinine", label="Creatinine", unit="mg/dL", loinc=["2160-0", "14682-9"], bounds=(0.05, 40),
         molarMass=113.12),
    dict(name="DiasABP", label="Diastolic arterial blood pressure (invasive)", unit="mm[Hg]", loinc=["8462-4", "76213-8"], bounds=(1, 300)),
    dict(name="FiO2", label="Fraction of inspired oxygen", unit="1", loinc=["3150-0"], bounds=(0.21, 1),
         alternativeUnits=[{"unit": "%", "offset": 0, "scale": 0.01}],
         rawUnitSlips=[{"above": 1, "offset": 0, "scale": 0.01, "why": "FiO2 recorded in percent"}]),
    dict(name="GCS", label="Glasgow coma score", unit="{score}", loinc=["9269-2"], bounds=(3, 15)),
    dict(name="Glucose", label="Glucose", unit="mg/dL", loinc=["2345-7", "14749-6"], bounds=(5, 3000), molarMass=180.156),
    dict(name="HCO3", label="Bicarbonate", unit="mmol/L", loinc=["1963-8"], bounds=(1, 80), molarMass=61.017, charge=1),
    dict(name="HCT", label="Haematocrit", unit="%", loinc=["20570-8"], bounds=(5, 80)),
    dict(name="HR", label="Heart rate", unit="/min", loinc=["8867-4"], bounds=(0, 300)),
    dict(name="K", label="Potassium", unit="mmol/L", loinc=["2823-3"], bounds=(0.5, 15), molarMass=39.098, charge=1),
    dict(name="Lactate", label="Lactate", unit="mmol/L", loinc=["2524-7", "32693-4", "2518-9"], bounds=(0.1, 50),
         molarMass=90.08, alternativeUnits=[{"unit": "mg/dL", "offset": 0, "scale": LACTATE_MGDL_TO_MMOLL}]),
    # The challenge documents Mg in mmol/L, but its values (median 2.0, 1st-99th percentile
    # 1.2-3.2) are the mg/dL of US laboratories, so mg/dL is the canonical unit.
    dict(name="Mg", label="Magnesium", unit="mg/dL", loinc=["19123-9", "2601-3"], bounds=(0.3, 20),
         molarMass=24.305, charge=2, alternativeUnits=[{"unit": "mmol/L", "offset": 0, "scale": MG_MMOLL_TO_MGDL},
                           {"unit": "meq/L", "offset": 0, "scale": MG_MEQL_TO_MGDL}]),
    dict(name="MAP", label="Mean arterial pressure (invasive)", unit="mm[Hg]", loinc=["8478-0", "76214-6"], bounds=(1, 300)),
    dict(name="MechVent", label="Mechanical ventilation (1 = on)", unit="1", loinc=[], bounds=(0, 1)),
    dict(name="Na", label="Sodium", unit="mmol/L", loinc=["2951-2"], bounds=(80, 220), molarMass=22.990, charge=1),
    dict(name="NIDiasABP", label="Diastolic blood pressure (non-invasive)", unit="mm[Hg]", loinc=["8462-4"], bounds=(1, 300)),
    dict(name="NIMAP", label="Mean blood pressure (non-invasive)", unit="mm[Hg]", loinc=["8478-0"], bounds=(1, 300)),
    dict(name="NISysABP", label="Systolic blood pressure (non-invasive)", unit="mm[Hg]", loinc=["8480-6"], bounds=(1, 300)),
    dict(name="PaCO2", label="Arterial partial pressure of CO2", unit="mm[Hg]", loinc=["2019-8"], bounds=(5, 200)),
    dict(name="PaO2", label="Arterial partial pressure of O2", unit="mm[Hg]", loinc=["2703-7"], bounds=(10, 800)),
    dict(name="pH", label="Arterial pH", unit="[pH]", loinc=["2744-1"], bounds=(6.5, 8.0),
         rawUnitSlips=[{"above": 14, "offset": 0, "scale": 0.01, "why": "pH recorded without its decimal point (735 for 7.35)"}]),
    dict(name="Platelets", label="Platelets", unit="10*3/uL", loinc=["777-3"], bounds=(1, 3000)),
    dict(name="RespRate", label="Respiratory rate", unit="/min", loinc=["9279-1"], bounds=(0, 120)),
    dict(name="SaO2", label="Arterial oxygen saturation (blood gas)", unit="%", loinc=["2708-6"], bounds=(20, 100)),
    dict(name="SysABP", label="Systolic arterial blood pressure (invasive)", unit="mm[Hg]", loinc=["8480-6", "76215-3"], bounds=(1, 300)),
    dict(name="Temp", label="Body temperature", unit="Cel", loinc=["8310-5"], bounds=(25, 45),
         alternativeUnits=[{"unit": "[degF]", "offset": -32, "scale": F_TO_C}],
         rawUnitSlips=[{"above": 50, "offset": -32, "scale": F_TO_C, "why": "temperature recorded in degF"}]),
    dict(name="TroponinI", label="Troponin I", unit="ug/L", loinc=["10839-9"], bounds=(0, 500)),
    dict(name="TroponinT", label="Troponin T", unit="ug/L", loinc=["6598-7"], bounds=(0, 100)),
    dict(name="Urine", label="Urine output since the previous record", unit="mL", loinc=["9187-6"], bounds=(0, 10000),
         aggregation="sum"),
    dict(name="WBC", label="White blood cells", unit="10*3/uL", loinc=["6690-2"], bounds=(0.05, 500)),
    dict(name="Weight", label="Body weight", unit="kg", loinc=["29463-7"], bounds=(20, 400),
         alternativeUnits=[{"unit": "[lb_av]", "offset": 0, "scale": 0.45359237}]),
]

_STATICS: list[dict[str, Any]] = [
    dict(name="Age", kind="numeric", unit="a", bounds=(15, 110)),
    dict(name="Height", kind="numeric", unit="cm", bounds=(100, 250)),
    dict(name="Gender", kind="categorical", categories=[0, 1], labels=["female", "male"]),
    dict(name="ICUType", kind="categorical", categories=[1, 2, 3, 4],
         labels=["coronary care", "cardiac surgery recovery", "medical", "surgical"]),
]

VARIABLE_NAMES = [v["name"] for v in _VARIABLES]
STATIC_NAMES = [s["name"] for s in _STATICS]
# The six bedside vitals of the "vitals only" evaluation (MAP invasive or not).
BEDSIDE_VITALS = ["HR", "SaO2", "MAP", "RespRate", "Temp", "Lactate"]
# What a bedside-monitor feed sends: the six vitals (MAP or NIMAP) and the admission weight.
MONITOR_VARIABLES = ["HR", "SaO2", "MAP", "NIMAP", "RespRate", "Temp", "Lactate", "Weight"]
# A chemistry and blood-count panel, without blood gases (PaO2, PaCO2, pH) or bedside charting
# (GCS, urine output, ventilation, invasive pressures).
ROUTINE_LABS = ["Albumin", "ALP", "ALT", "AST", "Bilirubin", "BUN", "Cholesterol", "Creatinine", "Glucose", "HCO3",
                "HCT", "K", "Mg", "Na", "Platelets", "TroponinI", "TroponinT", "WBC"]

# The input profiles the shipped model is validated on, most specific first: the service names,
# of those whose coverage a stay meets (scenarios.coverage_rule), the one with the best figure.
# `variables` None = any variable; `maxHours` None = any length up to maxHours.
SCENARIOS: list[dict[str, Any]] = [
    dict(name="vitals", label="bedside vital signs (HR, SaO2, MAP or NIMAP, respiratory rate, temperature, lactate) "
         "and descriptors", variables=MONITOR_VARIABLES, maxHours=None),
    dict(name="vitals-routine-labs", label="vital signs and routine laboratory results, no blood gases",
         variables=MONITOR_VARIABLES + ROUTINE_LABS, maxHours=None),
    dict(name="first-6h", label="the full record of the first 6 hours", variables=None, maxHours=6),
    dict(name="first-12h", label="the full record of the first 12 hours", variables=None, maxHours=12),
    dict(name="first-24h", label="the full record of the first 24 hours", variables=None, maxHours=24),
    dict(name="full", label="the full record (vital signs, laboratory results, blood gases, charting)",
         variables=None, maxHours=None),
]
MAX_HOURS = 48
DELTA_CAP = 48


def variable_specs() -> list[dict[str, Any]]:
    """Manifest `variables` entries without normalisation statistics."""
    out = []
    for v in _VARIABLES:
        spec = {
            "name": v["name"],
            "label": v["label"],
            "unit": v["unit"],
            "loinc": list(v["loinc"]),
            "bounds": {"min": v["bounds"][0], "max": v["bounds"][1]},
            "aggregation": v.get("aggregation", "last"),
            "mean": 0.0,
            "std": 1.0,
            "alternativeUnits": copy.deepcopy(v.get("alternativeUnits", [])),
            "rawUnitSlips": copy.deepcopy(v.get("rawUnitSlips", [])),
            **{k: v[k] for k in ("molarMass", "charge") if k in v},
        }
        out.append(spec)
    return out


def static_specs() -> list[dict[str, Any]]:
    out = []
    for s in _STATICS:
        if s["kind"] == "numeric":
            out.append({"name": s["name"], "kind": "numeric", "unit": s["unit"],
                        "bounds": {"min": s["bounds"][0], "max": s["bounds"][1]}, "mean": 0.0, "std": 1.0})
        else:
            out.append({"name": s["name"], "kind": "categorical", "categories": list(s["categories"]),
                        "labels": list(s["labels"])})
    return out


def input_width(manifest: dict[str, Any]) -> int:
    width = 3 * len(manifest["variables"])
    for s in manifest["statics"]:
        width += 2 if s["kind"] == "numeric" else len(s["categories"])
    return width


CITATION = (
    "Silva I, Moody G, Scott DJ, Celi LA, Mark RG. Predicting In-Hospital Mortality of ICU Patients: "
    "The PhysioNet/Computing in Cardiology Challenge 2012. Computing in Cardiology 2012;39:245-248. "
    "Published on PhysioNet (Goldberger et al., Circulation 2000;101(23):e215-e220)."
)


def base_manifest(name: str, version: str, created_at: str, *, hidden: int, bootstrap: bool,
                  description: str, ensemble: int = 1) -> dict[str, Any]:
    """A manifest skeleton with placeholder normalisation (mean 0, std 1)."""
    m: dict[str, Any] = {
        "name": name,
        "version": version,
        "createdAt": created_at,
        "bootstrap": bootstrap,
        "description": description,
        "onnx": {"file": "model.onnx", "opset": 17, "inputs": {"values": "values", "statics": "statics", "lengths": "lengths"},
                 "output": "probability"},
        "architecture": {"type": "lstm", "layers": 2, "hidden": hidden, "head": [32], "nInputs": 0, "ensemble": ensemble},
        "maxHours": MAX_HOURS,
        "hourAggregation": "last",
        "variables": variable_specs(),
        "statics": static_specs(),
        "staticWeightVariable": "Weight",
        "deltaCap": DELTA_CAP,
        "calibration": {"method": "temperature", "temperature": 1.0, "foldedIntoGraph": True},
        "decisionThreshold": 0.5,
        "provenance": {
            "dataset": "PhysioNet/Computing in Cardiology Challenge 2012, sets a and c",
            "citation": CITATION,
            "licence": "ODC-By 1.0",
        },
        "metrics": {},
    }
    m["architecture"]["nInputs"] = input_width(m)
    return m
