"""The synthetic demo inputs: determinism, codes, vintages, splits, contiguity, structure, rates."""

from __future__ import annotations

import hashlib
import json
import warnings

import geopandas as gpd
import numpy as np
import numpy.testing as npt
import pandas as pd
import pyogrio
import pytest
import shapely

from riskmap.model.compare import compare
from riskmap.demo import DemoConfig, build_demo_inputs
from riskmap.demo.population import RECORD_COVARIATES, TRUE_MODELS

SMALL = DemoConfig.small()
SEED = 11
CODES = {"cvegeo": str, "cve_ent": str, "cve_mun": str}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Paths of one tiny demo country (seed 11)."""
    return build_demo_inputs(tmp_path_factory.mktemp("small-demo"), seed=SEED, config=SMALL)


def _bound(paths, vintage, layer="municipios"):
    gdf = pyogrio.read_dataframe(paths["boundaries"][vintage], layer=layer)
    for col in CODES:
        if col in gdf.columns:
            gdf[col] = gdf[col].astype(str)
    return gdf


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _byte_files(paths):
    files = {"raster": paths["raster"], "coef": paths["truth"]["coefficients"],
             "meta": paths["truth"]["editions"]}
    files.update({f"census_{k}": v for k, v in paths["census"].items()})
    files.update({f"survey_{k}": v for k, v in paths["survey"].items()})
    files.update({f"truth_{k}": v for k, v in paths["truth"]["municipal"].items()})
    return files


def test_same_seed_same_files_other_seed_other_files(small, tmp_path):
    again = build_demo_inputs(tmp_path / "again", seed=SEED, config=SMALL)
    a, b = _byte_files(small), _byte_files(again)
    assert {k: _digest(v) for k, v in a.items()} == {k: _digest(v) for k, v in b.items()}
    # GeoPackages hold write timestamps: compare their content instead of their bytes.
    for vintage in ("2015", "2020"):
        for layer in ("municipios", "estados"):
            x, y = _bound(small, vintage, layer), _bound(again, vintage, layer)
            pd.testing.assert_frame_equal(x.drop(columns="geometry"), y.drop(columns="geometry"))
            assert (shapely.to_wkb(x.geometry.to_numpy()) ==
                    shapely.to_wkb(y.geometry.to_numpy())).all()
    other = build_demo_inputs(tmp_path / "other", seed=SEED + 1, config=SMALL)
    c = _byte_files(other)
    assert _digest(c["survey_2023"]) != _digest(a["survey_2023"])
    assert _digest(c["raster"]) != _digest(a["raster"])
    assert not _bound(other, "2015").geometry.geom_equals(_bound(small, "2015").geometry).all()


def test_codes_follow_inegi_layout(small):
    for vintage in ("2015", "2020"):
        gdf = _bound(small, vintage)
        assert list(gdf.columns[:5]) == ["cvegeo", "cve_ent", "cve_mun", "nom_ent", "nom_mun"]
        assert gdf["cvegeo"].str.fullmatch(r"\d{5}").all()
        assert (gdf["cvegeo"] == gdf["cve_ent"] + gdf["cve_mun"]).all()
        assert gdf["cvegeo"].is_unique
        assert sorted(gdf["cve_ent"].unique()) == [f"{i:02d}" for i in range(1, SMALL.n_states + 1)]
        assert gdf.crs.to_epsg() == 4326
        # Lon/lat roughly where Mexico is, so the web map opens somewhere sensible.
        xmin, ymin, xmax, ymax = gdf.total_bounds
        assert -120 < xmin < xmax < -84 and 12 < ymin < ymax < 34
        assert (gdf["nom_mun"].str.len() > 2).all()
        # Names are unique within a state, and some carry accents (search must fold them).
        assert not gdf.duplicated(["cve_ent", "nom_mun"]).any()
        assert gdf["nom_mun"].str.contains(r"[áéíóúñ]").any()
        assert not gdf["nom_mun"].str.contains(r"[<>\"]").any()
    estados = _bound(small, "2015", "estados")
    assert len(estados) == SMALL.n_states and estados["cve_ent"].is_unique
    # Older-vintage codes are alphabetical within each state (accents and case folded), as
    # INEGI's historical numbering; states too.
    from riskmap.demo.names import sort_key

    old = _bound(small, "2015").sort_values("cvegeo")
    for _, group in old.groupby("cve_ent"):
        keys = [sort_key(n) for n in group["nom_mun"]]
        assert keys == sorted(keys)
        assert group["cve_mun"].tolist() == [f"{i:03d}" for i in range(1, len(group) + 1)]
    keys = [sort_key(n) for n in estados.sort_values("cve_ent")["nom_ent"]]
    assert keys == sorted(keys)


def test_vintages_tile_the_same_country(small):
    old = _bound(small, "2015").to_crs(6372)
    new = _bound(small, "2020").to_crs(6372)
    outline_old, outline_new = old.union_all(), new.union_all()
    assert outline_old.geom_type == "Polygon"
    npt.assert_allclose(outline_new.area, outline_old.area, rtol=1e-9)
    # No overlaps: the areas of the parts add up to the area of their union.
    for gdf, outline in ((old, outline_old), (new, outline_new)):
        npt.assert_allclose(gdf.area.sum(), outline.area, rtol=1e-9)
        assert (gdf.geom_type == "Polygon").all()  # one piece per municipality
        assert gdf.is_valid.all()


def test_splits_keep_parent_codes_and_number_new_ones_last(small):
    old = _bound(small, "2015").to_crs(6372).set_index("cvegeo")
    new = _bound(small, "2020").to_crs(6372).set_index("cvegeo")
    meta = json.loads(small["truth"]["editions"].read_text(encoding="utf-8"))
    splits = pd.DataFrame(meta["splits"])
    assert len(new) - len(old) == SMALL.n_splits == len(splits)
    assert set(old.index) <= set(new.index)
    assert set(new.index) - set(old.index) == set(splits["child"])
    last_old = old.reset_index().groupby("cve_ent")["cve_mun"].max()
    for parent, child in splits.itertuples(index=False):
        assert parent[:2] == child[:2]
        assert int(child[2:]) > int(last_old[child[:2]])
        # Both parts come from the parent's 2015 territory, and together they fill it.
        p15 = old.geometry[parent]
        p20, c20 = new.geometry[parent], new.geometry[child]
        npt.assert_allclose(p20.intersection(p15).area, p20.area, rtol=1e-9)
        npt.assert_allclose(c20.intersection(p15).area, c20.area, rtol=1e-9)
        npt.assert_allclose(p20.area + c20.area, p15.area, rtol=1e-9)
        assert new.at[parent, "nom_mun"] == old.at[parent, "nom_mun"]
    unchanged = old.index.difference(splits["parent"])
    assert new.geometry[unchanged].geom_equals_exact(old.geometry[unchanged], 1e-6).all()


def test_states_are_contiguous_and_match_their_municipalities(small):
    munis = _bound(small, "2015")
    estados = _bound(small, "2015", "estados")
    assert (estados.geom_type == "Polygon").all()
    dissolved = munis.to_crs(6372).dissolve("cve_ent")
    assert (dissolved.geom_type == "Polygon").all()
    est = estados.to_crs(6372).set_index("cve_ent")
    npt.assert_allclose(dissolved.area.sort_index(), est.area.sort_index(), rtol=1e-7)
    names = munis.drop_duplicates("cve_ent").set_index("cve_ent")["nom_ent"].sort_index()
    assert (names == est["nom_ent"].sort_index()).all()


def _morans_i(gdf: gpd.GeoDataFrame, values: np.ndarray) -> float:
    """Moran's I with binary rook-like contiguity (shared boundary of positive length)."""
    geoms = gdf.geometry.to_numpy()
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = left != right
    left, right = left[keep], right[keep]
    shared = shapely.length(shapely.intersection(geoms[left], geoms[right])) > 0
    left, right = left[shared], right[shared]
    z = values - values.mean()
    return len(z) / len(left) * float((z[left] * z[right]).sum() / (z @ z))


def _spatial_checks(paths, gdf) -> dict:
    census = pd.read_parquet(paths["census"]["2015"])
    cols = ["rural", "indigenous_language", "head_schooling_years", "head_agriculture",
            "dirt_floor"]
    means = census.groupby("cvegeo")[cols].mean().reindex(gdf["cvegeo"])
    truth = pd.read_csv(paths["truth"]["municipal"]["2017"], dtype={"cvegeo": str})
    truth = truth.set_index("cvegeo").reindex(gdf["cvegeo"])
    checks = {c: means[c].to_numpy() for c in cols}
    checks["true_probability"] = truth["true_probability"].to_numpy()
    # without the municipal random effect, which is spatially independent by construction
    checks["true_probability_marginal"] = truth["true_probability_marginal"].to_numpy()
    return checks


def test_covariates_are_spatially_structured(small):
    gdf = _bound(small, "2015").to_crs(6372)
    checks = _spatial_checks(small, gdf)
    morans = {k: round(_morans_i(gdf, v), 3) for k, v in checks.items()}
    print(morans)
    # The tiny country has municipalities ~100 km across, close to the scale of the covariate
    # surfaces, so its autocorrelation is weaker than the full demo's (checked below).
    assert all(m > 0.3 for k, m in morans.items() if not k.startswith("true_")), morans
    assert morans["true_probability_marginal"] > 0.2
    # The municipal random effect (SD 0.4, independent between municipalities) dilutes the
    # autocorrelation of the municipalities' own probabilities in the tiny country.
    assert morans["true_probability"] > 0.1
    # Sanity check of the statistic itself: shuffled values are not autocorrelated.
    shuffled = np.random.default_rng(0).permutation(checks["rural"])
    assert abs(_morans_i(gdf, shuffled)) < 0.15


@pytest.mark.slow
def test_full_demo_maps_show_regions(demo_dir):
    paths = {"census": {"2015": demo_dir / "demo" / "census_2015.parquet"},
             "truth": {"municipal": {"2017": demo_dir / "demo" / "truth" / "municipal_2017.csv"}}}
    gdf = pyogrio.read_dataframe(demo_dir / "demo" / "boundaries_2015.gpkg", layer="municipios")
    gdf = gdf.to_crs(6372)
    morans = {k: round(_morans_i(gdf, v), 3) for k, v in _spatial_checks(paths, gdf).items()}
    print(morans)
    assert all(m > 0.5 for m in morans.values()), morans


def test_rates_and_survey_design(small):
    for model in TRUE_MODELS:
        truth = pd.read_csv(small["truth"]["municipal"][model.edition], dtype={"cvegeo": str})
        # The true model is calibrated on the census population: exact rate.
        npt.assert_allclose(np.average(truth["true_probability"], weights=truth["children"]),
                            model.rate, atol=1e-9)
        survey = pd.read_parquet(small["survey"][model.edition])
        rate = np.average(survey["child_labour"], weights=survey["weight"])
        assert abs(rate - model.rate) < 0.02, (model.edition, rate)
        assert survey["strata"].nunique() == 2 * SMALL.n_states
        assert survey.groupby("strata")["psu"].nunique().min() >= 2
        assert survey["psu"].str.fullmatch(r"\d{2}-[UR]-\d{4}").all()
        assert (survey["psu"].str[:4] == survey["strata"]).all()
        assert (survey["cvegeo"].str[:2] == survey["strata"].str[:2]).all()
        assert (survey["rural"] == (survey["strata"].str[3] == "R")).all()
        assert set(survey["child_labour"].unique()) == {0, 1}
        assert (survey["weight"] > 0).all()
        codes = set(_bound(small, model.vintage)["cvegeo"])
        assert set(survey["cvegeo"]) <= codes


def test_census_records_schema_and_weights(small):
    for census, vintage in (("2015", "2015"), ("2020", "2020")):
        records = pd.read_parquet(small["census"][census])
        assert list(records.columns) == ["cvegeo", "weight", *RECORD_COVARIATES]
        assert records["cvegeo"].dtype == "str" or records["cvegeo"].dtype == object
        assert records["age"].between(5, 17).all()
        for col in ("male", "attends_school", "rural", "dirt_floor", "head_agriculture"):
            assert set(records[col].unique()) <= {0.0, 1.0}
        truth = pd.read_csv(small["truth"]["municipal"]["2017" if census == "2015" else "2023"],
                            dtype={"cvegeo": str}).set_index("cvegeo")
        children = records.groupby("cvegeo")["weight"].sum()
        npt.assert_allclose(children.reindex(truth.index), truth["children"], rtol=1e-9)
        assert set(records["cvegeo"]) == set(_bound(small, vintage)["cvegeo"])


def test_truth_coefficients_file(small):
    coef = json.loads(small["truth"]["coefficients"].read_text(encoding="utf-8"))
    assert list(coef) == ["2017", "2019", "2023"]
    for model in TRUE_MODELS:
        assert list(coef[model.edition]) == ["intercept", *RECORD_COVARIATES, "cropland_share"]
        assert coef[model.edition]["cropland_share"] == model.slopes["cropland_share"]
    # Coefficients change between editions.
    assert coef["2017"]["attends_school"] != coef["2023"]["attends_school"]


def test_config_rejects_too_many_states(tmp_path):
    with pytest.raises(ValueError, match="between 1 and 32 states"):
        build_demo_inputs(tmp_path, seed=1, config=DemoConfig(n_states=33))


@pytest.mark.slow
def test_full_demo_inputs_have_the_documented_sizes(demo_dir):
    meta = json.loads((demo_dir / "demo" / "truth" / "editions.json").read_text(encoding="utf-8"))
    assert meta["seed"] == 20240601
    old = pyogrio.read_dataframe(demo_dir / "demo" / "boundaries_2015.gpkg", layer="municipios",
                                read_geometry=False)
    new = pyogrio.read_dataframe(demo_dir / "demo" / "boundaries_2020.gpkg", layer="municipios",
                                read_geometry=False)
    assert 2300 <= len(old) <= 2500 and len(new) - len(old) == 12
    assert old["cve_ent"].nunique() == 32
    census = pd.read_parquet(demo_dir / "demo" / "census_2020.parquet", columns=["cvegeo"])
    assert 450_000 <= len(census) <= 550_000
    for edition in ("2017", "2019", "2023"):
        survey = pd.read_parquet(demo_dir / "demo" / f"survey_{edition}.parquet",
                                 columns=["strata", "psu", "child_labour", "weight"])
        assert 30_000 <= len(survey) <= 40_000
        assert 1_500 <= survey["psu"].nunique() <= 2_500
        assert survey["strata"].nunique() == 64
        rate = np.average(survey["child_labour"], weights=survey["weight"])
        target = meta["editions"][edition]["rate"]
        print(edition, "survey rate", round(rate, 4), "target", target)
        assert abs(rate - target) < 0.006


def test_project_readers_accept_the_demo_files(small):
    """The demo files honour the ARCHITECTURE contracts: the project's own readers take them."""
    import warnings

    from riskmap.ingest.boundaries import read_boundaries
    from riskmap.ingest.raster import zonal_mean
    from riskmap.ingest.records import read_records
    from riskmap.paths import MODELS_DIR
    from riskmap.spec import load_spec

    spec = load_spec(MODELS_DIR / "demo.toml")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # clean files: nothing to repair or guess
        gdf = read_boundaries(small["boundaries"]["2020"], layer="municipios")
        cropland = zonal_mean(small["raster"], gdf)
    ours = _bound(small, "2020").sort_values("cvegeo").reset_index(drop=True)
    pd.testing.assert_frame_equal(gdf.drop(columns="geometry").reset_index(drop=True),
                                  ours.drop(columns="geometry")[list(gdf.columns[:-1])])
    assert cropland.between(0, 1).all() and cropland.std() > 0.02
    survey = read_records(small["survey"]["2023"], "survey", spec, {"cropland_share": cropland})
    census = read_records(small["census"]["2020"], "census", spec, {"cropland_share": cropland})
    assert len(survey) == len(pd.read_parquet(small["survey"]["2023"]))
    assert list(census.columns) == ["cvegeo", "weight", *spec.names]


def test_build_demo_publishes_everything_for_a_tiny_country(tmp_path):
    """End-to-end wiring on a tiny country: vintages, crosswalk, three synthetic editions."""
    from riskmap.demo import build_demo
    from riskmap.publish.store import DataStore

    messages = []
    paths = build_demo(tmp_path, seed=3, progress=messages.append, config=SMALL)
    store = DataStore(tmp_path)
    assert store.vintage_names() == ["2015", "2020"]
    assert store.edition_names() == ["2017", "2019", "2023"]
    assert len(store.load_vintage("2015", layer="estados")) == SMALL.n_states
    crosswalk = store.load_crosswalk("2015", "2020")
    meta = json.loads(paths["truth"]["editions"].read_text(encoding="utf-8"))
    split_parents = {s["parent"] for s in meta["splits"]}
    multi = crosswalk.groupby("cvegeo_from")["cvegeo_to"].nunique()
    assert set(multi[multi > 1].index) == split_parents
    # the reverse direction: each split-off municipality lies wholly in its parent
    reverse = store.load_crosswalk("2020", "2015")
    children = {s["child"]: s["parent"] for s in meta["splits"]}
    rows = reverse[reverse["cvegeo_from"].isin(children)]
    assert dict(zip(rows["cvegeo_from"], rows["cvegeo_to"])) == children
    assert len(rows) == len(children)
    # comparing the newer edition against the older one needs no missing crosswalk
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        compare(store.load_edition("2023"), store.load_edition("2017"), store=store)
    for name, vintage in (("2017", "2015"), ("2019", "2020"), ("2023", "2020")):
        card = store.load_card(name)
        assert card["synthetic"] is True and card["vintage"] == vintage
        assert all(s["synthetic"] for s in card["sources"])
        assert any("sintétic" in s["name"] for s in card["sources"])
        assert "cropland_share" in [c["name"] for c in card["coefficients"]]
    assert any("edition 2023" in m for m in messages)
    assert set(paths["timings"]) >= {"geography", "census", "edition_2023"}
    assert "SINTÉTICOS" in paths["readme"].read_text(encoding="utf-8")
