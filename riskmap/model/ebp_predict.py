"""Empirical best prediction (EBP) of municipal probabilities, its bootstrap MSE, benchmarking.

Target: ``P_m = sum_j v_j expit(x_j beta + u_m) / sum_j v_j`` over the census child records j
of municipality m (the same target as the synthetic estimator, which sets u_m = 0).

**EBP** (Molina & Rao 2010 for a binary outcome; Jiang & Lahiri 2006): ``E[P_m | survey]`` at
the fitted ``(beta, sigma_u)``.
- Sampled municipalities (with survey children): the expectation over u_m's conditional
  distribution given those children is taken with the adaptive Gauss–Hermite rule of the fit
  (:func:`riskmap.model.ebp.posterior_nodes`, centred and scaled at the mode of u_m's
  conditional density): ``PREDICT_NODES`` = 7 nodes and normalised weights per municipality,
  deterministic instead of Monte Carlo draws (no simulation noise; its error, below 1e-5 on
  a probability, is far below the bootstrap's).
- Other municipalities: u_m ~ N(0, sigma_u^2) integrated out with K non-adaptive
  Gauss–Hermite nodes (7): the point is the marginal mean, not ``expit(x beta)``.

**MSE** by the parametric bootstrap of González-Manteiga et al. (2008) as in R's emdi: for
b = 1..B, draw u*_m ~ N(0, sigma_u^2) for every municipality, the survey outcomes
y*_i ~ Bernoulli(expit(x_i beta + u*_m)) on the real survey design, the bootstrap truth
P*_m from the census records, refit the model on y* and predict P^*_m; then
``MSE_m = mean_b (P^*_m - P*_m)^2`` (with benchmarking applied inside every replicate when it
is on, so its effect is in the MSE). ``var_model`` holds that MSE. The census records are
themselves a sample, so the census-sample variance of the synthetic estimator (docs/METHOD.md
§2, with the EBP record probabilities) is added: ``se = sqrt(MSE + var_census)``. The 95 %
interval is ``expit(logit P ± z sqrt(MSE_logit + var_census / (P(1-P))^2))`` with
``MSE_logit`` the bootstrap mean squared error on the logit scale, so it stays in (0, 1).
Replicates use ``SeedSequence(seed).spawn(B)`` streams: the result does not depend on the
number of worker processes.

**Benchmarking** (optional, off by default): for each state whose direct survey estimate has a
CV <= 20 % (Taylor-linearised ratio variance over strata and PSUs), municipal probabilities are
multiplied by ``direct_s / (children-weighted mean of P_m in s)``, in the point estimate and
in every bootstrap replicate (with that replicate's direct estimate), so the MSE includes the
noise benchmarking imports. It buys coherence with the survey's state figures, not accuracy:
on the demo (B = 40) it raises the RMSE by about 8 % with survey children and 5 % without,
while the intervals keep their coverage (96 %).

**Assumptions** a reader should know: the bootstrap is model-based (it regenerates outcomes on
the same survey children and census records), so it measures the error of the EBP under the
model, not design effects beyond the scaled weights (refits use ``BOOT_NODES`` quadrature
nodes); municipalities are not selected with
known probabilities, so level-2 weights are 1 (informative selection of municipalities is not
corrected); σ_u is assumed the same in every state.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from .ebp import MixedLogit, posterior_nodes
from .logit import design_meat
from .score import Z95, _groups, census_columns

_CHUNK = 1 << 17
CV_MAX = 0.20
#: Nodes of the rules that average census probabilities over u_m (the fit uses its own K):
#: expit is smooth and the conditional law of u_m nearly normal, so 7 adaptive nodes give
#: E[expit(eta + u_m) | y] within 1e-5 (tests/test_ebp.py checks against brute force),
#: at half the cost of the census pass of every bootstrap replicate.
PREDICT_NODES = 7
#: Quadrature nodes of the bootstrap refits. On the demo survey (36,080 children, 963
#: municipalities) a 7-node fit differs from a 25-node one by 8e-6 relative in beta and
#: sigma_u, a thousandth of their standard errors, at half the cost of 15 nodes.
BOOT_NODES = 7


@dataclass
class _Inputs:
    """Arrays shared by the point prediction and every bootstrap replicate."""

    Xs: np.ndarray        # survey covariates (n_s, k)
    y: np.ndarray         # survey outcome
    ws: np.ndarray        # survey weights (raw)
    gs: np.ndarray        # survey group labels (str)
    gs_univ: np.ndarray   # index of each survey record's municipality in the universe
    state_s: np.ndarray   # state index of each survey record (-1: none)
    Xc: np.ndarray        # census covariates (n_c, k)
    gc: np.ndarray        # census municipality index (into codes; records outside dropped)
    v: np.ndarray         # census weights
    M: int                # municipalities reported
    U: int                # universe size (reported + survey-only municipalities)
    state_m: np.ndarray   # state index of each reported municipality
    eligible: np.ndarray  # states benchmarked (bool per state)
    n_nodes: int


def _state_direct(y, w, state, n_states, strata=None, psu=None, with_cv=True):
    """Direct state estimates ``sum w y / sum w`` and their linearised CVs."""
    W = np.bincount(state, weights=w, minlength=n_states)
    with np.errstate(invalid="ignore", divide="ignore"):
        R = np.bincount(state, weights=w * y, minlength=n_states) / W
    if not with_cv:
        return R, None
    z = np.zeros((len(y), n_states))
    rows = np.arange(len(y))
    z[rows, state] = w * (y - R[state]) / W[state]
    meat, _, _ = design_meat(z, strata, psu)
    with np.errstate(invalid="ignore", divide="ignore"):
        cv = np.sqrt(np.clip(np.diag(meat), 0.0, None)) / R
    return R, cv


def _benchmark(P, children, state_m, eligible, direct):
    """Ratio factors per municipality (1 outside eligible states)."""
    n_states = len(eligible)
    ok = np.isfinite(P) & (state_m >= 0)
    sm = np.where(ok, state_m, 0)
    num = np.bincount(sm, weights=np.where(ok, children * P, 0.0), minlength=n_states)
    den = np.bincount(sm, weights=np.where(ok, children, 0.0), minlength=n_states)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(eligible & (num > 0), direct * den / num, 1.0)
    f = np.where(np.isfinite(f), f, 1.0)
    return np.where(state_m >= 0, f[np.maximum(state_m, 0)], 1.0)


def _rule(model: MixedLogit, inp: _Inputs, y):
    """Nodes and weights (U, K) of every municipality's u given the survey ``y``."""
    z, w = np.polynomial.hermite.hermgauss(PREDICT_NODES)
    nodes = np.tile(np.sqrt(2.0) * model.sigma_u_ * z, (inp.U, 1))
    weights = np.tile(w / np.sqrt(np.pi), (inp.U, 1))
    labels, Un, post, _ = posterior_nodes(model, inp.Xs, y, inp.gs, inp.ws,
                                          n_nodes=PREDICT_NODES)
    first = pd.Series(inp.gs_univ, index=inp.gs).groupby(level=0).first()
    idx = first.reindex(labels).to_numpy()
    nodes[idx], weights[idx] = Un, post
    return nodes, weights


def _census_mean(eta, gc, v, nodes, weights, M, keep_records=False):
    """Children-weighted municipal means of E[expit(eta_j + u_m)] under each rule."""
    sum_v = np.bincount(gc, weights=v, minlength=M)
    sum_vp = np.zeros(M)
    pbar = np.empty(len(eta)) if keep_records else None
    for a in range(0, len(eta), _CHUNK):
        b = min(a + _CHUNK, len(eta))
        g = gc[a:b]
        pr = np.einsum("ik,ik->i", weights[g], expit(eta[a:b, None] + nodes[g]))
        sum_vp += np.bincount(g, weights=v[a:b] * pr, minlength=M)
        if keep_records:
            pbar[a:b] = pr
    with np.errstate(invalid="ignore", divide="ignore"):
        return sum_vp / sum_v, pbar


# -- the bootstrap (module-level state so worker processes receive the arrays once) ----------
_STATE: dict = {}


def _init(payload):
    _STATE.clear()
    _STATE.update(payload)


def _replicates(seeds):
    """Errors of the EBP (on the probability and logit scales) for the given replicates."""
    inp: _Inputs = _STATE["inp"]
    model: MixedLogit = _STATE["model"]
    beta, sigma = model.coef_, model.sigma_u_
    eta_s = inp.Xs @ beta[1:] + beta[0]
    eta_c = inp.Xc @ beta[1:] + beta[0]
    children = np.bincount(inp.gc, weights=inp.v, minlength=inp.M)
    out_p, out_l, sig = [], [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        u = rng.normal(0.0, sigma, inp.U)
        ystar = (rng.random(len(eta_s)) < expit(eta_s + u[inp.gs_univ])).astype(np.float64)
        true = _census_mean(eta_c, inp.gc, inp.v, u[:, None], np.ones((inp.U, 1)), inp.M)[0]
        if ystar.min() == ystar.max():
            continue
        refit = MixedLogit(n_nodes=min(inp.n_nodes, BOOT_NODES)).fit(
            inp.Xs, ystar, inp.gs, inp.ws, covariance=False,
            start=np.r_[beta, np.log(max(sigma, 1e-3))])
        nodes, weights = _rule(refit, inp, ystar)
        eta_b = inp.Xc @ refit.coef_[1:] + refit.coef_[0]
        est = _census_mean(eta_b, inp.gc, inp.v, nodes, weights, inp.M)[0]
        if _STATE["benchmark"]:
            direct, _ = _state_direct(ystar, inp.ws, np.maximum(inp.state_s, 0),
                                      len(inp.eligible), with_cv=False)
            est = np.clip(est * _benchmark(est, children, inp.state_m, inp.eligible, direct),
                          1e-9, 1 - 1e-9)
        out_p.append(est - true)
        with np.errstate(invalid="ignore", divide="ignore"):
            out_l.append(logit(est) - logit(true))
        sig.append(refit.sigma_u_)
    return np.array(out_p).reshape(-1, inp.M), np.array(out_l).reshape(-1, inp.M), sig


def _bootstrap(model, inp, B, seed, n_jobs, benchmark, say):
    seeds = np.random.SeedSequence(seed).spawn(B)
    payload = {"inp": inp, "model": model, "benchmark": benchmark}
    chunks = [seeds[i::max(1, 4 * n_jobs)] for i in range(max(1, 4 * n_jobs))]
    chunks = [c for c in chunks if c]
    results, done = [], 0
    if n_jobs <= 1:
        _init(payload)
        for chunk in chunks:
            results.append(_replicates(chunk))
            done += len(chunk)
            say(f"bootstrap {done}/{B}")
    else:
        with ProcessPoolExecutor(max_workers=n_jobs, initializer=_init,
                                 initargs=(payload,)) as pool:
            futures = {pool.submit(_replicates, c): len(c) for c in chunks}
            for fut in as_completed(futures):
                results.append(fut.result())
                done += futures[fut]
                say(f"bootstrap {done}/{B}")
    err_p = np.vstack([r[0] for r in results])
    err_l = np.vstack([r[1] for r in results])
    sigmas = np.concatenate([np.asarray(r[2], float) for r in results])
    return err_p, err_l, sigmas


def default_jobs() -> int:
    """Worker processes for the bootstrap: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def ebp_municipalities(survey: pd.DataFrame, census: pd.DataFrame, covariates, codes,
                       states=None, *, n_boot=200, seed=20240601, n_jobs=None,
                       benchmark=False, census_sample=True, n_nodes=15, z=Z95, progress=None):
    """Fit the mixed model and return EBP municipal estimates with bootstrap uncertainty.

    Parameters
    ----------
    survey : DataFrame
        ``cvegeo, weight, strata, psu, child_labour`` and the covariates.
    census : DataFrame
        ``cvegeo, weight`` and the covariates.
    covariates : sequence of str
    codes : sequence of str
        Municipalities to report, in order (those without census records get NaN).
    states : sequence of str, optional
        State code of each of ``codes`` (for benchmarking); default the first 2 characters.
    n_boot : int, default 200
        Bootstrap replicates B (>= 1; 200 or more for published editions).
    seed : int
    n_jobs : int, optional
        Worker processes (default: the available cores).
    benchmark : bool, default False
        Ratio-benchmark to reliable (CV <= 20 %) direct state estimates.
    census_sample : bool, default True
        Add the census-sample variance (False for a full count).
    n_nodes : int, default 15
        Quadrature nodes per municipality.
    progress : callable, optional

    Returns
    -------
    (DataFrame, MixedLogit, dict)
        Rows indexed by ``cvegeo`` with ``children, probability, var_model (bootstrap MSE),
        var_census, se, ci_low, ci_high, n_records, expected_child_labour, sampled,
        n_survey, direct``; the fitted model; a summary for the model card.
    """
    say = progress or (lambda m: None)
    covariates = list(covariates)
    codes = [str(c) for c in codes]
    n_jobs = default_jobs() if n_jobs is None else max(1, int(n_jobs))
    Xs = survey[covariates].to_numpy(dtype=np.float64)
    y = survey["child_labour"].to_numpy(dtype=np.float64)
    ws = survey["weight"].to_numpy(dtype=np.float64)
    gs = survey["cvegeo"].astype(str).to_numpy()

    say(f"fitting the mixed model ({n_nodes}-node adaptive quadrature) on {len(y):,} "
        f"survey records in {len(pd.unique(gs)):,} municipalities")
    model = MixedLogit(n_nodes=n_nodes).fit(survey[covariates], y, gs, ws)

    cols, v = census_columns(census, covariates)
    gc, index = _groups(census, codes)
    keep = gc >= 0
    Xc = np.column_stack(cols)[keep] if cols else np.zeros((int(keep.sum()), 0))
    gc, v = gc[keep], v[keep]
    M = len(index)
    pos = {c: i for i, c in enumerate(index)}
    extra = sorted(set(gs) - set(pos))
    universe = {**pos, **{c: M + i for i, c in enumerate(extra)}}
    gs_univ = np.array([universe[c] for c in gs], dtype=np.int64)
    state_codes = (pd.Series(codes).str[:2] if states is None
                   else pd.Series([str(s) for s in states]))
    state_index = pd.Index(sorted(set(state_codes) | set(pd.Series(gs).str[:2])))
    state_m = state_index.get_indexer(state_codes)
    state_s = state_index.get_indexer(pd.Series(gs).str[:2])
    direct, cv = _state_direct(y, ws, state_s, len(state_index),
                               survey["strata"].astype(str).to_numpy(),
                               (survey["strata"].astype(str) + "\x1f"
                                + survey["psu"].astype(str)).to_numpy())
    eligible = np.isfinite(cv) & (cv <= CV_MAX) & (direct > 0)
    inp = _Inputs(Xs, y, ws, gs, gs_univ, state_s, Xc, gc, v, M, M + len(extra), state_m,
                  eligible, n_nodes)

    say(f"EBP for {M:,} municipalities")
    nodes, weights = _rule(model, inp, y)
    eta_c = Xc @ model.coef_[1:] + model.coef_[0]
    P, pbar = _census_mean(eta_c, gc, v, nodes, weights, M, keep_records=True)
    children = np.bincount(gc, weights=v, minlength=M)
    count = np.bincount(gc, minlength=M)
    factor = np.ones(M)
    if benchmark:
        factor = _benchmark(P, children, state_m, eligible, direct)
        P = np.clip(P * factor, 1e-9, 1 - 1e-9)
        pbar = pbar * factor[gc]
    with np.errstate(invalid="ignore", divide="ignore"):
        P = np.where(count > 0, P, np.nan)
        dev = v * (pbar - np.nan_to_num(P)[gc])
        var_census = (np.bincount(gc, weights=dev * dev, minlength=M) / children**2
                      if census_sample else np.zeros(M))
    var_census[count == 0] = np.nan

    say(f"parametric bootstrap, B = {n_boot}, on {n_jobs} process(es)")
    err_p, err_l, sigmas = _bootstrap(model, inp, n_boot, seed, n_jobs, benchmark, say)
    mse = np.mean(err_p**2, axis=0)
    with warnings.catch_warnings():  # municipalities without census records: all NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        mse_logit = np.nanmean(err_l**2, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(mse + var_census)
        half = z * np.sqrt(mse_logit + var_census / (P * (1 - P)) ** 2)
        ci_low, ci_high = expit(logit(P) - half), expit(logit(P) + half)
    mse[count == 0] = np.nan

    n_survey = np.zeros(M, dtype=np.int64)
    sum_w = np.zeros(M)
    sum_wy = np.zeros(M)
    inside = gs_univ < M
    np.add.at(n_survey, gs_univ[inside], 1)
    np.add.at(sum_w, gs_univ[inside], ws[inside])
    np.add.at(sum_wy, gs_univ[inside], ws[inside] * y[inside])
    with np.errstate(invalid="ignore", divide="ignore"):
        direct_m = np.where(n_survey > 0, sum_wy / sum_w, np.nan)
    rows = pd.DataFrame({
        "children": children, "probability": P, "var_model": mse, "var_census": var_census,
        "se": se, "ci_low": ci_low, "ci_high": ci_high, "n_records": count.astype(np.int64),
        "expected_child_labour": P * children, "sampled": n_survey > 0,
        "n_survey": n_survey, "direct": direct_m}, index=index)
    summary = _summary(model, inp, sigmas, n_boot, seed, n_jobs, benchmark, state_index,
                       direct, cv, eligible, factor, state_m, census, covariates)
    return rows, model, summary


def _summary(model, inp, sigmas, n_boot, seed, n_jobs, benchmark, state_index, direct, cv,
             eligible, factor, state_m, census, covariates) -> dict:
    lo, hi = model.sigma_interval()
    log_s = np.log(model.sigma_u_)
    q = np.quantile(np.log(sigmas), [0.025, 0.975]) if len(sigmas) else [np.nan, np.nan]
    # Between-municipality variance on the logit scale: covariates (spread of municipal mean
    # linear predictors over the census) against the area effect sigma_u^2.
    eta_c = inp.Xc @ model.coef_[1:]
    sums = np.bincount(inp.gc, weights=inp.v, minlength=inp.M)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_eta = np.bincount(inp.gc, weights=inp.v * eta_c, minlength=inp.M) / sums
    var_x = float(np.nanvar(mean_eta))
    states = []
    for i, s in enumerate(state_index):
        in_s = state_m == i
        states.append({"cve_ent": str(s), "direct": direct[i], "cv": cv[i],
                       "benchmarked": bool(benchmark and eligible[i]),
                       "factor": float(factor[in_s][0]) if in_s.any() else None})
    return {
        "estimator": "ebp",
        "model": "logistic mixed model, municipal random intercept",
        "fit": f"maximum pseudo-likelihood, {model.n_nodes}-node adaptive Gauss-Hermite "
               "quadrature; survey weights scaled within municipality to sum to its number "
               "of survey children (size scaling)",
        "sigma_u": model.sigma_u_,
        "sigma_u_ci": [lo, hi],
        "sigma_u_ci_method": "Wald on log sigma_u, " + (
            "sandwich covariance (municipalities as clusters)" if model.weighted_ else
            "observed information"),
        "sigma_u_ci_bootstrap": [float(np.exp(2 * log_s - q[1])), float(np.exp(2 * log_s - q[0]))],
        "sigma_u_at_boundary": model.at_boundary_,
        "fixed_effects": model.coef_table().to_dict("records"),
        "loglik": model.loglik_, "converged": model.converged_,
        "n_groups_survey": model.n_groups_,
        "n_sampled": int(len(np.unique(inp.gs_univ[inp.gs_univ < inp.M]))),
        "n_municipalities": int(inp.M),
        "variance_between": {"covariates": var_x, "area_effect": model.sigma_u_**2,
                             "share_covariates": var_x / (var_x + model.sigma_u_**2),
                             "definition": "logit scale: variance over municipalities of the "
                             "children-weighted census mean of x beta (covariates), against "
                             "sigma_u^2 (area effect); share = covariates / (covariates + "
                             "sigma_u^2)"},
        "bootstrap": {"B": int(n_boot), "seed": int(seed), "replicates_used": int(len(sigmas)),
                      "processes": int(n_jobs), "kind": "parametric (Gonzalez-Manteiga et al. "
                      "2008), MSE of the final (benchmarked) estimator"},
        "benchmark": {"applied": bool(benchmark), "cv_max": CV_MAX,
                      "n_states": int(np.sum(eligible)) if benchmark else 0, "states": states},
        "quadrature_nodes": int(model.n_nodes),
    }
