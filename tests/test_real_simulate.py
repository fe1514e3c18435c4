"""Semi-synthetic Mexico: real geography and shares, simulated records, published editions."""

from __future__ import annotations

import gzip
import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.special import expit
from shapely.geometry import box

from riskmap.cli import cli
from riskmap.inegi.simulate import (EDITIONS, SOURCES_NOTE, SimConfig, build_semisynthetic,
                                   calibrate_intercept, draw_children, municipal_parameters,
                                   simulate_census, simulate_mexico)
from riskmap.publish.store import DataStore

from pipeline_inputs import small_country as _small_country


def test_generator_follows_municipal_shares(tmp_path):
    _, _, tab = _small_country(tmp_path)
    params = municipal_parameters(tab)
    rng = np.random.default_rng(1)
    mun = np.repeat(np.arange(len(params)), 4000)
    kids = draw_children(params, mun, rng)
    means = kids.groupby("cvegeo")[["rural", "indigenous_language", "age"]].mean()
    p = params.loc[means.index]
    np.testing.assert_allclose(means["rural"], p["p_rural"], atol=0.03)
    np.testing.assert_allclose(means["indigenous_language"], p["p_hli"], atol=0.035)
    # ages 5-17 with the municipal age structure: mean of 1/13*5 + 6/13*8.5 + 3/13*13 + 3/13*16
    np.testing.assert_allclose(means["age"], (5 + 6 * 8.5 + 3 * 13 + 3 * 16) / 13, atol=0.15)
    assert kids["age"].between(5, 17).all()
    young = kids[(kids["age"] >= 6) & (kids["age"] <= 14)]
    noatt = 1 - young.groupby("cvegeo")["attends_school"].mean()
    np.testing.assert_allclose(noatt, params.loc[noatt.index, "noatt_6_14"], atol=0.02)


def test_intercept_calibrated_to_the_national_rate(tmp_path):
    bpath, _, tab = _small_country(tmp_path)
    gdf = gpd.read_file(bpath).rename(columns={"CVEGEO": "cvegeo"})
    with pytest.warns(UserWarning, match="1 municipality has no census data.*19001"):
        sim = simulate_mexico(gdf, tab, seed=3, config=SimConfig(n_census=5000, n_survey=3000))
    census = sim["census"]
    assert "19001" not in set(census["cvegeo"]) and sim["no_data"] == ["19001"]
    # weights add up to the municipal child counts
    np.testing.assert_allclose(census.groupby("cvegeo")["weight"].sum(), 2600.0)
    ed = EDITIONS[2]
    b0 = calibrate_intercept(census, ed.slopes, ed.rate)
    eta = b0 + sum(census[k] * v for k, v in ed.slopes.items())
    np.testing.assert_allclose(np.average(expit(eta), weights=census["weight"]), ed.rate,
                               rtol=1e-8)


@pytest.mark.slow
def test_small_country_build_labels_and_recovers_truth(tmp_path):
    bpath, tpath, _ = _small_country(tmp_path)
    data = tmp_path / "data"
    with pytest.warns(UserWarning, match="no census data"):
        result = build_semisynthetic(data, bpath, tpath, seed=5,
                                     config=SimConfig(n_census=20000, n_survey=20000,
                                                      min_census_per_municipality=40))
    store = DataStore(data)
    assert store.edition_names() == ["2017", "2019", "2023"]
    assert store.vintage_names() == ["2020"]
    ed = store.load_edition("2023")
    rows = ed.rows.set_index("cvegeo")
    assert len(rows) == 36  # never dropped
    assert rows.loc["19001", "level"] == "sin_informacion"
    assert ed.card["synthetic"] is True and ed.card["semi_synthetic"] is True
    names = [s["name"] for s in ed.card["sources"]]
    assert SOURCES_NOTE in names and any("INEGI" in n for n in names)
    assert "INEGI" in ed.card["attribution"]["es"] and "SEMISINTÉTICOS" in ed.card["attribution"]["es"]
    # the east (poor, rural, indigenous) is riskier than the west
    east = rows[rows["cve_ent"] == "20"]["probability"].mean()
    west = rows[(rows["cve_ent"] == "19") & (rows["level"] != "sin_informacion")]["probability"]
    assert east > west.mean() + 0.05
    # known truth: every slope within 4 design SEs of the true value
    truth = result["truth"]["2023"]["slopes"]
    for c in ed.card["coefficients"]:
        if c["name"] in truth:
            assert abs(c["estimate"] - truth[c["name"]]) < 4 * c["se"] + 0.02, c["name"]
    saved = json.loads((data / "semisynthetic" / "truth.json").read_text(encoding="utf-8"))
    assert saved["editions"]["2023"]["rate"] == pytest.approx(0.131)


@pytest.mark.slow
def test_real_mexico_semisynthetic_is_plausible(mx_dir, tmp_path):
    data = tmp_path / "data"
    result = CliRunner().invoke(cli, ["simulate", "--boundaries",
                                      str(mx_dir / "municipios_2020.geojson"),
                                      "--census-table", str(mx_dir / "censo2020_municipal.csv"),
                                      "--old-boundaries", str(mx_dir / "municipios_2015.geojson"),
                                      "--data-dir", str(data), "--seed", "7"])
    assert result.exit_code == 0, result.output
    print(result.output)
    store = DataStore(data)
    assert store.edition_names() == ["2017", "2019", "2023"]
    assert store.vintage_names() == ["2015", "2020"]
    assert store.load_card("2017")["vintage"] == "2015"
    assert store.load_card("2023")["vintage"] == "2020"
    enti = pd.read_csv(mx_dir / "enti_state_rates_partial.csv", dtype={"cve_ent": str})
    enti = enti[(enti["year"] == 2019) & (enti["indicator"] == "tasa_trabajo_infantil_5a17")
                & (enti["cve_ent"] != "00")].set_index("cve_ent")["value_pct"]
    for name in ("2017", "2019", "2023"):
        ed = store.load_edition(name)
        rows = ed.rows
        assert len(rows) == (2457 if name == "2017" else 2469)
        assert ed.card["synthetic"] is True
        by_state = rows.groupby("cve_ent")["probability"].mean()
        national = rows["probability"].mean()
        for south in ("20", "07", "12"):  # Oaxaca, Chiapas, Guerrero
            assert by_state[south] > national
            assert by_state[south] > max(by_state["19"], by_state["09"])  # Nuevo León, CDMX
        # child-weighted state rates rank like ENTI 2019's published (partial) state rates
        rows = rows.assign(e=rows["probability"] * rows["children"])
        sums = rows.groupby("cve_ent")[["e", "children"]].sum()
        sim = (sums["e"] / sums["children"]).reindex(enti.index)
        rho = sim.rank().corr(enti.rank())
        print(f"edition {name}: Spearman rho vs ENTI 2019 state rates = {rho:.2f}; "
              f"levels {ed.level_counts()}")
        assert rho > 0.7
        assert 0.09 < ed.national_rate < 0.16
        # the default level rule (mirti) gives MIRTI-like shares: alto 8-20 % of the
        # municipalities with information (MIRTI 2017: 16.1 %)
        counts = ed.level_counts()
        informed = counts["alto"] + counts["medio"] + counts["bajo"]
        assert ed.card["rule"]["id"] == "mirti"
        assert 0.08 <= counts["alto"] / informed <= 0.20, counts
    # editions compare through the stored crosswalk: the 12 municipalities created between
    # the 2015 and 2020 cartographies take their parent's 2017 value
    from riskmap.model.compare import compare
    from pipeline_inputs import CREATED_2015_2020

    cmp = compare(store.load_edition("2017"), store.load_edition("2023"), store)
    derived = cmp.changes[cmp.changes["alignment"] == "derived"]
    assert dict(zip(derived["cvegeo"], derived["derived_from"])) == CREATED_2015_2020
    assert (cmp.changes["alignment"] == "unmatched").sum() == 0
    # the reverse crosswalk is stored too (either edition may come first in a comparison):
    # each new municipality lies (mostly) in the municipality it was split from
    back = store.load_crosswalk("2020", "2015")
    main_part = back.sort_values("share").drop_duplicates("cvegeo_from", keep="last")
    assert dict(main_part.set_index("cvegeo_from").loc[list(CREATED_2015_2020), "cvegeo_to"]) \
        == CREATED_2015_2020
    # the web layer of the stored vintage is served from the same store
    from riskmap.web.weblayer import cached_web_layer

    body, _ = cached_web_layer(store, "2020")
    assert len(json.loads(gzip.decompress(body))["features"]) == 2469


def test_refuses_to_replace_other_editions(tmp_path):
    from riskmap.errors import InputError
    from riskmap.ingest.boundaries import read_boundaries
    from riskmap.inegi.imported import import_edition

    bpath, tpath, _ = _small_country(tmp_path)
    data = tmp_path / "data"
    store = DataStore(data)
    other = import_edition("2017", pd.DataFrame({"cvegeo": ["20004"], "level": ["alto"]}),
                           read_boundaries(bpath), vintage="2020", allow_missing=True)
    path = store.publish_edition(other)
    before = path.read_bytes()
    with pytest.raises(InputError, match="already publishes edition.*2017.*--replace"):
        build_semisynthetic(data, bpath, tpath, config=SimConfig(n_census=3000, n_survey=3000))
    assert path.read_bytes() == before
    assert store.edition_names() == ["2017"]


#: Municipalities created after the 2020 census (Marco Geoestadístico since 2023) and the
#: municipality each was carved from; they have no 2020 census data.
CREATED_AFTER_2020 = {"02007": "02002", "04013": "04001", "12082": "12052",
                      "12083": "12023", "12084": "12062", "12085": "12053"}


def _todays_marco(mx_dir):
    """The 2020 boundaries plus the six post-2020 municipalities, each cut from its parent."""
    from riskmap.ingest.boundaries import read_boundaries

    gdf = read_boundaries(mx_dir / "municipios_2020.geojson").set_index("cvegeo")
    new_rows = []
    for child, parent in CREATED_AFTER_2020.items():
        geom = gdf.at[parent, "geometry"]
        xmin, ymin, xmax, ymax = geom.bounds
        cut = box(xmin - 1, ymin - 1, (xmin + xmax) / 2, ymax + 1)  # west half -> new code
        gdf.at[parent, "geometry"] = geom.difference(cut)
        new_rows.append({"cvegeo": child, "cve_ent": child[:2], "cve_mun": child[2:],
                         "nom_ent": gdf.at[parent, "nom_ent"], "nom_mun": f"Nuevo {child}",
                         "geometry": geom.intersection(cut)})
    out = pd.concat([gdf.reset_index(), gpd.GeoDataFrame(new_rows, crs=gdf.crs)],
                    ignore_index=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=4326)


@pytest.mark.slow
def test_post_2020_municipalities_are_sin_informacion_not_dropped(mx_dir, tmp_path):
    marco = _todays_marco(mx_dir)
    assert len(marco) == 2475
    path = tmp_path / "marco_2023.gpkg"
    marco.to_file(path, layer="municipios")
    config = SimConfig(n_census=60_000, n_survey=12_000, editions=(EDITIONS[2],))
    with pytest.warns(UserWarning, match="6 municipalities have no census data"):
        result = build_semisynthetic(tmp_path / "data", path,
                                     mx_dir / "censo2020_municipal.csv", config=config,
                                     vintage="2023")
    assert sorted(result["no_data"]) == sorted(CREATED_AFTER_2020)
    store = DataStore(tmp_path / "data")
    rows = store.load_edition("2023").rows.set_index("cvegeo")
    assert len(rows) == 2475
    assert (rows.loc[list(CREATED_AFTER_2020), "level"] == "sin_informacion").all()
    assert rows.loc[list(CREATED_AFTER_2020), "probability"].isna().all()
    # their parents keep their census data and a level
    parents = rows.loc[list(CREATED_AFTER_2020.values())]
    assert (parents["level"] != "sin_informacion").all()
    # the only other ones: municipalities with fewer children than the edition minimum of
    # census records (a census sample cannot exceed a full count)
    table = pd.read_csv(mx_dir / "censo2020_municipal.csv", dtype={"cvegeo": str})
    tiny = set(table.loc[table["pob_5_17"] < 30, "cvegeo"])
    assert 0 < len(tiny) < 10
    assert set(rows.index[rows["level"] == "sin_informacion"]) == set(CREATED_AFTER_2020) | tiny
    # and they are drawn on the map
    from riskmap.web.weblayer import cached_web_layer

    body, _ = cached_web_layer(store, "2023")
    feats = {f["properties"]["cvegeo"]: f for f in json.loads(gzip.decompress(body))["features"]}
    assert len(feats) == 2475
    assert all(feats[c]["geometry"] is not None for c in CREATED_AFTER_2020)


def test_census_sample_never_exceeds_the_children(tmp_path):
    _, _, tab = _small_country(tmp_path)
    tab = tab.astype({"pob_5_17": float})
    tab.loc[tab.index[:3], "pob_5_17"] = [12, 25.4, 0.3]  # tiny municipalities
    params = municipal_parameters(tab)
    census = simulate_census(params, SimConfig(n_census=20_000), np.random.default_rng(0))
    n = census.groupby("cvegeo").size().reindex(params.index, fill_value=0)
    kids = params["children"].fillna(0)
    assert (n <= np.round(kids)).all()
    assert n.iloc[:3].tolist() == [12, 25, 0]
    assert (n.iloc[3:] >= SimConfig().min_census_per_municipality).all()
    weights = census.groupby("cvegeo")["weight"].sum()
    np.testing.assert_allclose(weights, kids[weights.index])


@pytest.mark.parametrize("args, option", [
    (["simulate", "--boundaries", "b.gpkg", "--census-table", "t.csv",
      "--census-records", "-5"], "--census-records"),
    (["simulate", "--boundaries", "b.gpkg", "--census-table", "t.csv",
      "--survey-records", "10"], "--survey-records"),
    (["crosswalk", "--from", "a.gpkg", "--to", "b.gpkg", "-o", "x.csv",
      "--min-share", "2"], "--min-share"),
])
def test_cli_sizes_out_of_range_exit_2_naming_the_option(tmp_path, args, option):
    result = CliRunner().invoke(cli, args + ["--data-dir", str(tmp_path)]
                                if args[0] == "simulate" else args)
    assert result.exit_code == 2
    assert option in result.output and "range" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "editions").exists()
