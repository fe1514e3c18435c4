"""SurveyLogit: coefficients and design covariance against statsmodels and hand computation."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy.special import expit

from riskmap.errors import BadParameter, InputError, ModelError
from riskmap.model.logit import SurveyLogit, design_meat

sm = pytest.importorskip("statsmodels.api")

TRUE_BETA = np.array([-1.2, 0.6, -0.4, 0.25])


def simulate(n, seed=0, n_psu=None, beta=TRUE_BETA):
    rng = np.random.default_rng(seed)
    k = len(beta) - 1
    X = rng.normal(size=(n, k))
    y = (rng.random(n) < expit(beta[0] + X @ beta[1:])).astype(int)
    w = rng.uniform(0.5, 3.0, n)
    psu = rng.integers(0, n_psu, n) if n_psu else None
    return X, y, w, psu


def sm_glm(X, y, w):
    return sm.GLM(y, sm.add_constant(X), family=sm.families.Binomial(), var_weights=w)


def test_coefficients_match_statsmodels_glm():
    X, y, w, _ = simulate(4000, seed=1)
    model = SurveyLogit().fit(X, y, w)
    ref = sm_glm(X, y, w).fit(tol=1e-12)
    assert_allclose(model.coef_, ref.params, rtol=0, atol=1e-8)
    assert_allclose(model.loglik_, ref.llf, rtol=1e-10)
    # The Hessian is the weighted information matrix at the optimum.
    p = expit(sm.add_constant(X) @ ref.params)
    H = sm.add_constant(X).T @ ((w * p * (1 - p))[:, None] * sm.add_constant(X))
    assert_allclose(model.hessian_, H, rtol=1e-8)
    assert model.names_ == ["intercept", "x0", "x1", "x2"]
    assert model.n_iter_ < 15


def test_single_stratum_design_se_equals_statsmodels_cluster_robust():
    X, y, w, psu = simulate(3000, seed=2, n_psu=60)
    model = SurveyLogit().fit(X, y, w, psu=psu)
    # use_correction=False drops statsmodels' G/(G-1)*(N-1)/(N-K); Stata's svy uses G/(G-1).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sm_glm(X, y, w).fit(tol=1e-12, cov_type="cluster",
                                  cov_kwds={"groups": psu, "use_correction": False})
    G = 60
    assert_allclose(model.cov_, ref.cov_params() * G / (G - 1), rtol=1e-6, atol=1e-12)
    assert model.n_psu_ == 60 and model.n_strata_ == 1 and model.df_ == 59
    assert model.cov_type_ == "design"


def test_no_psu_means_each_record_is_its_own_psu():
    X, y, w, _ = simulate(1500, seed=3)
    model = SurveyLogit().fit(X, y, w)
    explicit = SurveyLogit().fit(X, y, w, psu=np.arange(1500))
    assert_allclose(model.cov_, explicit.cov_, rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hc0 = sm_glm(X, y, w).fit(tol=1e-12, cov_type="HC0")
    assert_allclose(model.cov_, hc0.cov_params() * 1500 / 1499, rtol=1e-6)


def hand_design_cov(X, y, w, strata, psu, beta, single="centre"):
    """Stata's linearised variance written with explicit loops (independent of the module)."""
    n, k = X.shape
    Xd = np.column_stack([np.ones(n), X])
    p = expit(Xd @ beta)
    H = np.zeros((k + 1, k + 1))
    for i in range(n):
        H += w[i] * p[i] * (1 - p[i]) * np.outer(Xd[i], Xd[i])
    totals = {}
    for i in range(n):
        key = (strata[i], psu[i])
        totals.setdefault(key, np.zeros(k + 1))
        totals[key] = totals[key] + w[i] * (y[i] - p[i]) * Xd[i]
    grand = np.mean(list(totals.values()), axis=0)
    meat = np.zeros((k + 1, k + 1))
    for h in sorted(set(strata)):
        zs = [v for (hh, _), v in totals.items() if hh == h]
        nh = len(zs)
        if nh == 1:
            if single == "centre":
                d = zs[0] - grand
                meat += np.outer(d, d)
            continue
        zbar = np.mean(zs, axis=0)
        acc = np.zeros((k + 1, k + 1))
        for z in zs:
            acc += np.outer(z - zbar, z - zbar)
        meat += nh / (nh - 1) * acc
    Hinv = np.linalg.inv(H)
    return Hinv @ meat @ Hinv


def test_stratified_covariance_matches_hand_computation():
    X, y, w, _ = simulate(240, seed=4)
    rng = np.random.default_rng(4)
    strata = np.repeat(["a", "b", "c"], 80)
    # PSU labels repeat across strata: PSUs are nested in strata.
    psu = rng.integers(0, 4, 240).astype(str)
    model = SurveyLogit().fit(X, y, w, strata=strata, psu=psu)
    expected = hand_design_cov(X, y, w, strata, psu, model.coef_)
    assert_allclose(model.cov_, expected, rtol=1e-9)
    assert model.n_strata_ == 3 and model.n_psu_ == 12 and model.df_ == 9


def test_single_psu_stratum_warns_and_centres_on_grand_mean():
    X, y, w, _ = simulate(300, seed=5)
    strata = np.repeat(["s1", "s2", "lonely"], 100)
    psu = np.concatenate([np.arange(100) % 5, np.arange(100) % 4, np.zeros(100, int)])
    with pytest.warns(RuntimeWarning, match="single PSU.*lonely"):
        model = SurveyLogit().fit(X, y, w, strata=strata, psu=psu)
    expected = hand_design_cov(X, y, w, strata, psu, model.coef_, single="centre")
    assert_allclose(model.cov_, expected, rtol=1e-9)
    with pytest.warns(RuntimeWarning, match="contributing nothing"):
        skip = SurveyLogit(single_psu="skip").fit(X, y, w, strata=strata, psu=psu)
    expected_skip = hand_design_cov(X, y, w, strata, psu, skip.coef_, single="skip")
    assert_allclose(skip.cov_, expected_skip, rtol=1e-9)
    assert not np.allclose(skip.cov_, model.cov_)
    assert model.single_psu_strata_ and np.isfinite(model.se_).all()


def test_recovers_known_coefficients_on_simulated_clustered_data():
    rng = np.random.default_rng(6)
    n, G = 60_000, 600
    psu = rng.integers(0, G, n)
    X = rng.normal(size=(n, 3)) + rng.normal(size=(G, 3))[psu]  # intra-cluster correlation
    y = (rng.random(n) < expit(TRUE_BETA[0] + X @ TRUE_BETA[1:])).astype(int)
    w = rng.uniform(0.5, 3.0, n)
    model = SurveyLogit().fit(X, y, w, psu=psu)
    assert np.all(np.abs(model.coef_ - TRUE_BETA) < 4 * model.se_)
    assert_allclose(model.coef_, TRUE_BETA, atol=0.05)


def test_design_se_tracks_sampling_variability():
    """Across repeated cluster samples, the design SE estimates the spread of the estimates."""
    G, m = 80, 25
    coefs, ses = [], []
    for rep in range(40):
        rng = np.random.default_rng(100 + rep)
        u = rng.normal(scale=0.8, size=G)
        psu = np.repeat(np.arange(G), m)
        x = rng.normal(size=(G * m, 1)) + rng.normal(size=(G, 1))[psu]
        y = (rng.random(G * m) < expit(-1 + 0.5 * x[:, 0] + u[psu])).astype(int)
        w = rng.uniform(1, 2, G * m)
        fit = SurveyLogit().fit(x, y, w, psu=psu)
        coefs.append(fit.coef_[1])
        ses.append(fit.se_[1])
    naive = SurveyLogit().fit(x, y, w, design=False).se_[1]
    ratio = np.mean(ses) / np.std(coefs, ddof=1)
    assert 0.7 < ratio < 1.35
    assert np.mean(ses) > 1.2 * naive  # clustering inflates the variance


def test_dataframe_features_names_and_prediction():
    X, y, w, _ = simulate(800, seed=7)
    df = pd.DataFrame(X, columns=["age", "male", "rural"])
    model = SurveyLogit().fit(df, y, w)
    assert model.names_ == ["intercept", "age", "male", "rural"]
    proba = model.predict_proba(df)
    assert proba.shape == (800, 2)
    assert_allclose(proba.sum(axis=1), 1.0)
    assert_allclose(proba[:, 1], expit(model.decision_function(df)))
    # Columns are matched by name, not position.
    assert_allclose(model.predict_proba(df[["rural", "age", "male"]]), proba)
    with pytest.raises(ModelError, match="missing for prediction: rural"):
        model.predict_proba(df[["age", "male"]])
    with pytest.raises(ModelError, match="expects 3"):
        model.predict_proba(X[:, :2])


def test_array_fitted_model_takes_columns_by_position():
    X, y, w, _ = simulate(500, seed=16)
    model = SurveyLogit().fit(X, y, w)
    df = pd.DataFrame(X, columns=["p", "q", "r"])
    assert_allclose(model.predict_proba(df), model.predict_proba(X))


def test_not_fitted_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="not fitted"):
        SurveyLogit().predict_proba(np.zeros((2, 3)))


def test_constructor_stores_params_and_validates_in_fit():
    model = SurveyLogit(max_iter=7, tol=1e-6, single_psu="nonsense")
    assert (model.max_iter, model.tol, model.single_psu) == (7, 1e-6, "nonsense")
    X, y, w, _ = simulate(200, seed=8)
    with pytest.raises(BadParameter, match="allowed: centre, skip"):
        model.fit(X, y, w)


def test_coef_table_and_domains():
    X, y, w, psu = simulate(3000, seed=9, n_psu=50)
    df = pd.DataFrame(X, columns=["age", "male", "rural"])
    model = SurveyLogit().fit(df, y, w, psu=psu)
    table = model.coef_table({"age": "demografía", "rural": "vivienda y servicios"})
    assert list(table.columns) == ["name", "estimate", "se", "z", "p_value", "ci_low",
                                   "ci_high", "odds_ratio", "domain"]
    assert table["domain"].tolist() == [None, "demografía", None, "vivienda y servicios"]
    assert_allclose(table["z"], model.coef_ / model.se_)
    assert_allclose(table["ci_high"] - table["estimate"], 1.959964 * model.se_, rtol=1e-6)
    assert_allclose(table["odds_ratio"], np.exp(model.coef_))
    from scipy import stats
    assert_allclose(table["p_value"], 2 * stats.norm.sf(np.abs(model.coef_ / model.se_)))


def test_to_dict_round_trip_is_exact_through_json():
    X, y, w, psu = simulate(1000, seed=10, n_psu=40)
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    model = SurveyLogit(tol=1e-9).fit(df, y, w, psu=psu)
    d = json.loads(json.dumps(model.to_dict()))
    back = SurveyLogit.from_dict(d)
    np.testing.assert_array_equal(back.coef_, model.coef_)
    np.testing.assert_array_equal(back.cov_, model.cov_)
    np.testing.assert_array_equal(back.se_, model.se_)
    assert back.names_ == model.names_ and back.tol == 1e-9
    assert (back.n_psu_, back.df_, back.n_iter_) == (model.n_psu_, model.df_, model.n_iter_)
    np.testing.assert_array_equal(back.predict_proba(df), model.predict_proba(df))
    with pytest.raises(ModelError, match="not a SurveyLogit"):
        SurveyLogit.from_dict({"class": "os.system"})


def test_model_error_is_an_input_error():
    assert issubclass(ModelError, InputError)


@pytest.mark.parametrize("case, match", [
    ("y_not_binary", "outcome must be 0/1, found 2"),
    ("y_nan", "outcome must be 0/1"),
    ("w_zero", "weights must be finite and > 0"),
    ("w_negative", "weights must be finite and > 0"),
    ("w_inf", "weights must be finite and > 0"),
    ("x_nan", "column 'b'.*missing or infinite covariate values in: b"),
    ("all_zero", "outcome is all 0"),
    ("all_one", "outcome is all 1"),
    ("too_few_rows", "2 records cannot identify 4 parameters"),
    ("collinear", "collinear columns: .*b.*c"),
    ("constant", "collinear columns: intercept, c"),
    ("zero_column", "all zero: c"),
    ("psu_missing", "psu has missing values"),
])
def test_impossible_input_raises_model_error(case, match):
    X, y, w, _ = simulate(300, seed=11)
    X = pd.DataFrame(X, columns=["a", "b", "c"])
    y = y.astype(float)
    psu = None
    if case == "y_not_binary":
        y[5] = 2
    elif case == "y_nan":
        y[5] = np.nan
    elif case == "w_zero":
        w[3] = 0
    elif case == "w_negative":
        w[3] = -1
    elif case == "w_inf":
        w[3] = np.inf
    elif case == "x_nan":
        X.loc[7, "b"] = np.nan
    elif case == "all_zero":
        y[:] = 0
    elif case == "all_one":
        y[:] = 1
    elif case == "too_few_rows":
        X, y, w = X.iloc[:2], y[:2], w[:2]
    elif case == "collinear":
        X["c"] = 2 * X["b"] - 1
    elif case == "constant":
        X["c"] = 3.0
    elif case == "zero_column":
        X["c"] = 0.0
    elif case == "psu_missing":
        psu = np.where(np.arange(300) == 9, None, "p1")
    with pytest.raises(ModelError, match=match):
        SurveyLogit().fit(X, y, w, psu=psu)


def test_complete_separation_names_the_covariate():
    rng = np.random.default_rng(12)
    n = 500
    X = pd.DataFrame({"noise": rng.normal(size=n), "age": rng.uniform(5, 17, n)})
    y = (X["age"] > 12).astype(int)
    with pytest.raises(ModelError, match="separation involving age"):
        SurveyLogit().fit(X, y, np.ones(n))


def test_quasi_complete_separation_names_the_covariate():
    rng = np.random.default_rng(13)
    n = 2000
    X = pd.DataFrame({"age": rng.uniform(5, 17, n), "agri": (rng.random(n) < 0.2) * 1.0})
    y = (rng.random(n) < expit(-2 + 0.1 * X["age"])).astype(int)
    y[X["agri"] == 1] = 1  # every record with agri=1 works: quasi-complete separation
    with pytest.raises(ModelError, match="separation involving agri"):
        SurveyLogit().fit(X, y, np.ones(n))


def test_strong_but_finite_effect_is_not_separation():
    rng = np.random.default_rng(14)
    n = 5000
    x = rng.normal(size=(n, 1))
    y = (rng.random(n) < expit(0.5 + 4.0 * x[:, 0])).astype(int)
    model = SurveyLogit().fit(x, y, np.ones(n))
    assert_allclose(model.coef_, [0.5, 4.0], atol=0.4)


def test_design_meat_tiny_example_by_hand():
    """Two strata, numbers small enough to check on paper (docs/METHOD.md §1).

    Stratum a: PSU totals 1 (0.5 + 0.5) and 3 -> mean 2, squares 1 + 1 = 2, x 2/1 -> 4.
    Stratum b: PSU totals 2, 4, 6 -> mean 4, squares 4 + 0 + 4 = 8, x 3/2 -> 12.
    Meat = 16. Adding a lone stratum c with total 10, centred on the grand mean of the six
    PSU totals (1 + 3 + 2 + 4 + 6 + 10) / 6 = 26/6 with factor 1, adds (10 - 26/6)^2.
    """
    u = np.array([0.5, 0.5, 3.0, 2.0, 4.0, 6.0])
    strata = np.array(["a", "a", "a", "b", "b", "b"])
    psu = np.array([1, 1, 2, 1, 2, 3])  # PSU "1" of a and of b are different PSUs
    meat, n_psu, n_strata = design_meat(u, strata=strata, psu=psu)
    assert meat.shape == (1, 1) and n_psu == 5 and n_strata == 2
    assert meat[0, 0] == pytest.approx(16.0, rel=1e-12)
    with pytest.warns(RuntimeWarning, match="single PSU"):
        meat, n_psu, n_strata = design_meat(np.append(u, 10.0), strata=np.append(strata, "c"),
                                            psu=np.append(psu, 1))
    assert (n_psu, n_strata) == (6, 3)
    assert meat[0, 0] == pytest.approx(16.0 + (10.0 - 26.0 / 6.0) ** 2, rel=1e-12)
