"""The trend decomposition recovers the demo's known 2017 -> 2023 drivers (truth kept in
``<data_dir>/demo/truth/trend_2017_2023.json``, computed from the true coefficients)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from riskmap.model.trend import load_trend
from riskmap.publish.store import DataStore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def truth(demo_dir):
    return json.loads((demo_dir / "demo" / "truth" / "trend_2017_2023.json")
                      .read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def trend(demo_dir):
    return load_trend(DataStore(demo_dir), "2017", "2023")


def test_the_true_story_has_the_recorded_drivers(truth):
    assert truth["composition"] < 0 < truth["behaviour"]
    assert truth["change"] == pytest.approx(truth["composition"] + truth["behaviour"])
    for cov in truth["drivers"]["composition"]["covariates"]:
        assert truth["composition_parts"][cov] < 0
    for cov in truth["drivers"]["behaviour"]["covariates"]:
        assert truth["behaviour_parts"][cov] > 0


def _check(row, part, true_value, sign):
    low, high = row[f"{part}_ci_low"], row[f"{part}_ci_high"]
    print(f"{part}: true {true_value:+.5f}, estimate {row[part]:+.5f} [{low:+.5f}, {high:+.5f}]")
    assert np.sign(row[part]) == sign == np.sign(true_value), part
    assert low <= true_value <= high, part


def test_composition_and_behaviour_recover_sign_and_size(trend, truth):
    nat = trend.nation.iloc[0]
    _check(nat, "composition", truth["composition"], truth["drivers"]["composition"]["sign"])
    _check(nat, "behaviour", truth["behaviour"], truth["drivers"]["behaviour"]["sign"])
    _check(nat, "change", truth["change"], np.sign(truth["change"]))


def test_each_recorded_driver_is_recovered(trend, truth):
    nat = trend.nation.iloc[0]
    for side, parts in (("composition", "composition_parts"), ("behaviour", "behaviour_parts")):
        driver = truth["drivers"][side]
        for cov in driver["covariates"]:
            _check(nat, f"{side}_{cov}", truth[parts][cov], driver["sign"])


def test_states_carry_intervals_and_add_up(trend):
    st = trend.states
    assert len(st) == 32
    assert np.allclose(st["composition"] + st["behaviour"], st["change"], atol=1e-14)
    assert (st["behaviour_ci_low"] < st["behaviour_ci_high"]).all()


def _true_by_state(store, truth_coef):
    """Composition and behaviour per state under the true coefficients, by plain numpy."""
    names = ["intercept", *[c for c in truth_coef["2017"] if c != "intercept"]]
    out = {}
    P = {}
    for side in ("2017", "2023"):
        census = store.load_census(side)
        X = np.column_stack([np.ones(len(census))] + [census[c].to_numpy(float)
                                                      for c in names[1:]])
        state = census["cvegeo"].str[:2].to_numpy()
        v = census["weight"].to_numpy()
        for coef in ("2017", "2023"):
            p = 1 / (1 + np.exp(-(X @ np.array([truth_coef[coef][n] for n in names]))))
            frame = pd.DataFrame({"s": state, "vp": v * p, "v": v}).groupby("s").sum()
            P[(side, coef)] = frame["vp"] / frame["v"]
    out["composition"] = 0.5 * (P[("2023", "2017")] - P[("2017", "2017")]
                                + P[("2023", "2023")] - P[("2017", "2023")])
    out["behaviour"] = 0.5 * (P[("2017", "2023")] - P[("2017", "2017")]
                              + P[("2023", "2023")] - P[("2023", "2017")])
    return pd.DataFrame(out)


def test_state_intervals_cover_the_true_state_parts(demo_dir, trend):
    coef = json.loads((demo_dir / "demo" / "truth" / "coefficients.json").read_text())
    true = _true_by_state(DataStore(demo_dir), coef)
    st = trend.states.set_index("unit")
    for part in ("composition", "behaviour"):
        inside = ((st[f"{part}_ci_low"] <= true[part]) & (true[part] <= st[f"{part}_ci_high"]))
        same_sign = np.sign(st[part]) == np.sign(true[part])
        print(part, f"covered {inside.mean():.2f}, same sign {same_sign.mean():.2f}")
        # 95 % intervals; the states share the coefficient draws, so their misses come
        # together: the bound leaves room for one unlucky direction of the estimates.
        assert inside.mean() >= 0.75, part
        assert same_sign.mean() >= 0.9, part
