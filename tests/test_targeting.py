"""Inspection targeting in field units: the gain formula, greedy optimality against brute
force, the E_m cap, workplace tables, cool-down exclusion, rankings and validation."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from riskmap.errors import BadParameter, InputError
from riskmap.model.targeting import (DEFAULT_LAMBDA, WORKLIST_COLUMNS, WORKPLACES_PER_CHILD,
                                     allocate, greedy_visits, national_rate, read_workplaces,
                                     visit_gains)


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
        "children": [10000.0, 50000.0, 40.0, 20000.0, 0.0],
        "expected_child_labour": [3000.0, 6000.0, 18.0, 1000.0, np.nan],
    })


def test_visit_gains_formula_and_cap():
    g = visit_gains(2.0, 4, cap=100.0, visits=6)
    assert_allclose(g, [2.0, 1.5, 1.0, 0.5, 0.0, 0.0])  # λ·P/r·(1 − (v−1)/K)₊
    capped = visit_gains(2.0, 4, cap=3.0, visits=6)
    assert_allclose(capped, [2.0, 1.0, 0, 0, 0, 0])
    assert capped.sum() == 3.0


def objective(rate, k, cap, alloc):
    return sum(visit_gains(rate[i], k[i], cap[i], int(v)).sum() for i, v in enumerate(alloc))


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("V", [0, 1, 4, 7])
def test_greedy_is_optimal_against_brute_force(seed, V):
    rng = np.random.default_rng(seed)
    rate = rng.uniform(0.1, 3.0, 4)
    k = rng.integers(1, 6, 4).astype(float)
    cap = rng.uniform(0.5, 6.0, 4)
    best = max(objective(rate, k, cap, v)
               for v in itertools.product(range(V + 1), repeat=4) if sum(v) <= V)
    alloc = greedy_visits(rate, k, cap, V)
    assert alloc.sum() <= V
    assert_allclose(objective(rate, k, cap, alloc), best, rtol=1e-12, atol=1e-12)


def test_worklist_units_and_bounds():
    data = rows()
    wl = allocate(data, visits=200, lam=0.5)
    assert list(wl.columns) == list(WORKLIST_COLUMNS)
    assert wl["visits"].sum() == 200
    assert "03001" not in wl["cvegeo"].tolist()  # no estimate, never visited
    r = national_rate(data)
    assert_allclose(r, (3000 + 6000 + 18 + 1000) / (10000 + 50000 + 40 + 20000))
    by = wl.set_index("cvegeo")
    for code, row in by.iterrows():
        src = data.set_index("cvegeo").loc[code]
        k = max(1.0, round(WORKPLACES_PER_CHILD * src["children"]))
        assert row["workplaces"] == k
        want = visit_gains(0.5 * src["probability"] / r, k, src["expected_child_labour"],
                           int(row["visits"])).sum()
        assert_allclose(row["expected_found"], want)
        assert row["expected_found"] <= src["expected_child_labour"] + 1e-9  # never > E_m
    # Municipality C has 40 children: K = 8 workplaces and E = 18; it saturates.
    assert by.loc["02001", "visits"] <= 8
    # Total in field units: about visits x λ x (P/r) of the chosen municipalities.
    assert 200 * 0.5 * 0.9 < wl["cumulative_found"].iloc[-1] < 200 * 0.5 * 0.45 / r
    # 01001 (P = 0.30, K = 2,000) yields 1.2 per visit and never saturates within 200 visits;
    # 02001 (P = 0.45) is better but has 8 workplaces: everyone else gets nothing.
    assert set(wl["cvegeo"]) == {"01001", "02001"} and wl["rank"].tolist() == [1, 2]
    assert (np.diff(wl["expected_found"]) <= 0).all()


def test_rankings_by_count_and_by_rate():
    count = allocate(rows(), visits=200, by="count")
    rate = allocate(rows(), visits=200, by="rate")
    pd.testing.assert_frame_equal(  # same allocation, different order
        count.drop(columns=["rank", "cumulative_found"]).sort_values("cvegeo")
        .reset_index(drop=True),
        rate.drop(columns=["rank", "cumulative_found"]).sort_values("cvegeo")
        .reset_index(drop=True))
    assert (np.diff(rate["found_per_visit"]) <= 0).all()
    assert rate["cvegeo"].iloc[0] == "02001" and count["cvegeo"].iloc[0] != "02001"


def test_filters_exclusion_and_workplace_table(tmp_path):
    wl = allocate(rows(), visits=6, states=["01"], levels=["alto"])
    assert wl["cvegeo"].tolist() == ["01001"] and wl["visits"].tolist() == [6]
    assert allocate(rows(), visits=0).empty
    left = allocate(rows(), visits=50, exclude={"02001", "01002"})
    assert not {"02001", "01002"} & set(left["cvegeo"])
    path = tmp_path / "k.csv"
    path.write_text("cvegeo,count\n1001,2\n02001,500\n", encoding="utf-8")
    table = read_workplaces(path)
    wl = allocate(rows(), visits=30, workplaces=table).set_index("cvegeo")
    assert wl.loc["01001", "workplaces"] == 2 and wl.loc["01001", "visits"] <= 2
    assert wl.loc["02001", "workplaces"] == 500


@pytest.mark.parametrize("text, match", [
    ("cvegeo\n01001\n", "missing column 'count'"),
    ("cvegeo,count\n01001,0\n", "row 2: expected an integer >= 1"),
    ("cvegeo,count\n01001,3\nABC,3\n", "column 'cvegeo', row 3"),
])
def test_workplace_table_errors(tmp_path, text, match):
    path = tmp_path / "k.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=match):
        read_workplaces(path)


@pytest.mark.parametrize("kwargs, match", [
    ({"by": "money"}, "allowed: count, rate"),
    ({"levels": ["altísimo"]}, "allowed: alto, medio, bajo, sin_informacion"),
    ({"states": ["99"]}, "'99'.*allowed: 01, 02, 03"),
    ({"visits": -1}, "visits"),
    ({"visits": 2.5}, "visits"),
    ({"lam": 0}, "λ > 0"),
    ({"lam": "x"}, "λ > 0"),
])
def test_invalid_arguments(kwargs, match):
    args = {"visits": 5, **kwargs}
    with pytest.raises(BadParameter, match=match):
        allocate(rows(), **args)


def test_missing_columns():
    with pytest.raises(InputError, match="expected_child_labour"):
        allocate(rows().drop(columns="expected_child_labour"), visits=3)


@pytest.mark.slow
def test_demo_plan_of_2000_visits_is_credible(demo_store):
    """The issue's example: 2,000 visits used to promise 438,602 detections on the demo."""
    name = demo_store.edition_names()[-1]
    data = demo_store.load_edition(name).rows
    wl = allocate(data, visits=2000, lam=DEFAULT_LAMBDA, levels=["alto", "medio"])
    total = wl["cumulative_found"].iloc[-1]
    ratio = pd.to_numeric(data["probability"], errors="coerce") / national_rate(data)
    # Order 2,000 λ: above the national-rate yield (targeting helps), below the best ratio.
    assert 2000 * DEFAULT_LAMBDA <= total <= 2000 * DEFAULT_LAMBDA * ratio.max()
    assert total < 5 * 2000 * DEFAULT_LAMBDA
    assert (wl["expected_found"] <= wl["expected_child_labour"] + 1e-9).all()
    # No municipality promises more than λ · P/r children per visit (the old model promised
    # 17,409 children from 34 visits to one municipality).
    per_visit_bound = DEFAULT_LAMBDA * wl["probability"] / national_rate(data)
    assert (wl["found_per_visit"] <= per_visit_bound + 1e-9).all()
