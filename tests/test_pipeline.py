"""The pipeline: records -> fitted model -> scores -> levels -> factors -> published edition.

Inputs are small and with known truth (tests/pipeline_inputs.py): a 4 x 4 grid of square
municipalities in two states, survey and census records drawn from a known logit.
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
from scipy.special import expit

from riskmap.publish.edition import EXTRA_COLUMNS, FACTOR_COLUMNS, LEVELS, ROW_COLUMNS
from riskmap.errors import InputError
from riskmap.ingest.records import read_records
from riskmap.spec import load_spec
from riskmap.publish.store import DataStore

# The inputs live in a helper module; imported here too, so that ``from test_pipeline import
# write_inputs`` keeps working.
from pipeline_inputs import (COVARIATES, EMPTY_MUN, SMALL_MUN, SPEC_TOML, TRUE_BETA,  # noqa: E402, F401
                             _outcome, _people, grid_boundaries, make_frames, tree_hashes,
                             write_inputs)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return write_inputs(tmp_path_factory.mktemp("inputs"))


@pytest.fixture(scope="module")
def spec(inputs):
    return load_spec(inputs["spec"])


@pytest.fixture(scope="module")
def built(inputs, spec):
    from riskmap.publish.pipeline import build_edition

    survey = read_records(inputs["survey"], "survey", spec)
    census = read_records(inputs["census"], "census", spec)
    messages = []
    edition = build_edition("2023", survey, census, grid_boundaries(), spec, vintage="grid",
                            year=2023, sources=["ENTI 2022", "Censo 2020"], synthetic=True,
                            progress=messages.append)
    return edition, survey, census, messages


# -- build_edition -----------------------------------------------------------------------------
def test_rows_cover_every_municipality_with_contract_columns(built):
    edition, _, _, messages = built
    rows = edition.rows
    assert list(rows.columns[:len(ROW_COLUMNS)]) == list(ROW_COLUMNS)
    assert set(EXTRA_COLUMNS) <= set(rows.columns) and "geometry" in rows.columns
    assert rows["cvegeo"].tolist() == grid_boundaries()["cvegeo"].tolist()
    assert rows.crs.to_epsg() == 4326
    assert set(rows["level"]) <= set(LEVELS)
    by = rows.set_index("cvegeo")
    assert by.loc[EMPTY_MUN, "level"] == "sin_informacion"
    assert by.loc[EMPTY_MUN, "n_records"] == 0 and by.loc[EMPTY_MUN, "children"] == 0
    assert by.loc[SMALL_MUN, "level"] == "sin_informacion"
    assert by.loc[SMALL_MUN, "n_records"] == 10
    assert (by.drop([EMPTY_MUN, SMALL_MUN])["level"] != "sin_informacion").all()
    assert len(messages) >= 4
    assert list(edition.factors.columns) == list(FACTOR_COLUMNS)


def test_coefficients_recover_truth(built):
    card = built[0].card
    for coef in card["coefficients"]:
        assert abs(coef["estimate"] - TRUE_BETA[coef["name"]]) < 4 * coef["se"], coef
    names = [c["name"] for c in card["coefficients"]]
    assert names == ["intercept", *COVARIATES]
    assert np.asarray(card["covariance"]).shape == (4, 4)
    np.testing.assert_allclose(np.sqrt(np.diag(card["covariance"])),
                               [c["se"] for c in card["coefficients"]], rtol=1e-9)
    assert card["coefficients"][3]["label_es"] == "Jefatura en agricultura"
    assert card["coefficients"][3]["domain"] == "trabajo"


def test_probability_matches_hand_computation(built):
    edition, _, census, _ = built
    beta = np.array([c["estimate"] for c in edition.card["coefficients"]])
    part = census[census["cvegeo"] == "01003"]
    p = expit(beta[0] + part[list(COVARIATES)].to_numpy() @ beta[1:])
    row = edition.rows.set_index("cvegeo").loc["01003"]
    np.testing.assert_allclose(row["probability"], np.average(p, weights=part["weight"]))
    np.testing.assert_allclose(row["children"], part["weight"].sum())
    np.testing.assert_allclose(row["expected_child_labour"],
                               row["probability"] * row["children"])
    assert row["ci_low"] < row["probability"] < row["ci_high"]


def test_card_contents(built):
    edition, survey, census, _ = built
    card = edition.card
    json.dumps(card, allow_nan=False)
    for key in ("edition", "created", "year", "kind", "vintage", "synthetic", "sources",
                "spec", "n_survey", "n_census", "national_rate", "coefficients",
                "covariance", "diagnostics", "rule", "level_counts", "attribution",
                "limitations_es", "limitations_en", "design"):
        assert key in card, key
    assert card["kind"] == "modelled" and card["synthetic"] is True
    assert card["created"].endswith("+00:00")
    assert (card["n_survey"], card["n_census"]) == (len(survey), len(census))
    np.testing.assert_allclose(card["national_rate"]["estimate"],
                               np.average(survey["child_labour"], weights=survey["weight"]))
    assert card["rule"]["id"] == "mirti" and card["rule"]["inferred"] is True
    assert card["rule"]["parameters"]["min_records"] == 30
    assert set(card["rule"]["text"]) == {"es", "en"}
    assert card["level_counts"] == edition.level_counts()
    assert sum(card["level_counts"].values()) == 16
    assert card["design"]["n_strata"] == 4 and card["design"]["n_psu"] == 40
    assert {"auc", "cv_auc", "brier", "calibration"} <= set(card["diagnostics"])
    assert 0.5 < card["diagnostics"]["auc"] < 1
    assert card["attribution"]["es"].startswith("DATOS SINTÉTICOS")
    assert card["spec"]["name"] == "test-small"
    assert card["census_sample"] is True
    ok = edition.rows[edition.rows["n_records"] > 0]
    assert (ok["var_census"] > 0).all()
    np.testing.assert_allclose(ok["se"], np.sqrt(ok["var_model"] + ok["var_census"]))


def test_levels_follow_the_default_mirti_rule(built):
    edition = built[0]
    rate = edition.card["national_rate"]["estimate"]
    rows = edition.rows[edition.rows["level"] != "sin_informacion"]
    p = rows["probability"].to_numpy()
    high = p.mean() + p.std(ddof=1)
    expect = np.where(p <= rate, "bajo", np.where(p > high, "alto", "medio"))
    assert rows["level"].tolist() == expect.tolist()
    assert {"alto", "bajo"} <= set(rows["level"])  # agriculture share varies 0.05..0.8
    cutoffs = edition.card["rule"]["cutoffs"]
    np.testing.assert_allclose([cutoffs["low"], cutoffs["high"]], [rate, max(high, rate)])
    assert (edition.rows["level_rule"] == "mirti").all()
    certain = rows["level_certainty"]
    assert certain.between(0, 1).all()
    none = edition.rows[edition.rows["level"] == "sin_informacion"]
    assert none["level_certainty"].isna().all()


def test_build_with_the_significance_rule(built, spec):
    from riskmap.publish.pipeline import build_edition

    _, survey, census, _ = built
    edition = build_edition("2023", survey, census, grid_boundaries(), spec, vintage="grid",
                            year=2023, sources=["test"], synthetic=True,
                            level_rule="significance")
    rate = edition.card["national_rate"]["estimate"]
    rows = edition.rows[edition.rows["level"] != "sin_informacion"]
    expect = np.where(rows["ci_low"] > rate, "alto",
                      np.where(rows["ci_high"] < rate, "bajo", "medio"))
    assert rows["level"].tolist() == expect.tolist()
    assert edition.card["rule"]["id"] == "significance"
    assert (edition.rows["level_rule"] == "significance").all()


def test_ranks_and_top_factors(built):
    rows = built[0].rows
    ok = rows[rows["level"] != "sin_informacion"]
    top = ok.loc[ok["probability"].idxmax()]
    assert top["rank_national"] == 1
    assert rows.loc[rows["level"] == "sin_informacion", "rank_national"].isna().all()
    for _, part in ok.groupby("cve_ent"):
        assert sorted(part["rank_state"]) == list(range(1, len(part) + 1))
    # the municipality with the most agriculture has it among its risk factors
    most = rows.set_index("cvegeo").loc["02014", "top_factors"]
    assert "agric" in most.lower()


def test_census_codes_outside_boundaries_are_an_error(inputs, spec):
    from riskmap.publish.pipeline import build_edition

    survey = read_records(inputs["survey"], "survey", spec)
    census = read_records(inputs["census"], "census", spec)
    census.loc[5, "cvegeo"] = "09999"
    with pytest.raises(InputError, match=r"census.csv, column 'cvegeo': 1 municipality code.*"
                                         r"'09999' \(row 7\)"):
        build_edition("x", survey, census, grid_boundaries(), spec, vintage="grid",
                      year=None, sources=[], synthetic=True)


# -- build_and_publish -------------------------------------------------------------------------
@pytest.fixture
def published(inputs, tmp_path):
    from riskmap.publish.pipeline import build_and_publish

    data = tmp_path / "data"
    build_and_publish(data, "2022", inputs["survey"], inputs["census"], inputs["boundaries"],
                      spec_path=inputs["spec"], vintage="grid")
    return data


def test_build_and_publish_round_trip(published):
    store = DataStore(published)
    assert store.edition_names() == ["2022"]
    assert store.vintage_names() == ["grid"]
    ed = store.load_edition("2022")
    assert len(ed.rows) == 16 and ed.card["year"] == 2022
    assert ed.card["sources"] == ["survey.csv", "census.csv", "boundaries.geojson"]
    assert ed.card["synthetic"] is False
    assert ed.card["attribution"]["es"].startswith("Fuente: INEGI")
    assert len(store.load_vintage("grid", layer="estados")) == 2


def test_injected_factor_failure_leaves_published_editions_intact(published, inputs,
                                                                   monkeypatch):
    import riskmap.model.factors
    from riskmap.publish.pipeline import build_and_publish

    before = tree_hashes(published)

    def boom(*args, **kwargs):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(riskmap.model.factors, "factor_contributions", boom)
    for name in ("2022", "2023"):
        with pytest.raises(RuntimeError, match="injected"):
            build_and_publish(published, name, inputs["survey"], inputs["census"],
                              inputs["boundaries"], spec_path=inputs["spec"], vintage="grid")
    assert tree_hashes(published) == before


def test_injected_writer_failure_leaves_published_editions_intact(published, inputs,
                                                                   monkeypatch):
    import riskmap.publish.store
    from riskmap.publish.pipeline import build_and_publish

    before = tree_hashes(published)
    real = riskmap.publish.store.pyogrio.write_dataframe

    def fail_on_factors(df, path, layer=None, **kwargs):
        if layer == "factores":
            raise OSError("disk full (injected)")
        return real(df, path, layer=layer, **kwargs)

    monkeypatch.setattr(riskmap.publish.store.pyogrio, "write_dataframe", fail_on_factors)
    with pytest.raises(OSError, match="injected"):
        build_and_publish(published, "2022", inputs["survey"], inputs["census"],
                          inputs["boundaries"], spec_path=inputs["spec"], vintage="grid")
    assert tree_hashes(published) == before


def test_vintage_name_clash_is_an_error(published, inputs, tmp_path):
    from riskmap.publish.pipeline import build_and_publish

    other = grid_boundaries().iloc[:15]
    path = tmp_path / "fewer.geojson"
    other.to_file(path, driver="GeoJSON")
    before = tree_hashes(published)
    # the survey's records in the 10 dropped municipalities are reported on the way
    with pytest.warns(UserWarning, match="not in the boundaries"), \
            pytest.raises(InputError, match="vintage 'grid' is already stored"):
        build_and_publish(published, "2024", inputs["survey"], inputs["census"], path,
                          spec_path=inputs["spec"], vintage="grid")
    assert tree_hashes(published) == before


@pytest.mark.slow
@pytest.mark.realdata
def test_real_geography_keeps_every_municipality(mx_dir, tmp_path):
    """Simulated records on INEGI's 2020 municipalities: all 2,469 kept, codes intact."""
    from riskmap.publish.export import export_bytes
    from riskmap.publish.pipeline import build_and_publish

    rng = np.random.default_rng(5)
    bnd = gpd.read_file(mx_dir / "municipios_2020.geojson")
    codes = bnd["cvegeo"].to_numpy()
    absent = set(codes[::100])          # 25 municipalities without census records
    cen_codes = np.repeat([c for c in codes if c not in absent], 35)
    census = _people(rng, cen_codes, rng.uniform(0.05, 0.8, len(cen_codes)))
    census.insert(1, "weight", 10.0)
    sv_codes = rng.choice(codes, 4000)
    survey = _people(rng, sv_codes, 0.4)
    survey.insert(1, "weight", rng.uniform(50, 150, len(survey)))
    survey.insert(2, "strata", [c[:2] for c in sv_codes])
    survey.insert(3, "psu", sv_codes)
    survey.insert(4, "child_labour", _outcome(rng, survey))
    paths = write_inputs(tmp_path / "in", survey=survey, census=census)
    edition = build_and_publish(tmp_path / "data", "2022", paths["survey"], paths["census"],
                                mx_dir / "municipios_2020.geojson", spec_path=paths["spec"],
                                sources=["Marco Geoestadístico 2020 (INEGI)",
                                         "registros simulados"], synthetic=True)
    rows = DataStore(tmp_path / "data").load_edition("2022").rows
    assert len(rows) == 2469 and edition.card["vintage"] == "2020"
    assert set(rows["cvegeo"]) == set(codes)
    assert set(rows.loc[rows["level"] == "sin_informacion", "cvegeo"]) == absent
    assert rows.set_index("cvegeo").loc["31050", "nom_ent"] == "Yucatán"
    data, _, _ = export_bytes(edition, "csv", state="31")
    text = data.decode("utf-8-sig")
    assert "Yucatán" in text and "\n2022,31001,31," in text
    assert "DATOS SINTÉTICOS DE DEMOSTRACIÓN" in text and "INEGI no avala este producto" in text
