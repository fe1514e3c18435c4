"""Benchmark: SurveyLogit fit against statsmodels GLM, municipal scoring.

Run with ``python bench/bench_fit_score.py [--survey 500000] [--census 4000000]``. Prints the
fit times on the same simulated survey (and their ratio), then the scoring throughput and peak
memory on simulated census records (tracemalloc traces numpy's allocations), against a naive
per-municipality loop (pandas groupby, the textbook formulas of docs/METHOD.md §2) on the same
records, with the largest difference between the two results.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd
from scipy.special import expit

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))

from riskmap.model.logit import SurveyLogit  # noqa: E402
from riskmap.model.score import score_municipalities  # noqa: E402

COVARIATES = ["age", "male", "attends_school", "indigenous_language", "rural",
              "head_schooling_years", "head_agriculture", "head_social_security",
              "household_size", "dirt_floor", "x_extra"]
BETA = np.array([-3.0, 0.15, 0.5, -1.2, 0.3, 0.4, -0.05, 0.8, -0.4, 0.05, 0.3, 0.1])


def simulate(n, rng):
    X = np.column_stack([
        rng.integers(5, 18, n), rng.integers(0, 2, n), rng.random(n) < 0.9,
        rng.random(n) < 0.1, rng.random(n) < 0.25, rng.integers(0, 18, n),
        rng.random(n) < 0.15, rng.random(n) < 0.4, rng.integers(2, 12, n),
        rng.random(n) < 0.05, rng.normal(size=n),
    ]).astype(np.float64)
    return pd.DataFrame(X, columns=COVARIATES)


def bench_fit(n, rng):
    try:
        import statsmodels.api as sm
    except ImportError:
        raise SystemExit("bench_fit_score: the baseline needs statsmodels; install the test "
                         "extras: pip install -e '.[test]'") from None

    X = simulate(n, rng)
    y = (rng.random(n) < expit(BETA[0] + X.to_numpy() @ BETA[1:])).astype(np.int64)
    w = rng.uniform(20, 400, n)
    strata = rng.integers(0, 300, n)
    psu = rng.integers(0, 20, n)
    start = time.perf_counter()
    model = SurveyLogit().fit(X, y, w, strata=strata, psu=psu)
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sm.GLM(y, sm.add_constant(X.to_numpy()), family=sm.families.Binomial(),
                     var_weights=w).fit(tol=1e-10)
    t_sm = time.perf_counter() - start
    diff = float(np.max(np.abs(ref.params - model.coef_)))
    print(f"fit {n:,} x {X.shape[1]}: SurveyLogit {t_ours:.2f} s incl. design covariance "
          f"({model.n_iter_} iterations, {model.n_psu_} PSUs in {model.n_strata_} strata); "
          f"statsmodels GLM {t_sm:.2f} s (point estimates only); ratio {t_sm / t_ours:.1f}x; "
          f"max |coef diff| {diff:.1e}")
    return model


def bench_score(model, n, rng, n_mun=2469):
    census = simulate(n, rng)
    codes = np.array([f"{1 + i % 32:02d}{1 + i // 32:03d}" for i in range(n_mun)])
    census.insert(0, "cvegeo", codes[rng.integers(0, n_mun, n)])
    census.insert(1, "weight", rng.uniform(5, 30, n))
    tracemalloc.start()
    start = time.perf_counter()
    scores = score_municipalities(model, census, COVARIATES)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"score {n:,} census records into {len(scores):,} municipalities: {elapsed:.2f} s, "
          f"{n / elapsed:,.0f} records/s; peak traced memory during scoring "
          f"{peak / 2**20:,.0f} MiB; process max RSS {maxrss:,.0f} MiB "
          f"(includes the {census.memory_usage(deep=True).sum() / 2**20:,.0f} MiB input)")
    start = time.perf_counter()
    naive = naive_scores(model, census)
    t_naive = time.perf_counter() - start
    diff = max(float(np.max(np.abs(naive[c] - scores.loc[naive.index, c])))
               for c in ("probability", "var_model", "var_census"))
    print(f"naive per-municipality groupby scoring: {t_naive:.2f} s; ratio "
          f"{t_naive / elapsed:.1f}x; max |difference| {diff:.1e}")


def naive_scores(model, census):
    """docs/METHOD.md §2 written per municipality with a groupby: the baseline."""
    beta, V = np.asarray(model.coef_), np.asarray(model.cov_)

    def one(df):
        X = np.column_stack([np.ones(len(df)), df[COVARIATES].to_numpy()])
        v = df["weight"].to_numpy()
        p = expit(X @ beta)
        P = np.sum(v * p) / np.sum(v)
        g = (v * p * (1 - p)) @ X / np.sum(v)
        return pd.Series({"probability": P, "var_model": g @ V @ g,
                          "var_census": np.sum(v**2 * (p - P) ** 2) / np.sum(v) ** 2})

    return census.groupby("cvegeo").apply(one, include_groups=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--survey", type=int, default=500_000)
    parser.add_argument("--census", type=int, default=4_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    model = bench_fit(args.survey, rng)
    bench_score(model, args.census, rng)


if __name__ == "__main__":
    main()
