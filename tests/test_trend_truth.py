"""The trend decomposition recovers the demo's known 2017 -> 2023 drivers (truth kept in
``<data_dir>/demo/truth/trend_2017_2023.json``, computed from the true coefficients)."""

from __future__ import annotations

import json

import numpy as np
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
