"""Inspection targeting: greedy allocation is optimal; worklist shape and validation."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from riskmap.errors import BadParameter, InputError
from riskmap.model.targeting import WORKLIST_COLUMNS, allocate, greedy_visits


def rows():
    return pd.DataFrame({
        "cvegeo": ["01001", "01002", "02001", "02002", "03001"],
        "nom_mun": ["A", "B", "C", "D", "E"],
        "nom_ent": ["Ags", "Ags", "BC", "BC", "BCS"],
        "cve_ent": ["01", "01", "02", "02", "03"],
        "level": ["alto", "medio", "alto", "bajo", "sin_informacion"],
        "probability": [0.30, 0.12, 0.45, 0.05, np.nan],
        "ci_low": [0.25, 0.08, 0.30, 0.03, np.nan],
        "ci_high": [0.35, 0.16, 0.60, 0.07, np.nan],
        "children": [10000.0, 50000.0, 800.0, 20000.0, 0.0],
        "expected_child_labour": [3000.0, 6000.0, 360.0, 1000.0, np.nan],
    })


def objective(a, v, q):
    return float(np.sum(a * (1 - (1 - q) ** np.asarray(v))))


@pytest.mark.parametrize("q", [0.3, 0.55, 1.0])
@pytest.mark.parametrize("V", [0, 1, 4, 7])
def test_greedy_is_optimal_against_brute_force(q, V):
    a = np.array([5.0, 3.0, 2.2, 0.4])
    best = max(objective(a, v, q) for v in itertools.product(range(V + 1), repeat=len(a))
               if sum(v) <= V)
    alloc = greedy_visits(a, V, q)
    assert alloc.sum() <= V
    assert_allclose(objective(a, alloc, q), best, rtol=1e-12)


def test_worklist_by_count():
    wl = allocate(rows(), visits=10, q=0.3)
    assert list(wl.columns) == list(WORKLIST_COLUMNS)
    assert wl["visits"].sum() == 10
    assert "03001" not in wl["cvegeo"].tolist()  # no estimate, never visited
    assert wl["rank"].tolist() == list(range(1, len(wl) + 1))
    assert (np.diff(wl["expected_detections"]) <= 0).all()
    assert_allclose(wl["cumulative_detections"], wl["expected_detections"].cumsum())
    expected = wl["expected_child_labour"] * (1 - 0.7 ** wl["visits"])
    assert_allclose(wl["expected_detections"], expected)
    # The largest E_m gets the most visits.
    assert wl.set_index("cvegeo")["visits"].idxmax() == "01002"
    best = max(objective(np.array([3000, 6000, 360, 1000.0]), v, 0.3)
               for v in itertools.product(range(11), repeat=4) if sum(v) == 10)
    assert_allclose(wl["cumulative_detections"].iloc[-1], best)


def test_by_rate_favours_high_probability():
    wl = allocate(rows(), visits=1, q=0.3, by="rate")
    assert wl["cvegeo"].tolist() == ["02001"]
    assert_allclose(wl["expected_detections"], 360 * 0.3)


def test_filters_by_state_and_level():
    wl = allocate(rows(), visits=6, states=["01"], levels=["alto"])
    assert wl["cvegeo"].tolist() == ["01001"] and wl["visits"].tolist() == [6]
    assert allocate(rows(), visits=0).empty


def test_q_one_stops_at_one_visit_each():
    wl = allocate(rows(), visits=50, q=1.0)
    assert wl["visits"].tolist() == [1, 1, 1, 1]
    assert_allclose(wl["cumulative_detections"].iloc[-1], 3000 + 6000 + 360 + 1000)


@pytest.mark.parametrize("kwargs, match", [
    ({"by": "money"}, "allowed: count, rate"),
    ({"levels": ["altísimo"]}, "allowed: alto, medio, bajo, sin_informacion"),
    ({"states": ["99"]}, "'99'.*allowed: 01, 02, 03"),
    ({"visits": -1}, "visits"),
    ({"visits": 2.5}, "visits"),
    ({"q": 0}, "0 < q <= 1"),
    ({"q": 1.5}, "0 < q <= 1"),
])
def test_invalid_arguments(kwargs, match):
    args = {"visits": 5, **kwargs}
    with pytest.raises(BadParameter, match=match):
        allocate(rows(), **args)


def test_missing_columns():
    with pytest.raises(InputError, match="expected_child_labour"):
        allocate(rows().drop(columns="expected_child_labour"), visits=3)
