"""``riskmap trend`` on a small demo atlas: columns, filters, one-line errors (unknown or
imported edition, tampered census records), and the census records kept by publishing."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from cli_inputs import run
from riskmap.fileio import sha256_file
from riskmap.publish.store import DataStore

COMMON = ["unit", "name", "probability_a", "probability_b", "change", "composition",
          "behaviour"]
CI = [f"{p}_ci_{e}" for p in ("change", "composition", "behaviour") for e in ("low", "high")]


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    from riskmap.demo import DemoConfig, build_demo

    path = tmp_path_factory.mktemp("trend-demo")
    build_demo(path, config=DemoConfig.small())
    return path


def _covariates(store, name):
    return [c["name"] for c in store.load_card(name)["coefficients"][1:]]


def test_publishing_keeps_the_scored_census_records_with_their_digest(small_demo):
    store = DataStore(small_demo)
    for name in ("2017", "2023"):
        card = store.load_card(name)
        kept = card["census_records"]
        path = store.census_path(name)
        assert kept["file"] == path.name and kept["sha256"] == sha256_file(path)
        census = store.load_census(name)
        assert list(census.columns) == ["cvegeo", "weight", *_covariates(store, name)]
        assert len(census) == kept["n_records"] == card["n_census"]
        # The territorial covariate is kept as it was joined for scoring.
        assert census["cropland_share"].notna().all()


def test_municipality_rows_have_exactly_the_documented_columns(small_demo, tmp_path, capsys):
    out = tmp_path / "t.csv"
    code, _, err = run(["trend", "--a", "2017", "--b", "2023", "--data-dir", small_demo,
                        "-o", out], capsys)
    assert code == 0, err
    table = pd.read_csv(out, dtype={"unit": str})
    covs = _covariates(DataStore(small_demo), "2017")
    expected = (COMMON + [f"composition_{c}" for c in covs] + [f"behaviour_{c}" for c in covs]
                + ["behaviour_intercept"])
    assert list(table.columns) == expected
    codes = DataStore(small_demo).load_vintage("2015")["cvegeo"]
    assert sorted(table["unit"]) == sorted(codes)  # the older geography, pieces pooled
    ok = table["change"].notna()
    assert np.allclose(table.loc[ok, "composition"] + table.loc[ok, "behaviour"],
                       table.loc[ok, "change"], atol=1e-9)


@pytest.mark.parametrize("by", ["state", "nation"])
def test_state_and_nation_rows_add_intervals(small_demo, tmp_path, capsys, by):
    out = tmp_path / "t.csv"
    code, _, err = run(["trend", "--a", "2017", "--b", "2023", "--by", by, "--data-dir",
                        small_demo, "-o", out], capsys)
    assert code == 0, err
    assert "census-sample uncertainty is ignored" in err
    table = pd.read_csv(out, dtype={"unit": str})
    assert list(table.columns[-6:]) == CI
    assert (table["change_ci_low"] <= table["change"]).all()
    assert (table["change"] <= table["change_ci_high"]).all()
    if by == "nation":
        assert list(table["unit"]) == ["nacional"]
    else:
        assert len(table) == 6 and table["unit"].str.len().eq(2).all()


def test_state_filter(small_demo, tmp_path, capsys):
    out = tmp_path / "t.csv"
    code, _, err = run(["trend", "--a", "2017", "--b", "2023", "--state", "2", "--data-dir",
                        small_demo, "-o", out], capsys)
    assert code == 0, err
    table = pd.read_csv(out, dtype={"unit": str})
    assert len(table) > 0 and table["unit"].str.startswith("02").all()


@pytest.mark.parametrize("args, words", [
    (["--a", "1999", "--b", "2023"], "1999"),
    (["--a", "2017", "--b", "2023", "--by", "county"], "county"),
    (["--a", "2017", "--b", "2023", "--state", "99"], "99"),
    (["--a", "2017", "--b", "2023", "--by", "nation", "--state", "01"], "--state"),
])
def test_bad_input_exits_2_with_one_line(small_demo, tmp_path, capsys, args, words):
    out = tmp_path / "t.csv"
    code, _, err = run(["trend", *args, "--data-dir", small_demo, "-o", out], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("riskmap: error:") and words in lines[0]
    assert not out.exists()


def test_an_imported_edition_cannot_be_decomposed(small_demo, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(small_demo, data)
    rows = DataStore(data).load_edition("2017").rows
    levels = tmp_path / "levels.csv"
    rows[["cvegeo", "level"]].to_csv(levels, index=False)
    code, _, err = run(["import-edition", "--edition", "mirti2017", "--levels", levels,
                        "--boundaries", data / "demo" / "boundaries_2015.gpkg", "--vintage",
                        "2015", "--year", "2017", "--data-dir", data], capsys)
    assert code == 0, err
    out = tmp_path / "t.csv"
    code, _, err = run(["trend", "--a", "mirti2017", "--b", "2023", "--data-dir", data,
                        "-o", out], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "imported" in err and "no trend decomposition is possible" in err
    assert not out.exists()


def test_census_records_that_changed_after_publication_are_refused(small_demo, tmp_path,
                                                                  capsys):
    data = tmp_path / "data"
    shutil.copytree(small_demo, data)
    store = DataStore(data)
    census = store.load_census("2023")
    census.loc[0, "weight"] *= 2
    census.to_parquet(store.census_path("2023"), index=False)
    code, _, err = run(["trend", "--a", "2017", "--b", "2023", "--data-dir", data, "-o",
                        tmp_path / "t.csv"], capsys)
    assert code == 2 and "digest" in err and len(err.strip().splitlines()) == 1
    store.census_path("2023").unlink()
    code, _, err = run(["trend", "--a", "2017", "--b", "2023", "--data-dir", data, "-o",
                        tmp_path / "t.csv"], capsys)
    assert code == 2 and "keeps no census records" in err


def test_swapped_editions_negate_every_part_on_the_same_geography(small_demo, tmp_path, capsys):
    tables = {}
    for a, b in (("2017", "2023"), ("2023", "2017")):
        out = tmp_path / f"{a}_{b}.csv"
        code, _, err = run(["trend", "--a", a, "--b", b, "--data-dir", small_demo, "-o", out],
                           capsys)
        assert code == 0, err
        assert "geography of edition 2017" in err
        tables[a] = pd.read_csv(out, dtype={"unit": str}).set_index("unit")
    fwd, back = tables["2017"], tables["2023"]
    assert list(fwd.index) == list(back.index)
    parts = [c for c in fwd.columns if c.startswith(("change", "composition", "behaviour"))]
    assert np.allclose(fwd[parts], -back[parts], atol=1e-9, equal_nan=True)
    assert np.allclose(fwd["probability_a"], back["probability_b"], atol=1e-12, equal_nan=True)


def test_an_imported_list_replacing_a_modelled_edition_drops_its_records(small_demo, tmp_path,
                                                                        capsys):
    data = tmp_path / "data"
    shutil.copytree(small_demo, data)
    store = DataStore(data)
    levels = tmp_path / "levels.csv"
    store.load_edition("2017").rows[["cvegeo", "level"]].to_csv(levels, index=False)
    assert store.census_path("2017").exists()
    code, _, err = run(["import-edition", "--edition", "2017", "--levels", levels,
                        "--boundaries", data / "demo" / "boundaries_2015.gpkg", "--vintage",
                        "2015", "--year", "2017", "--data-dir", data], capsys)
    assert code == 0, err
    assert not store.census_path("2017").exists()
    assert store.census_path("2023").exists()


def test_a_failed_publication_keeps_the_previous_census_records(small_demo, tmp_path,
                                                               monkeypatch):
    import pyogrio

    data = tmp_path / "data"
    shutil.copytree(small_demo, data)
    store = DataStore(data)
    before = sha256_file(store.census_path("2023"))
    edition = store.load_edition("2023")
    edition.census = store.load_census("2023").iloc[:100]

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pyogrio, "write_dataframe", fail)
    with pytest.raises(OSError):
        store.publish_edition(edition)
    assert sha256_file(store.census_path("2023")) == before
    assert store.load_census("2023").shape[0] > 100  # digest still matches the card
    assert not [p for p in (data / "editions").iterdir() if p.name.startswith(".")]


def test_semi_synthetic_mexico_pools_the_municipalities_created_after_2015(mx_dir, tmp_path,
                                                                          capsys):
    from riskmap.model.trend import load_trend
    from test_crosswalk import CREATED_2015_2020

    data = tmp_path / "data"
    code, _, err = run(["simulate", "--boundaries", mx_dir / "municipios_2020.geojson",
                        "--census-table", mx_dir / "censo2020_municipal.csv",
                        "--old-boundaries", mx_dir / "municipios_2015.geojson",
                        "--census-records", 100_000, "--survey-records", 20_000,
                        "--data-dir", data, "--seed", "7"], capsys)
    assert code == 0, err
    trend = load_trend(DataStore(data), "2017", "2023", draws=200)
    mun = trend.municipalities
    assert len(mun) == 2457 and not set(CREATED_2015_2020) & set(mun["unit"])
    # The parents' 2023 values pool their pieces: children of the 2020 census records of
    # parent and pieces together.
    census = DataStore(data).load_census("2023")
    pieces = {}
    for child, parent in CREATED_2015_2020.items():
        pieces.setdefault(parent, [parent]).append(child)
    for parent, codes in pieces.items():
        kids = census.loc[census["cvegeo"].isin(codes), "weight"].sum()
        row = mun.set_index("unit").loc[parent]
        assert row["children_b"] == pytest.approx(kids, rel=1e-9), (parent, codes)
    ok = mun["change"].notna()
    assert np.allclose(mun.loc[ok, "composition"] + mun.loc[ok, "behaviour"],
                       mun.loc[ok, "change"], atol=1e-14)
    assert len(trend.states) == 32
