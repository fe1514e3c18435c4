"""Municipal scoring: P, delta-method and census variances, logit-scale intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy.special import expit, logit

import riskmap.model.score as score_mod
from riskmap.errors import InputError
from riskmap.model.logit import SurveyLogit
from riskmap.model.score import (logit_interval, municipal_means, national_means,
                           score_municipalities)

COVS = ["age", "male", "rural"]


def make_census(n=3000, n_mun=12, seed=0):
    rng = np.random.default_rng(seed)
    codes = [f"{1 + i // 5:02d}{i % 5 + 1:03d}" for i in range(n_mun)]
    mun = rng.integers(0, n_mun, n)
    return pd.DataFrame({
        "cvegeo": np.array(codes)[mun],
        "weight": rng.uniform(5, 40, n),
        "age": rng.integers(5, 18, n).astype(float),
        "male": rng.integers(0, 2, n).astype(float),
        "rural": (rng.random(n) < (mun / n_mun)).astype(float),
    }), codes


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(1)
    n = 4000
    X = pd.DataFrame({"age": rng.integers(5, 18, n).astype(float),
                      "male": rng.integers(0, 2, n).astype(float),
                      "rural": rng.integers(0, 2, n).astype(float)})
    eta = -4 + 0.15 * X["age"] + 0.5 * X["male"] + 0.8 * X["rural"]
    y = (rng.random(n) < expit(eta)).astype(int)
    return SurveyLogit().fit(X, y, rng.uniform(1, 3, n), psu=rng.integers(0, 80, n))


def loop_scores(model, census):
    """Direct transcription of docs/METHOD.md §2, one municipality at a time."""
    out = {}
    for code, grp in census.groupby("cvegeo"):
        Xd = np.column_stack([np.ones(len(grp)), grp[COVS].to_numpy()])
        p = expit(Xd @ model.coef_)
        v = grp["weight"].to_numpy()
        N = v.sum()
        P = (v * p).sum() / N
        g = np.zeros(Xd.shape[1])
        for j in range(len(grp)):
            g += v[j] * p[j] * (1 - p[j]) * Xd[j]
        g /= N
        out[code] = (N, P, g @ model.cov_ @ g, (v**2 * (p - P) ** 2).sum() / N**2, len(grp))
    return pd.DataFrame(out, index=["children", "probability", "var_model", "var_census",
                                    "n_records"]).T


def test_matches_loop_transcription_of_method(model):
    census, _ = make_census()
    scores = score_municipalities(model, census, COVS)
    expected = loop_scores(model, census)
    for col in ["children", "probability", "var_model", "var_census"]:
        assert_allclose(scores[col], expected.loc[scores.index, col], rtol=1e-10)
    assert scores["n_records"].tolist() == expected.loc[scores.index, "n_records"].tolist()
    assert_allclose(scores["se"], np.sqrt(scores["var_model"] + scores["var_census"]))
    assert_allclose(scores["expected_child_labour"], scores["probability"] * scores["children"])
    assert list(scores.columns) == list(score_mod.SCORE_COLUMNS)
    assert scores.index.name == "cvegeo"


def test_delta_method_matches_finite_difference_gradient(model):
    census, _ = make_census(n=800, n_mun=3, seed=2)
    scores = score_municipalities(model, census, COVS)

    def P_of(beta):
        m = SurveyLogit.from_dict({**model.to_dict(), "coef": list(beta)})
        return score_municipalities(m, census, COVS)["probability"].to_numpy()

    h = 1e-6
    jac = np.empty((len(scores), len(model.coef_)))
    for k in range(len(model.coef_)):
        e = np.zeros(len(model.coef_))
        e[k] = h
        jac[:, k] = (P_of(model.coef_ + e) - P_of(model.coef_ - e)) / (2 * h)
    var_fd = np.einsum("ij,jk,ik->i", jac, model.cov_, jac)
    assert_allclose(scores["var_model"], var_fd, rtol=1e-5)


def test_delta_method_agrees_with_simulation_oracle(model):
    census, _ = make_census(n=1500, n_mun=4, seed=3)
    scores = score_municipalities(model, census, COVS)
    rng = np.random.default_rng(3)
    draws = rng.multivariate_normal(model.coef_, model.cov_, size=2000)
    Xd = np.column_stack([np.ones(len(census)), census[COVS].to_numpy()])
    v = census["weight"].to_numpy()
    onehot = pd.get_dummies(census["cvegeo"]).astype(float)
    P = (expit(draws @ Xd.T) * v) @ onehot.to_numpy() / (v @ onehot.to_numpy())
    sim_var = pd.Series(P.var(axis=0, ddof=1), index=onehot.columns)
    assert_allclose(scores["var_model"], sim_var.loc[scores.index], rtol=0.15)


def test_intervals_on_logit_scale_inside_unit_interval(model):
    census, _ = make_census(seed=4)
    census = census.iloc[:200]  # few records -> wide intervals
    scores = score_municipalities(model, census, COVS)
    assert ((scores["ci_low"] > 0) & (scores["ci_high"] < 1)).all()
    assert (scores["ci_low"] < scores["probability"]).all()
    assert (scores["probability"] < scores["ci_high"]).all()
    half = 1.959964 * scores["se"] / (scores["probability"] * (1 - scores["probability"]))
    assert_allclose(logit(scores["ci_high"]) - logit(scores["probability"]), half)
    assert_allclose(logit(scores["probability"]) - logit(scores["ci_low"]), half)
    lo, hi = logit_interval(np.array([0.001]), np.array([0.004]))  # Wald: -0.007
    assert 0 < lo[0] < 0.001 < hi[0] < 1


def test_codes_without_records_get_empty_rows_and_outsiders_warn(model):
    census, codes = make_census(seed=5)
    census = census[census["cvegeo"] != codes[0]].copy()
    census.loc[census.index[:3], "cvegeo"] = "99999"
    with pytest.warns(RuntimeWarning, match="3 census records .* 99999"):
        scores = score_municipalities(model, census, COVS, codes=codes)
    assert scores.index.tolist() == codes
    empty = scores.loc[codes[0]]
    assert empty["children"] == 0 and empty["n_records"] == 0
    assert np.isnan(empty[["probability", "se", "ci_low", "ci_high", "var_model",
                           "var_census", "expected_child_labour"]].astype(float)).all()
    inside = census[census["cvegeo"] != "99999"]
    assert_allclose(scores.loc[codes[1:]], score_municipalities(model, inside, COVS)
                    .loc[codes[1:]], rtol=1e-12)


def test_chunking_does_not_change_results(model, monkeypatch):
    census, _ = make_census(n=5000, seed=6)
    whole = score_municipalities(model, census, COVS)
    monkeypatch.setattr(score_mod, "_CHUNK", 777)
    pd.testing.assert_frame_equal(score_municipalities(model, census, COVS), whole,
                                  check_exact=False, rtol=1e-12)


def test_identical_records_have_zero_census_variance(model):
    census = pd.DataFrame({"cvegeo": ["01001"] * 50, "weight": 10.0, "age": 9.0, "male": 1.0,
                           "rural": 0.0})
    scores = score_municipalities(model, census, COVS)
    assert_allclose(scores["var_census"], 0.0, atol=1e-18)
    assert scores["var_model"].iloc[0] > 0


@pytest.mark.parametrize("mutate, match", [
    (lambda c: c.drop(columns="rural"), "lack column.*rural"),
    (lambda c: c.assign(age=np.where(np.arange(len(c)) == 4, np.nan, c["age"])),
     "column 'age', row 4: missing"),
    (lambda c: c.assign(weight=np.where(np.arange(len(c)) == 2, 0.0, c["weight"])),
     "column 'weight', row 2: weights must be > 0"),
    (lambda c: c.assign(male="yes"), "column 'male'.*numeric"),
])
def test_bad_census_input_raises(model, mutate, match):
    census, _ = make_census(n=100)
    with pytest.raises(InputError, match=match):
        score_municipalities(model, mutate(census), COVS)


def test_covariates_must_match_model(model):
    census, _ = make_census(n=100)
    with pytest.raises(InputError, match="do not match the model"):
        score_municipalities(model, census, ["male", "age", "rural"])
    with pytest.raises(InputError, match="3 covariates, 2 were given"):
        score_municipalities(model, census, ["age", "male"])


def test_municipal_and_national_means():
    census, codes = make_census(seed=7)
    means = municipal_means(census, COVS, codes=codes + ["32058"])
    for code in codes:
        grp = census[census["cvegeo"] == code]
        assert_allclose(means.loc[code], np.average(grp[COVS], weights=grp["weight"], axis=0))
    assert means.loc["32058"].isna().all()
    nat = national_means(census, COVS)
    assert_allclose(nat, np.average(census[COVS], weights=census["weight"], axis=0))
    assert nat.index.tolist() == COVS


def test_full_count_has_no_census_variance(model):
    census, _ = make_census(seed=8)
    sample = score_municipalities(model, census, COVS)
    full = score_municipalities(model, census, COVS, census_sample=False)
    assert (sample["var_census"] > 0).all()
    assert_allclose(full["var_census"], 0.0)
    assert_allclose(full["se"], np.sqrt(sample["var_model"]))
    assert_allclose(full["probability"], sample["probability"])
