"""Benchmark: the trend decomposition of two editions against one ordinary scoring pass.

Run with ``python bench/bench_trend.py [--census 4000000] [--repeat 3]``. Simulates two census
record sets of ``--census`` records each (2,469 municipalities, 11 covariates, the second with
more school attendance and social security), two coefficient vectors with design
covariances, then times in the same run:

* one ordinary scoring pass (:func:`riskmap.model.score.score_municipalities`) of one record
  set — the baseline;
* the full decomposition (:func:`riskmap.model.trend.decompose`): four scorings P(X_s, b_t),
  municipal, state and national rows, Yun's detailed parts and 1,000 coefficient draws for
  the state and national intervals.

Prints the best time of each over ``--repeat`` runs and their ratio (goal: <= 3x).
"""

from __future__ import annotations

import argparse
import sys
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))

from riskmap.model.score import score_municipalities  # noqa: E402
from riskmap.model.trend import TrendSide, decompose  # noqa: E402

COVARIATES = ["age", "male", "attends_school", "indigenous_language", "rural",
              "head_schooling_years", "head_agriculture", "head_social_security",
              "household_size", "dirt_floor", "x_extra"]
BETA_A = np.array([-3.0, 0.15, 0.5, -1.2, 0.3, 0.4, -0.05, 0.8, -0.4, 0.05, 0.3, 0.1])
BETA_B = BETA_A + np.array([0.1, 0.01, -0.05, 0.2, -0.05, -0.05, 0.01, 0.3, 0.05, 0.0, 0.0, 0.0])
N_MUN = 2469


def census(n, rng, shift=0.0):
    states = np.repeat(np.arange(1, 33), -(-N_MUN // 32))[:N_MUN]
    codes = np.array([f"{s:02d}{i:03d}" for i, s in enumerate(states, start=1)])
    mun = np.sort(rng.integers(0, N_MUN, n))
    X = pd.DataFrame({
        "cvegeo": pd.array(codes[mun], dtype="str"),
        "weight": rng.uniform(5, 40, n),
        "age": rng.integers(5, 18, n).astype(float),
        "male": rng.integers(0, 2, n).astype(float),
        "attends_school": (rng.random(n) < 0.85 + shift).astype(float),
        "indigenous_language": (rng.random(n) < 0.1).astype(float),
        "rural": (rng.random(n) < 0.25).astype(float),
        "head_schooling_years": rng.integers(0, 18, n).astype(float),
        "head_agriculture": (rng.random(n) < 0.15).astype(float),
        "head_social_security": (rng.random(n) < 0.4 + shift).astype(float),
        "household_size": rng.integers(2, 12, n).astype(float),
        "dirt_floor": (rng.random(n) < 0.05).astype(float),
        "x_extra": rng.normal(size=n),
    })
    return X


def covariance(rng, k=12, se=0.03):
    a = rng.normal(size=(k, k))
    c = a @ a.T / k + np.eye(k)
    d = 1 / np.sqrt(np.diag(c))
    return c * np.outer(d, d) * se**2


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--census", type=int, default=4_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(7)
    xa, xb = census(args.census, rng), census(args.census, rng, shift=0.05)
    cov_a, cov_b = covariance(rng), covariance(rng)
    model = SimpleNamespace(coef_=BETA_A, cov_=cov_a, names_=["intercept", *COVARIATES])
    side_a = TrendSide("a", BETA_A, cov_a, COVARIATES, xa)
    side_b = TrendSide("b", BETA_B, cov_b, COVARIATES, xb)

    t_score = best(lambda: score_municipalities(model, xa, COVARIATES), args.repeat)
    t_trend = best(lambda: decompose(side_a, side_b), args.repeat)
    print(f"census records per edition: {args.census:,}; municipalities {N_MUN:,}; "
          f"covariates {len(COVARIATES)}; draws 1,000")
    print(f"one scoring pass (score_municipalities): {t_score:8.2f} s")
    print(f"trend decomposition (two editions):      {t_trend:8.2f} s")
    print(f"ratio: {t_trend / t_score:.2f}x (goal <= 3x)")


if __name__ == "__main__":
    main()
