"""The mixed model behind the EBP estimator, against independent oracles.

- R's lme4 ``glmer(y ~ x1 + x2 + (1|m), family = binomial, nAGQ = 25)`` on unweighted data
  (run on the fly; skipped when Rscript or lme4 is absent);
- a brute-force quadrature of the marginal log-likelihood (a fine fixed grid per municipality,
  a Python loop) against the vectorised adaptive rule;
- finite differences against the analytic gradient and Hessian;
- brute-force conditional and marginal expectations against the EBP quadrature rules.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from riskmap.model.ebp import (
    MixedLogit,
    _Data,
    gauss_hermite,
    marginal_loglik,
    posterior_nodes,
)
from riskmap.model.ebp_predict import PREDICT_NODES, _census_mean, ebp_municipalities


def _simulate(seed=1, G=300, sigma=0.5, beta=(-1.0, 0.8, -0.5), lo=5, hi=40):
    rng = np.random.default_rng(seed)
    n_m = rng.integers(lo, hi, G)
    g = np.repeat(np.arange(G), n_m)
    x = rng.normal(size=(len(g), 2))
    u = rng.normal(0.0, sigma, G)
    eta = beta[0] + x @ np.asarray(beta[1:]) + u[g]
    y = (rng.random(len(g)) < expit(eta)).astype(int)
    return x, y, g


@pytest.fixture(scope="module")
def sim():
    return _simulate()


@pytest.fixture(scope="module")
def fitted(sim):
    x, y, g = sim
    return MixedLogit(n_nodes=25).fit(x, y, g)


def _lme4(tmp_path, x, y, g):
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript not installed (apt-get install r-cran-lme4)")
    probe = subprocess.run(["Rscript", "-e", "suppressMessages(library(lme4))"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("R package lme4 not installed (apt-get install r-cran-lme4)")
    data = tmp_path / "sim.csv"
    pd.DataFrame({"y": y, "x1": x[:, 0], "x2": x[:, 1], "m": g}).to_csv(data, index=False)
    script = (
        "suppressMessages(library(lme4))\n"
        f"d <- read.csv('{data.as_posix()}')\n"
        "f <- glmer(y ~ x1 + x2 + (1|m), data = d, family = binomial, nAGQ = 25,\n"
        "           control = glmerControl(optimizer = 'bobyqa',\n"
        "                                  optCtrl = list(maxfun = 1e5)))\n"
        "cat(sprintf('%.12f', c(fixef(f), sqrt(VarCorr(f)$m[1]), logLik(f))), sep = '\\n')\n")
    out = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return np.array([float(v) for v in out.stdout.split()])


def test_matches_lme4_glmer_nagq25(tmp_path, sim, fitted):
    x, y, g = sim
    ref = _lme4(tmp_path, x, y, g)
    ours = np.r_[fitted.coef_, fitted.sigma_u_]
    print("lme4", ref[:4], "riskmap", ours)
    np.testing.assert_allclose(ours, ref[:4], rtol=1e-3)
    np.testing.assert_allclose(fitted.loglik_, ref[4], rtol=1e-6)


def test_matches_lme4_on_small_clusters_and_weak_effect(tmp_path):
    """A harder case: clusters of 2-6 children and sigma_u = 0.3 (a flat likelihood)."""
    x, y, g = _simulate(seed=7, G=400, sigma=0.3, lo=2, hi=7)
    ref = _lme4(tmp_path, x, y, g)
    model = MixedLogit(n_nodes=25).fit(x, y, g)
    np.testing.assert_allclose(np.r_[model.coef_, model.sigma_u_], ref[:4], rtol=1e-3)


def _brute_loglik(theta, x, y, g, w=None, grid=4001):
    """sum_m log integral prod_i p_i^y (1-p_i)^(1-y) phi(u) du on a fixed grid (trapezoid)."""
    beta, sigma = theta[:-1], np.exp(theta[-1])
    w = np.ones(len(y)) if w is None else w
    u = np.linspace(-10 * sigma - 6, 10 * sigma + 6, grid)
    log_prior = -0.5 * (u / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)
    total = 0.0
    for m in np.unique(g):
        rows = g == m
        eta = beta[0] + x[rows] @ beta[1:]
        E = eta[:, None] + u[None, :]
        f = (w[rows, None] * (y[rows, None] * E - np.logaddexp(0, E))).sum(axis=0) + log_prior
        top = f.max()
        total += top + np.log(np.trapezoid(np.exp(f - top), u))
    return total


@pytest.mark.parametrize("theta", [np.array([-1.0, 0.8, -0.5, np.log(0.5)]),
                                   np.array([-0.3, 0.2, 0.1, np.log(1.5)]),
                                   np.array([-2.0, 1.5, -1.0, np.log(0.05)])])
def test_adaptive_quadrature_matches_brute_force(sim, theta):
    x, y, g = sim
    rows = g < 60  # a subset keeps the brute-force loop quick
    x, y, g = x[rows], y[rows], g[rows]
    d = _Data(np.column_stack([np.ones(len(y)), x]), y.astype(float), np.ones(len(y)), g,
              int(g.max()) + 1)
    z, logw = gauss_hermite(15)
    ours = marginal_loglik(theta, d, z, logw)[0]
    np.testing.assert_allclose(ours, _brute_loglik(theta, x, y, g), rtol=1e-8)


def test_gradient_and_hessian_match_finite_differences(sim):
    x, y, g = sim
    rng = np.random.default_rng(3)
    w = rng.lognormal(0, 0.5, len(y))
    d = _Data(np.column_stack([np.ones(len(y)), x]), y.astype(float), w, g, int(g.max()) + 1)
    z, logw = gauss_hermite(15)
    theta = np.array([-0.8, 0.6, -0.3, np.log(0.7)])
    _, grad, H, S = marginal_loglik(theta, d, z, logw, order=2)
    h = 1e-5
    num_g = np.empty(4)
    num_H = np.empty((4, 4))
    for j in range(4):
        e = np.zeros(4)
        e[j] = h
        num_g[j] = (marginal_loglik(theta + e, d, z, logw)[0]
                    - marginal_loglik(theta - e, d, z, logw)[0]) / (2 * h)
        num_H[:, j] = (marginal_loglik(theta + e, d, z, logw)[1]
                       - marginal_loglik(theta - e, d, z, logw)[1]) / (2 * h)
    np.testing.assert_allclose(grad, num_g, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(H, num_H, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(S.sum(axis=0), grad, rtol=1e-10, atol=1e-8)


def test_weights_are_scaled_within_municipality(sim):
    """Size scaling: multiplying one municipality's weights by a constant changes nothing,
    and the scaled weights of a municipality add up to its number of children."""
    x, y, g = sim
    rng = np.random.default_rng(5)
    w = rng.lognormal(0, 0.3, len(y))
    a = MixedLogit().fit(x, y, g, w)
    w2 = w * np.where(g % 3 == 0, 7.0, 1.0)
    b = MixedLogit().fit(x, y, g, w2)
    np.testing.assert_allclose(np.r_[a.coef_, a.sigma_u_], np.r_[b.coef_, b.sigma_u_],
                               rtol=1e-8)
    d = _Data(np.ones((len(y), 1)), y.astype(float), w2, g, int(g.max()) + 1)
    np.testing.assert_allclose(d.gsum(d.w), np.bincount(g), rtol=1e-12)
    assert a.cov_type_ == "sandwich" and np.isfinite(a.cov_).all()


def test_sigma_and_coefficients_recovered_with_honest_intervals():
    """Over 20 simulated data sets, the Wald interval of sigma_u covers the truth often."""
    hits = 0
    for seed in range(20):
        x, y, g = _simulate(seed=100 + seed, G=150, sigma=0.5)
        m = MixedLogit(n_nodes=9).fit(x, y, g)
        lo, hi = m.sigma_interval()
        hits += lo <= 0.5 <= hi
    assert hits >= 16  # 95 % nominal; P(hits < 16 | p = 0.95) < 0.02


def test_serialises_to_json_and_back(fitted):
    import json

    again = MixedLogit.from_dict(json.loads(json.dumps(fitted.to_dict())))
    np.testing.assert_array_equal(again.coef_, fitted.coef_)
    np.testing.assert_array_equal(again.cov_, fitted.cov_)
    assert again.sigma_u_ == fitted.sigma_u_ and again.n_nodes == 25
    assert list(again.groups_) == list(fitted.groups_)
    assert fitted.n_nodes == 25 and fitted.max_iter == 100  # parameters kept as given


@pytest.mark.parametrize("nodes,rtol", [(None, 1e-7), (7, 1e-6)])
def test_posterior_rule_matches_brute_force_conditional_mean(sim, fitted, nodes, rtol):
    """The rule used for prediction (7 nodes) and the fit's own (25) against a fine grid."""
    x, y, g = sim
    labels, U, post, n_m = posterior_nodes(fitted, x, y, g, n_nodes=nodes)
    beta, sigma = fitted.coef_, fitted.sigma_u_
    grid = np.linspace(-8, 8, 8001)
    for m in (0, 17, 120):
        rows = g == m
        eta = beta[0] + x[rows] @ beta[1:]
        E = eta[:, None] + grid[None, :]
        f = (y[rows, None] * E - np.logaddexp(0, E)).sum(axis=0) - 0.5 * (grid / sigma) ** 2
        dens = np.exp(f - f.max())
        target = expit(0.3 + grid)  # a census record's probability given u
        brute = np.trapezoid(dens * target, grid) / np.trapezoid(dens, grid)
        i = list(labels).index(str(m))
        assert n_m[i] == rows.sum()
        np.testing.assert_allclose(np.sum(post[i] * expit(0.3 + U[i])), brute, rtol=rtol)


def test_non_sampled_point_is_the_marginal_mean():
    """u ~ N(0, sigma^2) integrated out: E[expit(eta + u)], not expit(eta)."""
    sigma, eta = 0.8, np.array([-2.0, 0.5])
    z, w = np.polynomial.hermite.hermgauss(PREDICT_NODES)
    nodes = np.tile(np.sqrt(2) * sigma * z, (2, 1))
    weights = np.tile(w / np.sqrt(np.pi), (2, 1))
    got, _ = _census_mean(eta, np.array([0, 1]), np.ones(2), nodes, weights, 2)
    grid = np.linspace(-10, 10, 20001)
    dens = np.exp(-0.5 * (grid / sigma) ** 2)
    brute = [np.trapezoid(dens * expit(e + grid), grid) / np.trapezoid(dens, grid) for e in eta]
    np.testing.assert_allclose(got, brute, rtol=0, atol=1e-5)  # 7 nodes: ~1e-6 at sigma 0.8
    assert abs(got[0] - expit(eta[0])) > 0.01


def _frames(seed=11, G=80, sigma=0.5):
    rng = np.random.default_rng(seed)
    codes = [f"{1 + i // 40:02d}{i % 40 + 1:03d}" for i in range(G)]
    u = rng.normal(0, sigma, G)
    n_c = rng.integers(20, 60, G)
    gc = np.repeat(np.arange(G), n_c)
    census = pd.DataFrame({"cvegeo": np.array(codes)[gc], "weight": rng.uniform(5, 15, len(gc)),
                           "x": rng.normal(size=len(gc))})
    sampled = rng.random(G) < 0.6
    gs = np.repeat(np.flatnonzero(sampled), 25)
    xs = rng.normal(size=len(gs))
    y = (rng.random(len(gs)) < expit(-1.0 + 0.7 * xs + u[gs])).astype(int)
    survey = pd.DataFrame({"cvegeo": np.array(codes)[gs], "weight": rng.uniform(1, 3, len(gs)),
                           "strata": np.array(codes)[gs], "psu": np.arange(len(gs)) // 5,
                           "child_labour": y, "x": xs})
    truth = pd.Series(np.bincount(gc, weights=census["weight"] * expit(-1.0 + 0.7 * census["x"]
                                                                        + u[gc]))
                      / np.bincount(gc, weights=census["weight"]), index=codes)
    return survey, census, codes, truth


def test_ebp_output_columns_and_reproducible_bootstrap():
    survey, census, codes, _ = _frames()
    a, _, summary = ebp_municipalities(survey, census, ["x"], codes + ["99999"], n_boot=12,
                                           seed=3, n_jobs=1)
    b, _, _ = ebp_municipalities(survey, census, ["x"], codes + ["99999"], n_boot=12, seed=3,
                                 n_jobs=2)
    pd.testing.assert_frame_equal(a, b)  # replicate streams do not depend on the workers
    for col in ("probability", "ci_low", "ci_high", "se", "children", "expected_child_labour",
                "n_records", "var_model", "var_census", "sampled", "n_survey"):
        assert col in a.columns
    assert a.loc["99999", "n_records"] == 0 and np.isnan(a.loc["99999", "probability"])
    known = a.drop(index="99999")
    assert (known["ci_low"] < known["probability"]).all()
    assert (known["probability"] < known["ci_high"]).all()
    assert known["sampled"].sum() == survey["cvegeo"].nunique()
    # without survey children the interval carries sigma_u^2: wider than the sampled ones
    width = known["ci_high"] - known["ci_low"]
    assert width[~known["sampled"]].median() > width[known["sampled"]].median()
    assert summary["bootstrap"]["B"] == 12 and summary["n_sampled"] == known["sampled"].sum()


def test_benchmarking_matches_reliable_state_estimates():
    survey, census, codes, _ = _frames(G=80)
    rows, _, summary = ebp_municipalities(survey, census, ["x"], codes, n_boot=4, n_jobs=1,
                                          benchmark=True)
    for st in summary["benchmark"]["states"]:
        in_state = rows.index.str[:2] == st["cve_ent"]
        mean = np.average(rows.loc[in_state, "probability"],
                          weights=rows.loc[in_state, "children"])
        if st["benchmarked"]:
            assert st["cv"] <= 0.2
            np.testing.assert_allclose(mean, st["direct"], rtol=1e-9)
    assert summary["benchmark"]["n_states"] >= 1


def test_no_area_effect_gives_a_small_sigma_and_the_single_level_fit():
    from riskmap.model.logit import SurveyLogit

    x, y, g = _simulate(seed=21, G=200, sigma=0.0)
    mixed = MixedLogit().fit(x, y, g)
    single = SurveyLogit().fit(x, y, np.ones(len(y)), design=False)
    assert mixed.sigma_u_ < 0.2 and mixed.converged_
    np.testing.assert_allclose(mixed.coef_, single.coef_, atol=0.03)


def test_full_count_census_and_survey_municipalities_outside_the_codes():
    survey, census, codes, _ = _frames(seed=4)
    reported = codes[:60]  # survey children of the other 20 still enter the fit
    rows, model, summary = ebp_municipalities(survey, census[census["cvegeo"].isin(reported)],
                                              ["x"], reported, n_boot=4, n_jobs=1,
                                              census_sample=False)
    assert list(rows.index) == reported
    assert model.n_groups_ == survey["cvegeo"].nunique() > summary["n_sampled"]
    assert (rows["var_census"] == 0).all()
    np.testing.assert_allclose(rows["se"] ** 2, rows["var_model"], rtol=1e-12)


def test_bad_input_is_a_model_error():
    from riskmap.errors import ModelError

    x, y, g = _simulate(seed=2, G=20)
    with pytest.raises(ModelError, match="0/1"):
        MixedLogit().fit(x, y * 2, g)
    with pytest.raises(ModelError, match="weights"):
        MixedLogit().fit(x, y, g, sample_weight=-np.ones(len(y)))
    with pytest.raises(ModelError, match="nothing to model"):
        MixedLogit().fit(x, np.zeros(len(y)), g)
    with pytest.raises(ModelError, match="n_nodes"):
        MixedLogit(n_nodes=0).fit(x, y, g)
