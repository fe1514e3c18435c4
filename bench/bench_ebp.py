"""Benchmark: the EBP estimator on the full demo edition 2023, against the synthetic build.

Run with ``python bench/bench_ebp.py [--bootstrap 200] [--jobs N]``. Generates the demo inputs
in a temporary folder, then builds edition 2023 twice from the same in-memory records
(:func:`riskmap.publish.pipeline.build_edition`): with the synthetic estimator (the baseline)
and with ``estimator="ebp"``. Prints the wall time of each build, their ratio, and the EBP's
parts measured separately (mixed-model fit, EBP prediction, parametric bootstrap), then the
accuracy against the demo's truth: 95 % interval coverage, RMSE with and without survey
children for both estimators, and sigma_u with its interval against the true SD.
The issue's budget: B = 200 in at most 5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from riskmap.demo.build import DemoConfig, _generate  # noqa: E402
from riskmap.demo.population import AREA_EFFECT_SD, TERRITORIAL  # noqa: E402
from riskmap.paths import MODELS_DIR  # noqa: E402
from riskmap.publish.pipeline import build_edition  # noqa: E402
from riskmap.spec import load_spec  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=20240601)
    args = parser.parse_args()
    spec = load_spec(MODELS_DIR / "demo.toml")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        gen = _generate(Path(tmp), args.seed, None, DemoConfig())
        print(f"demo inputs generated in {time.perf_counter() - t:.1f} s")
        survey = gen["surveys"]["2023"].drop(columns="_p")
        census = gen["census"]["2020"].drop(columns="_mun")
        boundaries = gen["boundaries"]["2020"]
        territorial = {TERRITORIAL: gen["cropland"]["2020"]}
        truth = pd.read_csv(Path(tmp) / "demo" / "truth" / "municipal_2023.csv",
                            dtype={"cvegeo": str}).set_index("cvegeo")
        common = dict(vintage="2020", year=2023, sources=["bench"], synthetic=True,
                      territorial=territorial)

        t = time.perf_counter()
        build_edition("2023", survey, census, boundaries, spec, **common)
        t_syn = time.perf_counter() - t

        steps = {}
        clock = [time.perf_counter()]

        def say(message):
            now = time.perf_counter()
            if message.startswith(("fitting the mixed", "EBP for", "parametric bootstrap")):
                steps[message.split(" ")[0]] = now
            clock[0] = now

        t = time.perf_counter()
        ebp = build_edition("2023", survey, census, boundaries, spec, estimator="ebp",
                            bootstrap=args.bootstrap, bootstrap_seed=args.seed,
                            n_jobs=args.jobs, progress=say, **common)
        t_ebp = time.perf_counter() - t
        t_end = time.perf_counter()

    fit = steps["EBP"] - steps["fitting"]
    pred = steps["parametric"] - steps["EBP"]
    boot = t_end - steps["parametric"]
    card = ebp.card["ebp"]
    print(f"synthetic build      {t_syn:7.1f} s (baseline)")
    print(f"ebp build (B = {args.bootstrap:>3}) {t_ebp:7.1f} s  x{t_ebp / t_syn:.1f} the synthetic "
          f"build, on {card['bootstrap']['processes']} process(es); budget 300 s")
    print(f"  mixed-model fit    {fit:7.1f} s")
    print(f"  EBP prediction     {pred:7.1f} s")
    print(f"  bootstrap          {boot:7.1f} s  ({boot / max(args.bootstrap, 1):.2f} s per "
          "replicate)")

    rows = ebp.rows.set_index("cvegeo")
    rows = rows[rows["probability"].notna()]
    true = truth["true_probability"].reindex(rows.index)
    s = rows["sampled"].astype(bool)

    def cover(suffix):
        return float(((rows[f"ci_low{suffix}"] <= true) & (true <= rows[f"ci_high{suffix}"]))
                     .mean())

    def rmse(col, mask):
        return float(np.sqrt(np.mean((rows.loc[mask, col] - true[mask]) ** 2)))

    print(f"coverage of 95 % intervals: EBP {cover(''):.3f}, synthetic {cover('_synthetic'):.3f}")
    for label, mask in (("with survey children", s), ("without", ~s)):
        a, b = rmse("probability", mask), rmse("probability_synthetic", mask)
        print(f"RMSE {label:<21} ({int(mask.sum()):>4}): EBP {a:.4f}, synthetic {b:.4f} "
              f"(x{a / b:.3f})")
    lo, hi = card["sigma_u_ci"]
    print(f"sigma_u {card['sigma_u']:.3f} [{lo:.3f}, {hi:.3f}] (true {AREA_EFFECT_SD}); "
          f"covariates explain {card['variance_between']['share_covariates']:.0%} of the "
          "between-municipality logit variance")


if __name__ == "__main__":
    main()
