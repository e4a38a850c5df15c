"""Writes model-card.md from the manifest, the held-out metrics (with the alternatives considered) and
the explanation check (explanation-check.json, measured by `npm run explain-evidence`) of a model folder:
the one writer of the card. Labels come from the architecture; every figure from those files."""
from __future__ import annotations

import json
import os
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .trees import DISTILL_FOLDS


def _ci(m: dict[str, Any]) -> str:
    lo, hi = m["aurocCi95"]
    return f"{m['auroc']:.3f} ({lo:.3f}-{hi:.3f})"


_ORDER = ["<50", "50-64", "65-79", ">=80", "<24", "24-47", "48", "unknown"]


def _subgroup_table(groups: dict[str, Any]) -> list[str]:
    lines = ["| subgroup | stays | deaths | AUROC (95% CI) |", "| --- | ---: | ---: | --- |"]
    order = sorted(groups, key=lambda k: (_ORDER.index(k) if k in _ORDER else -1, k))
    for name in order:
        g = groups[name]
        auroc = "too few deaths" if g["auroc"] is None else _ci(g)
        lines.append(f"| {name} | {g['n']} | {g['deaths']} | {auroc} |")
    return lines


def _net(manifest: dict[str, Any]) -> str:
    """The recurrent layers' name, as the card writes it: LSTM or GRU."""
    return manifest["architecture"]["type"].upper()


def _networks(manifest: dict[str, Any]) -> str:
    k = manifest["architecture"].get("ensemble", 1)
    return f"One stacked {_net(manifest)}" if k == 1 else f"{k} stacked {_net(manifest)}s averaged"


_COUNTS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}


def _count(n: int) -> str:
    return _COUNTS.get(n, str(n))


def to_fixed(x: float, digits: int) -> str:
    """JavaScript's Number.prototype.toFixed: the exact binary value rounded half away from zero (Python's
    format rounds half to even), so figures read as the TypeScript tools print them."""
    return str(Decimal(x).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def _alternatives(alt: dict[str, Any] | None) -> list[str]:
    """The candidates compared on the validation split, and the larger ensemble set aside for its cost."""
    if not alt:
        return []
    lines = ["## Alternatives considered", "", alt["selection"], "",
             "| candidate (validation split) | networks | cost (x one LSTM(64)) | seeds | mean validation AUROC |",
             "| --- | ---: | ---: | ---: | --- |"]
    for r in alt["validation"]:
        sd = f" (sd {r['valAurocSd']:.3f})" if r.get("valAurocSd") is not None else ""
        lines.append(f"| {r['run']} | {r['networks']} | {r['cost']:g} | {r['seeds']} | {r['valAuroc']:.4f}{sd} |")
    for key, title, recipes in (("inputHiding", "Input-group hiding (version 1.4.0)", "recipe (validation split)"),
                                ("hiddenCopies", "Hidden copies (version 1.6.0)", "recipe (validation split, GRU)")):
        lines += _profile_rows(title, recipes, alt.get(key))
    e = alt.get("largerEnsemble")
    if e:
        h = e["heldOut"]
        lines += ["", f"**{e['networks']}-network ensemble (version {e['version']}, not shipped).** Validation AUROC "
                  f"{e['validationAuroc']:.3f}; held-out test AUROC {_ci(h)}, AUPRC {h['auprc']:.3f}, Brier {h['brier']:.4f}, "
                  f"ECE {h['ece']:.4f} (trees on the same split {e['gbtHeldOutAuroc']:.3f}). {e['why']}"]
    return lines + [""]


def _mean_risk_shift(calibration: dict[str, Any], refit: dict[str, Any] | None) -> str:
    """The sentence on the output-bias shift of a fixed-schedule run (ensemble.match_mean_risk), if it had one."""
    if "meanRiskShift" not in calibration:
        return ""
    twin = f"; the twin's on its training split: {refit['twinMeanRiskShift']:+.3f}" if refit else ""
    before = (" (before the shift the shipped networks' mean risks were "
              + " and ".join(f"{r:.3f}" for r in refit.get("memberMeanRiskBeforeShift", []))
              + f" against an observed {refit.get('observedRate', 0):.3f})") if refit else ""
    return (f" Then the output bias of every network is shifted by the same amount ({calibration['meanRiskShift']:+.3f} on "
            f"the logit scale{twin}) so that the mean risk over the stays it learnt from equals their mortality: a fixed "
            f"schedule keeps the last epoch's weights, which carry a random offset{before}. The shift does not change "
            "the ranking of stays.")


def _prefix_limitation(hp: dict[str, Any]) -> list[str]:
    """What the card says about short stays depends on whether training saw random prefixes."""
    crop = hp.get("crop", 0) or 0
    if crop > 0:
        return [f"- Scores are for the first 48 hours only; in training {crop:.0%} of the stays of each batch were read only up to",
                f"  a random hour between {hp.get('crop_min', 12)} and 48 (label unchanged), the rest whole; stays shorter than",
                f"  {hp.get('crop_min', 12)} hours (see \"Hours of data\" above) are few in the data and were never simulated."]
    return ["- Scores are for the first 48 hours only; the model was trained on whole 48-hour windows, and short stays",
            "  (see \"Hours of data\" above) are few in the data."]


def _scored_at_hour_table(metrics: dict[str, Any], net: str) -> list[str]:
    """Discrimination when every held-out stay is scored after its first h hours, as the service may be asked to."""
    rows = metrics.get("scoredAtHour") or []
    if not rows:
        return []
    out = ["", "Scored earlier in the stay (every held-out stay cut to its first h hours). \"Trees, whole stays\" are the",
           "trees above, fitted on 48-hour summaries; \"trees, prefix-trained\" were fitted on the summaries of every",
           "training stay cut to each of these hours and whole, the fair baseline for early scoring:", "",
           f"| hours of data | {net} AUROC (95% CI) | trees, whole stays | trees, prefix-trained | {net} minus prefix-trained trees (95% CI) |",
           "| ---: | --- | --- | --- | --- |"]
    for r in rows:
        d = r["modelMinusGbtPrefixTrainedAuroc"]
        out.append(f"| {r['hours']} | {_ci(r['model'])} | {_ci(r['gbt'])} | {_ci(r['gbtPrefixTrained'])} | "
                   f"{d['delta']:+.3f} ({d['ci95Low']:+.3f} to {d['ci95High']:+.3f}) |")
    def hours(pred) -> str:
        return ", ".join(str(r["hours"]) for r in rows if pred(r["modelMinusGbtPrefixTrainedAuroc"])) or "none"
    out += ["", f"Hours where the prefix-trained trees rank stays better (interval below 0): {hours(lambda d: d['ci95High'] < 0)};",
            f"where the {net} does (interval above 0): {hours(lambda d: d['ci95Low'] > 0)}; elsewhere the two tie on this split.",
            "Against trees fitted for the same task this model has not shown an advantage in discrimination."]
    return out


def _scenario_section(metrics: dict[str, Any], manifest: dict[str, Any]) -> list[str]:
    """The validated input profiles: what each result's `inputProfile` names."""
    results = metrics.get("scenarios")
    if not results:
        return [f"Scored on the {_count(len(metrics['vitalsOnly']['variables']))} bedside vitals only, the model loses much "
                "of its discrimination (rows above)."]
    net = _net(manifest)
    # The coverage rule is in the manifest (training/experiments/profile_coverage.py adds it to older runs' manifests).
    rules = {s["name"]: s.get("coverage") for s in manifest.get("scenarios", [])}
    lines = [
        "",
        "### Input profiles (validated scenarios)",
        "",
        "Every result names the profile its stay covers (`inputProfile`) with that profile's held-out AUROC, so a",
        "caller knows how much weight the score can bear. A stay covers a profile when it has at least as many of the",
        "profile's variables, over at least as many hours of its window (first to last row with any), as 95% of the",
        "profile's test stays (the 5% quantile of each, column \"claimed from\"); of the profiles it covers it gets the",
        "best figure, so removing observations never raises it. A stay that covers none is `sparse`, with no figure.",
        "Each row: the test stays as a caller with only those inputs would send them; the trees were fitted on the",
        "training stays cut the same way (trees chosen on validation).",
        "",
        f"| profile | claimed from | {net} AUROC (95% CI) | AUPRC | ECE | calibration slope | trees AUROC (95% CI) | "
        f"{net} minus trees (95% CI) |",
        "| --- | --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for r in results:
        m, g, d = r["model"], r["gbt"], r["modelMinusGbtAuroc"]
        rule = r.get("coverage") or rules.get(r["name"])
        claimed = ("never (no coverage rule)" if not rule else
                   f"{rule['minVariables']} variables over {rule['minHours']} h ({rule['heldOutShare']:.0%} of its stays)")
        lines.append(f"| `{r['name']}`: {r['label']} | {claimed} | {_ci(m)} | {m['auprc']:.3f} | {m['ece']:.3f} | "
                     f"{m['calibrationSlope']:.2f} | {_ci(g)} | {d['delta']:+.3f} ({d['ci95Low']:+.3f} to {d['ci95High']:+.3f}) |")
    below = [r["name"] for r in results if r["modelMinusGbtAuroc"]["delta"] < 0]
    lines += ["", ("In every profile the network's AUROC is at least the trees'." if not below else
                   f"**The trees rank better in: {', '.join(below)}** (point estimates; see the intervals).")]
    return lines


def _profile_rows(title: str, recipes: str, check: dict[str, Any] | None) -> list[str]:
    """A validation check scored per input profile (training/alternatives.json), as a paragraph and a table."""
    if not check:
        return []
    return ["", f"**{title}.** " + check["selection"], "",
            f"| {recipes} | seeds | vitals | vitals and routine labs | full record |", "| --- | ---: | ---: | ---: | ---: |",
            *(f"| {r['run']} | {r['seeds']} | {r['vitals']:.4f} | {r['vitalsRoutineLabs']:.4f} | {r['full']:.4f} |"
              for r in check["rows"])]


def write_model_card(path: str, manifest: dict[str, Any], metrics: dict[str, Any], split: dict[str, list[str]],
                     other: dict[str, Any] | None = None, bench: dict[str, Any] | None = None,
                     explanation: dict[str, Any] | None = None) -> None:
    split = {k: split[k] for k in ("train", "validation", "test")}
    lines = [*_intended_use(manifest), *_training_data(manifest, metrics, split), *_inputs(manifest, metrics),
             *_model(manifest, metrics), *_held_out(manifest, metrics), *_calibration(metrics), *_subgroups(metrics)]
    lines += _architectures(manifest, metrics, other, bench)
    lines += [""] if other else []
    lines += _alternatives(metrics.get("alternativesConsidered"))
    lines += _explanation_check(explanation) + _limitations(manifest, metrics) + _how_to_reproduce(manifest, metrics)
    with open(path, "w") as f:
        f.write("\n".join(lines))


def _explanation_check(check: dict[str, Any] | None) -> list[str]:
    """What removing each stay's top contributors does, against as many random ones
    (scripts/explain-evidence.ts measures it into explanation-check.json)."""
    if not check:
        return []

    def row(label: str, r: dict[str, Any]) -> str:
        a = r["auroc"]
        return (f"| {label} | {r['stays']} | {to_fixed(100 * r['shareTopMovesMore'], 0)}% | "
                f"{to_fixed(100 * r['medianMoveTop'], 1)} points | {to_fixed(100 * r['medianMoveRandom'], 1)} points | "
                f"{to_fixed(a['asIs'], 3)} / {to_fixed(a['withoutTop'], 3)} / {to_fixed(a['withoutRandom'], 3)} |")
    one, three = check["topOne"], check["topThree"]
    return [
        "<!-- explanation-check: written by npm run explain-evidence -->",
        "## Explanations checked",
        "",
        "`contributions` (`\"explain\": true`) give, per variable, the probability minus the probability of",
        "the same stay with that variable removed from every hour: exact for this model, and an",
        "association in it, not a cause. Removing a variable reads as \"not charted\", which is itself",
        f"informative. Checked on the {check['explainedStays']:,} stays of the {check['split']} split with at",
        "least two contributors (the shipped networks were refit on every stay, these included: the check",
        "is of the explanations, not of accuracy), each rescored alone without its top contributors and",
        f"without as many present variables drawn at random (seed {check['seed']}):",
        "",
        "| removed | stays | top moves the risk more | median move, top | median move, random | AUROC as is / without top / without random |",
        "| --- | --- | --- | --- | --- | --- |",
        row(f"{one['removed']} variable", one),
        row(f"{three['removed']} variables together", three),
        "",
        "For one variable the first column follows from the definition (the top contributor has the",
        "largest effect; ties with the random draw count as not more). Three removed together is the real",
        "test: the effects are measured one at a time, and interactions could undo them. The AUROC columns",
        "use the outcomes (\"as is\" is optimistic, the stays were in the refit): without what the",
        "explanations point at, the ranking loses much of its signal; without random variables it keeps",
        "it. Part of that drop is by construction (removing a stay's strongest push moves it towards the",
        "middle), so read it beside the random column, not alone.",
        "<!-- /explanation-check -->",
        "",
    ]


def _intended_use(manifest: dict[str, Any]) -> list[str]:
    """Title, summary and intended use."""
    return [
        f"# Model card: {manifest['name']} {manifest['version']}",
        "",
        "In-hospital mortality risk of an adult ICU stay from its first 1 to 48 hours of hourly vital signs and",
        f"laboratory values. {_networks(manifest)}, exported to ONNX; the probability is calibrated (0-1).",
        "",
        "## Intended use",
        "",
        "- **What it does:** estimates the probability that an adult patient dies in hospital, from the hours of the",
        "  ICU stay seen so far (up to the first 48), for risk stratification, audit, research and decision support.",
        "- **Intended users:** ICU clinicians and clinical informatics teams, through the service's API, FHIR",
        "  RiskAssessment or CDS Hooks card, after local validation and a silent (shadow) period.",
        "- **Not intended for:** replacing clinical judgement; decisions to withhold or withdraw treatment; triage",
        "  of individual patients without a clinician; children (trained on ages 15 and over); patients outside",
        "  intensive care; stays longer than 48 hours (only the last 48 hourly rows are used).",
        "- The probability is a number between 0 and 1 (FHIR `probabilityDecimal`), not a percentage.",
        "",
    ]


def _training_data(manifest: dict[str, Any], metrics: dict[str, Any], split: dict[str, list[str]]) -> list[str]:
    """The data, its licence, the split and the refit."""
    hp = manifest["provenance"]["training"]["hyperparameters"]
    refit = metrics.get("refit")
    return [
        "## Training data",
        "",
        f"PhysioNet/Computing in Cardiology Challenge 2012, sets a and c: {sum(len(v) for v in split.values()):,} ICU",
        "stays (coronary, cardiac-surgery, medical and surgical units of one Boston hospital, 2001-2008, from",
        f"MIMIC-II), the first 48 hours, with the in-hospital outcome (mortality {100 * metrics['mortality']:.1f}%).",
        "The third challenge set is sealed and was not used.",
        "",
        f"> {manifest['provenance']['citation']} Licence: Open Data Commons Attribution License v1.0 (ODC-By 1.0).",
        "",
        f"Split (seed {manifest['provenance']['splits']['seed']}, stratified by outcome and set, record ids in",
        f"`split.json`): training {len(split['train'])}, validation {len(split['validation'])} ("
        + ("choice of the epoch count, " if hp.get("epochs") else "early stopping, ") + "calibration,",
        f"decision threshold), held-out test {len(split['test'])} (used once, for the numbers below).",
        *([] if not refit else [
            "",
            f"**The shipped networks were then trained again on all {refit['trainingRecords']:,} stays** (same seeds, "
            f"{refit['epochs']} epochs,",
            "temperature and decision threshold; normalisation from all of them). The held-out figures below are those",
            "of their twin trained on the training split only: the usual estimate for a model refit on all its",
            *_learning_curve((metrics.get("alternativesConsidered") or {}).get("refitLearningCurve")),
        ]),
        "",
    ]


def _learning_curve(curve: dict[str, Any] | None) -> list[str]:
    """The end of the refit paragraph: what more stays were worth on validation (version 1.3.0's check)."""
    if not curve:
        return ["development data, since no stay is left to test the shipped weights on."]
    more = curve["stays"]["whole"] / curve["stays"]["subsample"] - 1
    net, trees = curve["networkValAuroc"], curve["treesValAuroc"]
    return ["development data, since no stay is left to test the shipped weights on. On validation, "
            f"{more:.0%} more training",
            f"stays were worth about {net['whole'] - net['subsample']:+.3f} AUROC to one network ({curve['seeds']} seeds; "
            f"the trees gained {trees['whole'] - trees['subsample']:+.3f}), so the refit is",
            "expected to do at least as well as the figures below on new stays of this population."]


def _inputs(manifest: dict[str, Any], metrics: dict[str, Any]) -> list[str]:
    """Variables, the input tensor and the cleaning rules."""
    arch = manifest["architecture"]
    refit = metrics.get("refit")
    variables = ", ".join(v["name"] for v in manifest["variables"])
    return [
        "## Inputs and preprocessing",
        "",
        f"Time series ({len(manifest['variables'])}): {variables}. Statics: age, sex, ICU type, height (weight is the",
        "hour-0 value of the Weight series). Each stay is binned into hourly rows (last value in the hour; urine",
        "summed). The input tensor (models/README.md), computed inside the ONNX graph from the binned values and",
        "raw statics, holds per hour and variable the z-score of the latest",
        "value (forward fill, training mean before the first), an observed-this-hour mask, and the hours since",
        f"the last observation (capped at {manifest['deltaCap']}, scaled to 0-1); then the statics, repeated on every",
        f"hour ({arch['nInputs']} inputs). Statics are repeated per hour, not fed to the head, so that the",
        "recurrent state can combine them with the trajectory from the first hour.",
        ("Normalisation statistics come from all development stays (the twin's from its training split)." if refit
         else "Normalisation statistics come from the training split only."),
        "",
        "Raw records are cleaned as models/README.md (\"Raw record cleaning\") lists: `-1` and impossible values",
        "(outside the manifest bounds, e.g. zero blood pressures) dropped, temperatures in degF, FiO2 in percent and",
        "pH without its decimal point converted, observations after 48:00 dropped.",
        "",
    ]


def _model(manifest: dict[str, Any], metrics: dict[str, Any]) -> list[str]:
    """The networks, their training recipe and calibration."""
    arch = manifest["architecture"]
    hp = manifest["provenance"]["training"]["hyperparameters"]
    refit = metrics.get("refit")
    return [
        "## Model",
        "",
        f"{arch['ensemble']} reference networks (different seeds) averaged on the logit scale inside one ONNX graph:",
        f"each is `{_net(manifest)}({arch['nInputs']}, {arch['hidden']}, 2 layers)` over each stay's own length (packed sequences /",
        "ONNX `sequence_lens`), the last layer's final hidden state, dropout, `Linear(hidden, 32)`, ReLU,",
        f"`Linear(32, 1)`. Training: AdamW (lr {hp['lr']}, weight decay {hp['weight_decay']}), batch {hp['batch_size']},",
        f"dropout {hp['dropout']}, unweighted binary cross-entropy, "
        + (f"{hp['epochs']} epochs, the last weights kept (a fixed count chosen on the validation split, "
           "training/README.md). " if hp.get("epochs") else
           f"at most {hp['max_epochs']} epochs with early stopping on validation AUROC (patience {hp['patience']}). ")
        + (f"Distillation: each stay's training target is {1 - hp['distill']:.2f} x its label + {hp['distill']:.2f} x the "
           f"out-of-fold probability of the gradient-boosted trees ({DISTILL_FOLDS} folds of the stays it learns from, so no stay's own "
           "label leaks into its soft target); the trees are not part of the shipped model. "
           if hp.get("distill", 0) > 0 else "")
        + (f"Random prefixes: in each batch {hp['crop']:.0%} of the training stays are read only up to a random hour "
           f"between {hp.get('crop_min', 12)} and 48 (causal {_net(manifest)}: its output at that hour), label unchanged, as the "
           "service scores stays before 48 hours. " if (hp.get("crop", 0) or 0) > 0 else "")
        + (f"Target replication (Lipton et al., 2016): the training loss is {hp['replicate']:.2f} x the mean loss of the "
           f"head read at every real hour of the stay (each with the stay's target) + {1 - hp['replicate']:.2f} x the loss "
           "at the last real hour; inference reads the last real hour only. " if (hp.get("replicate", 0) or 0) > 0 else "")
        + "Calibration: temperature scaling on the validation split" + (" (fitted on the twin)" if refit else ""),
        f"(T = {manifest['calibration']['temperature']:.3f}), folded into the graph."
        + _mean_risk_shift(manifest["calibration"], refit),
        "",
    ]


def _held_out(manifest: dict[str, Any], metrics: dict[str, Any]) -> list[str]:
    """The test split against the trees and the severity scores; input profiles; the decision rule."""
    model, gbt, net = metrics["model"], metrics["gbt"], _net(manifest)
    dr, gdr = model["decisionRule"], gbt["decisionRule"]
    delta = metrics["modelMinusGbtAuroc"]
    vitals = metrics["vitalsOnly"]["variables"]
    return [
        "## Held-out performance",
        "",
        f"Test split: {model['n']} stays, {model['deaths']} deaths. 95% intervals: {metrics.get('bootstrapResamples', 1000)}"
        " bootstrap resamples of stays.",
        "",
        "| model | AUROC (95% CI) | AUPRC | Brier | ECE |",
        "| --- | --- | ---: | ---: | ---: |",
        f"| **{net}, {manifest['architecture'].get('ensemble', 1)} network(s) averaged (this model)** | {_ci(model)} | "
        f"{model['auprc']:.3f} | {model['brier']:.4f} | {model['ece']:.4f} |",
        f"| gradient-boosted trees on summary statistics ({gbt['trees']} trees) | {_ci(gbt)} | {gbt['auprc']:.3f} | "
        f"{gbt['brier']:.4f} | {gbt['ece']:.4f} |",
        f"| SAPS-I (outcome file), {metrics['saps1']['n']} stays with a score | {_ci(metrics['saps1'])} | "
        f"{metrics['saps1']['auprc']:.3f} | - | - |",
        f"| SOFA (outcome file), {metrics['sofa']['n']} stays with a score | {_ci(metrics['sofa'])} | "
        f"{metrics['sofa']['auprc']:.3f} | - | - |",
        f"| {net}, only the {_count(len(vitals))} bedside vitals ({', '.join(vitals)}; all else missing) | "
        f"{_ci(metrics['vitalsOnly'])} | {metrics['vitalsOnly']['auprc']:.3f} | - | - |",
        f"| {net}, the {_count(len(metrics['vitalsPlusStatics']['variables']))} vitals plus age, sex, ICU type, height | "
        f"{_ci(metrics['vitalsPlusStatics'])} | "
        f"{metrics['vitalsPlusStatics']['auprc']:.3f} | - | - |",
        *_scored_at_hour_table(metrics, net),
        "",
        f"On the stays with a SAPS-I score the {net}'s AUROC is {metrics['saps1']['modelAurocSameStays']:.3f}; with a",
        f"SOFA score, {metrics['sofa']['modelAurocSameStays']:.3f}. {net} minus trees, paired bootstrap:",
        f"{delta['delta']:+.3f} (95% CI {delta['ci95Low']:+.3f} to {delta['ci95High']:+.3f}).",
        (f"**At 48 hours the {net} does not beat the trees on this split:** the interval of the difference includes 0, so the two"
         " rank stays equally well here" if delta["ci95Low"] <= 0 <= delta["ci95High"] else
         (f"The {net} ranks stays better than the trees (the interval excludes 0)" if delta["delta"] > 0 else
          f"**The trees rank stays better than the {net}** (the interval excludes 0)"))
        + f"; the {net}'s probabilities are {'better' if model['ece'] < gbt['ece'] else 'not better'} calibrated "
        f"(ECE {model['ece']:.3f} against {gbt['ece']:.3f}).",
        *_scenario_section(metrics, manifest),
        "",
        "**Decision rule.** The challenge scored binary predictions by min(sensitivity, PPV). The threshold that",
        f"maximises it on the validation split is {dr['threshold']:.3f} (`decisionThreshold` in the manifest). On the",
        f"test split: sensitivity {dr['sensitivity']:.3f}, PPV {dr['ppv']:.3f}, specificity {dr['specificity']:.3f},",
        f"min(Se, PPV) {dr['challengeScore']:.3f} (trees at their own validation threshold: Se {gdr['sensitivity']:.3f},",
        f"PPV {gdr['ppv']:.3f}).",
        "",
    ]


def _calibration(metrics: dict[str, Any]) -> list[str]:
    """Calibration figures and the reliability table."""
    model = metrics["model"]
    lines = [
        "## Calibration",
        "",
        f"Mean predicted risk {model['meanPredicted']:.3f} against an observed rate of {model['observedRate']:.3f};",
        f"calibration intercept {model['calibrationIntercept']:+.3f} and slope {model['calibrationSlope']:.3f} (ideal 0 and 1);",
        f"expected calibration error {model['ece']:.4f} (10 equal-width bins).",
        "",
        "![reliability](reliability.png)",
        "",
        "| predicted | stays | mean predicted | observed |",
        "| --- | ---: | ---: | ---: |",
    ]
    for r in metrics["reliability"]:
        lines.append(f"| {r['binLow']:.1f}-{r['binHigh']:.1f} | {r['n']} | {r['meanPredicted']:.3f} | {r['observedRate']:.3f} |")
    return lines


def _subgroups(metrics: dict[str, Any]) -> list[str]:
    lines = ["", "## Subgroups (held-out test split)", ""]
    titles = {"icuType": "ICU type", "sex": "Sex", "ageBand": "Age band (years)", "sourceSet": "Challenge set",
              "hoursObserved": "Hours of data"}
    for key, title in titles.items():
        lines += [f"**{title}**", ""] + _subgroup_table(metrics["subgroups"][key]) + [""]
    return lines


def _limitations(manifest: dict[str, Any], metrics: dict[str, Any]) -> list[str]:
    """What the model cannot be trusted for."""
    hp = manifest["provenance"]["training"]["hyperparameters"]
    return [
        "## Limitations",
        "",
        "- Single centre (Beth Israel Deaconess Medical Center, Boston), stays from 2001 to 2008: practice, case mix",
        "  and charting have changed since; performance elsewhere is unknown. **No external validation** has been done.",
        "- SaO2 is the arterial blood-gas saturation; the data have no pulse-oximetry SpO2. Feeding SpO2 as SaO2 is a",
        "  shift in the input distribution that was not tested.",
        "- Invasive and non-invasive blood pressures are separate inputs, as charted then.",
        *(_prefix_limitation(hp)),
        "- Missingness carries information here (a lab not ordered says something about the patient); a site with",
        "  different ordering habits can see different scores for similar patients.",
        f"- Calibration was fitted on this population's {metrics['mortality']:.0%} mortality; recalibrate locally before relying on",
        "  absolute risks.",
        "- Outcomes are in-hospital death only; withdrawal-of-care practices shape them.",
        "",
    ]


def _how_to_reproduce(manifest: dict[str, Any], metrics: dict[str, Any]) -> list[str]:
    """The command, its seed and its cost."""
    t = metrics["timing"]
    return [
        "## How to reproduce",
        "",
        "```sh",
        "# data: ../shared/data/physionet2012/ (set-a.tar.gz, set-c.tar.gz, Outcomes-a.txt, Outcomes-c.txt)",
        f"{manifest['provenance']['training']['command'].strip()}   # or: npm run train",
        "```",
        "",
        f"Fixed seed {manifest['provenance']['training']['seed']}; this run took {t['totalS'] / 60:.1f} minutes of wall "
        f"time on {t['cpuCount']} CPU cores shared with other jobs (Python {t['python']}, PyTorch {t['torch']}; "
        + (f"the networks were taken from `{manifest['provenance']['training']['reusedNetworksFrom']}`, an earlier run "
           "of the same seeds, data and hyperparameters; training is deterministic, so the command above gives the "
           "same networks"
           + (f": a from-scratch run of it took {t['fromScratch']['totalS'] / 60:.1f} minutes and wrote a byte-identical "
              "model.onnx)." if t.get("fromScratch", {}).get("identicalOnnx") else ").")
           if manifest["provenance"]["training"].get("reusedNetworksFrom") else
           "networks trained two at a time, one thread each)."),
        "The command rewrites this folder (model.onnx, manifest.json, model-card.md, metrics.json, reliability.png,",
        "split.json) and test/fixtures/skew/. Full numbers are in `metrics.json`.",
        "",
    ]


def _architectures(manifest: dict[str, Any], metrics: dict[str, Any], other: dict[str, Any] | None,
                   bench: dict[str, Any] | None) -> list[str]:
    """This model beside the same recipe with the other recurrent layers (LSTM / GRU)."""
    if other is None or not metrics.get("scenarios") or not other["metrics"].get("scenarios"):
        return []
    mine, theirs = manifest["architecture"]["type"], other["manifest"]["architecture"]["type"]
    by_name = {r["name"]: r for r in other["metrics"]["scenarios"]}
    lines = ["", "## Architectures compared", "",
             f"The same recipe, seeds and split with {theirs.upper()} layers (`{other['manifest']['name']}` "
             f"{other['manifest']['version']}, loadable with MODEL_VERSION={other['manifest']['version']}); held-out "
             "AUROC per input profile, each network's twin trained on the training split:", "",
             f"| profile | {mine.upper()} (this model) | {theirs.upper()} | trees |", "| --- | --- | --- | --- |"]
    for r in metrics["scenarios"]:
        o = by_name.get(r["name"])
        if o is not None:
            lines.append(f"| `{r['name']}` | {_ci(r['model'])} | {_ci(o['model'])} | {_ci(r['gbt'])} |")
    a, b = metrics["model"], other["metrics"]["model"]
    lines += ["", f"Calibration on the full record: ECE {a['ece']:.3f} and slope {a['calibrationSlope']:.2f} ({mine.upper()}), "
              f"ECE {b['ece']:.3f} and slope {b['calibrationSlope']:.2f} ({theirs.upper()})."]
    if bench:
        cells = ", ".join(f"{m['architecture'].upper()} {m['version']}: " + ", ".join(
            f"{row['staysPerSecond']:,.0f} stays/s at batch {row['batchSize']}" for row in m["throughput"])
            for m in bench["models"])
        lines.append(f"Engine throughput (`npm run bench`, {bench['machine']}, {bench['date']}, 48-hour stays): {cells}.")
    return lines


def load_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def load_comparison(compare_dir: str | None, bench_path: str | None) -> tuple[dict | None, dict | None]:
    """The other architecture's manifest and metrics, and the engine figures, when they exist."""
    have = compare_dir is not None and os.path.exists(os.path.join(compare_dir, "metrics.json"))
    other = {"manifest": load_json(os.path.join(compare_dir, "manifest.json")),
             "metrics": load_json(os.path.join(compare_dir, "metrics.json"))} if have else None
    bench = load_json(bench_path) if bench_path and os.path.exists(bench_path) else None
    return other, bench


def load_explanation_check(model_dir: str) -> dict | None:
    """explanation-check.json of a model folder, if `npm run explain-evidence` has measured it."""
    path = os.path.join(model_dir, "explanation-check.json")
    return load_json(path) if os.path.exists(path) else None


def main(argv: list[str] | None = None) -> None:
    """Rewrites model-card.md of a model folder from its manifest.json, metrics.json, split.json and
    explanation-check.json."""
    import argparse
    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("model_dir")
    p.add_argument("--compare", default=None, help="the same recipe with the other architecture (a model folder)")
    p.add_argument("--bench", default=None, help="engine figures of both (bench/architectures.json)")
    args = p.parse_args(argv)
    d = args.model_dir
    write_model_card(os.path.join(d, "model-card.md"), load_json(os.path.join(d, "manifest.json")),
                     load_json(os.path.join(d, "metrics.json")), load_json(os.path.join(d, "split.json")),
                     *load_comparison(args.compare, args.bench), explanation=load_explanation_check(d))


if __name__ == "__main__":
    main()
