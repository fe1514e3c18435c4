"""National rate, significance levels and ranks."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy.special import expit, logit

from riskmap.model.levels import RULE, classify_levels, describe_rule, national_rate, rank_within
from riskmap.errors import InputError


def test_national_rate_simple_random_sample_has_textbook_se():
    y = np.array([1] * 13 + [0] * 87)
    rate = national_rate(pd.DataFrame({"weight": 2.0, "child_labour": y}))
    assert_allclose(rate["estimate"], 0.13)
    # Each record its own PSU, factor n/(n-1): se^2 = r(1-r)/(n-1).
    assert_allclose(rate["se"], np.sqrt(0.13 * 0.87 / 99))
    half = 1.959964 * rate["se"] / (0.13 * 0.87)
    assert_allclose([rate["ci_low"], rate["ci_high"]], expit(logit(0.13) + np.array([-1, 1])
                                                             * half))


def test_national_rate_stratified_clustered_matches_hand_computation():
    rng = np.random.default_rng(0)
    n = 400
    survey = pd.DataFrame({
        "weight": rng.uniform(10, 100, n),
        "child_labour": rng.integers(0, 2, n),
        "strata": np.repeat(["A", "B"], n // 2),
        "psu": rng.integers(1, 6, n).astype(str),  # the same labels in both strata
    })
    rate = national_rate(survey)
    w, y = survey["weight"].to_numpy(), survey["child_labour"].to_numpy()
    r = (w * y).sum() / w.sum()
    var = 0.0
    for _, stratum in survey.groupby("strata"):
        totals = [(g["weight"] * (g["child_labour"] - r)).sum() / w.sum()
                  for _, g in stratum.groupby("psu")]
        nh = len(totals)
        var += nh / (nh - 1) * sum((t - np.mean(totals)) ** 2 for t in totals)
    assert_allclose(rate["estimate"], r)
    assert_allclose(rate["se"], np.sqrt(var), rtol=1e-10)
    assert rate["ci_low"] < r < rate["ci_high"]


def test_national_rate_rejects_bad_input():
    with pytest.raises(InputError, match="column 'child_labour', row 1: outcome must be 0/1"):
        national_rate(pd.DataFrame({"weight": [1.0, 1.0], "child_labour": [0, 3]}))
    with pytest.raises(InputError, match="column 'weight', row 0"):
        national_rate(pd.DataFrame({"weight": [0.0, 1.0], "child_labour": [0, 1]}))
    with pytest.raises(InputError, match="column 'child_labour'"):
        national_rate(pd.DataFrame({"weight": [1.0]}))


def test_classify_levels_significance_rule():
    scores = pd.DataFrame({
        "ci_low": [0.15, 0.05, 0.08, 0.12, 0.20, np.nan, 0.13],
        "ci_high": [0.25, 0.10, 0.18, 0.30, 0.30, np.nan, 0.20],
        "n_records": [100, 100, 100, 29, 30, 0, 100],
    }, index=["a", "b", "c", "d", "e", "f", "g"])
    levels = classify_levels(scores, reference=0.13)
    assert levels.tolist() == ["alto", "bajo", "medio", "sin_informacion", "alto",
                               "sin_informacion", "medio"]  # ci_low == r is not significant
    assert levels.name == "level" and levels.index.tolist() == list(scores.index)
    assert classify_levels(scores, 0.13, min_records=10)["d"] == "medio"
    with pytest.raises(InputError, match="reference rate"):
        classify_levels(scores, reference=1.5)


def test_rule_is_documented_in_both_languages():
    assert RULE["id"] == "significance"
    assert {"es", "en"} <= set(RULE["text"])
    rule = describe_rule(reference=0.131, min_records=50)
    assert rule["parameters"]["min_records"] == 50
    assert rule["parameters"]["reference_value"] == 0.131
    assert RULE["parameters"]["min_records"] == 30  # the constant is not mutated


def test_ranks_national_and_within_state():
    scores = pd.DataFrame({
        "probability": [0.30, 0.10, 0.30, 0.20, 0.50],
        "level": ["alto", "bajo", "alto", "medio", "sin_informacion"],
        "cve_ent": ["01", "01", "02", "02", "02"],
    })
    assert rank_within(scores).tolist() == [1, 4, 1, 3, pd.NA]
    assert rank_within(scores, by_state="cve_ent").tolist() == [1, 2, 1, 2, pd.NA]
    assert rank_within(scores.drop(columns="level")).tolist() == [2, 5, 2, 4, 1]
