"""Atlas: the web service's in-memory, read-only view of a data directory."""

from __future__ import annotations

import gzip
import json
import math
import os

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from riskmap.publish.edition import LEVELS, ROW_COLUMNS
from riskmap.errors import BadParameter, NotFound
from riskmap.publish.store import DataStore
from riskmap.choices import fold
from riskmap.web.atlas import Atlas

from webdata import EVIL_NAME, NO_INFO, SPLITS, build_fake_atlas


def test_editions_oldest_first_with_metadata(atlas):
    assert atlas.editions() == [
        {"name": "2017", "year": 2017, "kind": "modelled", "vintage": "2015", "synthetic": True,
         "semi_synthetic": False},
        {"name": "2023", "year": 2023, "kind": "modelled", "vintage": "2020", "synthetic": True,
         "semi_synthetic": False},
    ]
    assert atlas.latest() == "2023"


def test_unknown_edition_lists_published_ones(atlas):
    with pytest.raises(NotFound, match=r"'1999' is not published; published: 2017, 2023"):
        atlas.edition("1999")
    with pytest.raises(NotFound, match="published: 2017, 2023"):
        atlas.rows("../etc")


def test_latest_without_editions(tmp_path):
    with pytest.raises(NotFound, match="no edition"):
        Atlas(tmp_path).latest()


def test_rows_filters_and_order(atlas, fake_dir):
    stored = DataStore(fake_dir).load_edition("2017").rows
    table = atlas.rows("2017")
    assert list(table.columns[:len(ROW_COLUMNS)]) == list(ROW_COLUMNS)
    assert "geometry" not in table.columns
    assert table["cvegeo"].tolist() == sorted(stored["cvegeo"])
    alto22 = atlas.rows("2017", state="22", level="alto")
    expected = stored[(stored["cve_ent"] == "22") & (stored["level"] == "alto")]
    assert sorted(alto22["cvegeo"]) == sorted(expected["cvegeo"])
    assert EVIL_NAME in set(alto22["nom_mun"])
    # One-digit state codes are accepted as their two-digit form.
    assert atlas.rows("2017", state="7")["cve_ent"].unique().tolist() == ["07"]


def test_rows_bad_filters_list_allowed_values(atlas):
    with pytest.raises(BadParameter, match="'estado'; allowed: 07, 12, 22, 30"):
        atlas.rows("2017", state="99")
    with pytest.raises(BadParameter, match="allowed: alto, medio, bajo, sin_informacion"):
        atlas.rows("2017", level="altisimo")


def test_rows_returns_a_copy(atlas):
    table = atlas.rows("2017")
    table.loc[0, "probability"] = -1.0
    assert atlas.rows("2017").loc[0, "probability"] != -1.0


def test_reload_when_edition_file_changes(tmp_path):
    root = build_fake_atlas(tmp_path)
    atlas = Atlas(root)
    assert atlas.rows("2017").loc[0, "nom_mun"] == "Tuxtla Gutiérrez"
    store = DataStore(root)
    edition = store.load_edition("2017")
    edition.rows.loc[edition.rows["cvegeo"] == "07001", "nom_mun"] = "Nuevo nombre"
    store.publish_edition(edition)
    path = store.edition_path("2017")
    st = path.stat()  # make sure the modification time moves even on coarse clocks
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    assert atlas.rows("2017").loc[0, "nom_mun"] == "Nuevo nombre"
    assert atlas.search("nuevo nombre", "2017")[0]["cvegeo"] == "07001"


def test_municipality_row_factors_and_ranks(atlas, fake_dir):
    m = atlas.municipality("2017", "22006")
    assert m["nom_mun"] == EVIL_NAME
    assert m["level"] == "alto" and m["rank_national"] == 1 and m["rank_state"] == 1
    assert m["n_ranked"] == 40 - len(NO_INFO["2017"])
    assert m["n_ranked_state"] == 10
    contributions = [f["contribution"] for f in m["factors"]]
    assert len(contributions) == 10 and contributions == sorted(contributions, reverse=True)
    stored = DataStore(fake_dir).load_edition("2017").factors
    mine = stored[stored["cvegeo"] == "22006"].set_index("covariate")["contribution"]
    assert_allclose([f["contribution"] for f in m["factors"]],
                    mine.loc[[f["covariate"] for f in m["factors"]]].to_numpy())
    assert {f["label_es"] for f in m["factors"]} >= {"Edad", "Hombre"}
    json.dumps(m, allow_nan=False)  # JSON-ready: no NaN, no numpy scalars


def test_municipality_without_information_has_nulls(atlas):
    m = atlas.municipality("2023", "22011")
    assert m["level"] == "sin_informacion"
    assert m["probability"] is None and m["rank_national"] is None and m["factors"] == []
    json.dumps(m, allow_nan=False)


def test_layer_table_of_whole_edition_is_built_once(atlas):
    from riskmap.web import maps

    values, legends = atlas.layer_table("2023")
    assert (values, legends) == maps.layer_table(atlas.rows("2023"))
    assert atlas.layer_table("2023")[0] is values  # cached per edition file, not per request
    assert set(values) == set(atlas.rows("2023")["cvegeo"])


def test_unknown_municipality(atlas):
    with pytest.raises(NotFound, match="'99999' is not in edition 2023"):
        atlas.municipality("2023", "99999")


def test_history_of_split_municipality_takes_parent_value(atlas):
    new, (parent, _) = next(iter(SPLITS.items()))
    hist = atlas.history(new)
    assert [h["edition"] for h in hist] == ["2017", "2023"]
    first, second = hist
    assert first["derived_from"] == parent and first["cvegeo"] == parent
    assert_allclose(first["probability"], atlas.municipality("2017", parent)["probability"])
    assert second["derived_from"] is None and second["cvegeo"] == new


def test_history_parent_is_the_largest_part_of_the_new_municipality(tmp_path):
    """A neighbour that gave a large share of its own (small) area is not the parent when the
    big parent makes up most of the new municipality: the rule of riskmap.model.compare."""
    build_fake_atlas(tmp_path)
    store = DataStore(tmp_path)
    new, (parent, _) = next(iter(SPLITS.items()))
    cw = store.load_crosswalk("2015", "2020")
    cw["share_to"] = 1.0
    cw.loc[cw["cvegeo_to"] == new, ["share", "share_to"]] = [0.1, 0.9]
    neighbour = next(c for c in cw["cvegeo_from"] if c != parent and c[:2] == parent[:2])
    cw.loc[len(cw)] = [neighbour, new, 0.4, 0.1]
    store.save_crosswalk("2015", "2020", cw)
    hist = Atlas(tmp_path).history(new)
    assert hist[0]["derived_from"] == parent


def test_history_change_significance_follows_method(atlas):
    hist = atlas.history("22006")
    a, b = atlas.municipality("2017", "22006"), atlas.municipality("2023", "22006")
    change = hist[1]["change"]
    assert hist[0]["change"] is None
    sd = math.sqrt(a["se"] ** 2 + b["se"] ** 2)
    assert_allclose([change["diff"], change["sd"]], [b["probability"] - a["probability"], sd])
    assert change["significant"] == (abs(change["diff"]) > 1.96 * sd)
    assert change["direction"] == ("decrease" if change["significant"] else "none")
    assert change["change"] == ("disminucion" if change["significant"] else "sin_cambio")
    # Every change across the atlas obeys the same rule.
    for code in atlas.rows("2023")["cvegeo"]:
        for h in atlas.history(code):
            c = h["change"]
            if c is not None:
                assert c["significant"] == (abs(c["diff"]) > 1.96 * c["sd"])


def test_history_unknown_code(atlas):
    with pytest.raises(NotFound, match="in no published edition"):
        atlas.history("55555")


def test_neighbours_touching_polygons(atlas):
    got = {n["cvegeo"] for n in atlas.neighbours("2020", "22011")}
    assert got == {"22001", "22002", "12001", "12002", "30001", "30002"}
    # In 2015 the parent was whole: its eastern neighbour is 22002.
    assert {n["cvegeo"] for n in atlas.neighbours("2015", "22001")} == {
        "22002", "12001", "12002", "30001", "30002"}
    values = {n["cvegeo"]: n for n in atlas.neighbours("2020", "22011", edition="2023")}
    assert values["22001"]["level"] == atlas.municipality("2023", "22001")["level"]
    with pytest.raises(NotFound):
        atlas.neighbours("2020", "99999")


def test_states_bounds(atlas):
    states = atlas.states("2020")
    assert [s["cve_ent"] for s in states] == ["07", "12", "22", "30"]
    qro = states[2]
    assert qro["nom_ent"] == "Querétaro"
    assert_allclose(qro["bbox"], [-100.0, 17.0, -95.0, 17.5])
    assert_allclose(np.array(qro["bounds"]).ravel(), [17.0, -100.0, 17.5, -95.0])


@pytest.mark.parametrize("query, first", [
    ("queretaro", "22001"), ("QUERÉTARO", "22001"), ("san jose", "22002"),
    ("Penon", "22003"), ("jáuregui", "22011"), ("22011", "22011"), ("brien", "22006"),
])
def test_search_accent_insensitive(atlas, query, first):
    assert atlas.search(query, "2023")[0]["cvegeo"] == first


def test_search_ranking_and_limits(atlas):
    codes = [m["cvegeo"] for m in atlas.search("220", "2023")]
    assert codes == sorted(codes) and len(codes) == 11  # 22001..22010 and the new 22011
    assert atlas.search("", "2023") == []
    assert len(atlas.search("a", "2023", limit=3)) == 3
    assert fold("  Peñón ÁÉ ") == "penon ae"


def test_geometry_is_gzipped_geojson_with_etag(atlas):
    body, etag = atlas.geometry("2020")
    layer = json.loads(gzip.decompress(body))
    assert layer["type"] == "FeatureCollection" and len(layer["features"]) == 42
    assert etag.startswith('"') and atlas.geometry("2020") == (body, etag)
    with pytest.raises(NotFound, match="stored: 2015, 2020"):
        atlas.geometry("1990")


def test_geometry_attribution_follows_a_new_edition_on_its_vintage(tmp_path):
    """A new edition on a vintage, with another credit, changes the layer's attribution
    (the layer was cached by the vintage file only, so the old credit stayed)."""
    root = build_fake_atlas(tmp_path)
    atlas = Atlas(root)
    before = {}
    for fmt in ("geojson", "topojson"):
        body, before[fmt] = atlas.geometry("2020", fmt)
        assert "attribution" not in json.loads(gzip.decompress(body))
    store = DataStore(root)
    edition = store.load_edition("2023")
    edition.name = "2024"
    credit = {"es": "Fuente: INEGI, Marco Geoestadístico 2020.",
              "en": "Source: INEGI, Geostatistical Framework 2020."}
    edition.card = dict(edition.card, edition="2024", year=2024, attribution=credit)
    store.publish_edition(edition)
    for fmt in ("geojson", "topojson"):
        body, etag = atlas.geometry("2020", fmt)
        assert json.loads(gzip.decompress(body))["attribution"] == credit
        assert etag != before[fmt]  # clients holding the old layer get the new one
    # The other vintage carries no edition with a credit: unchanged.
    assert "attribution" not in json.loads(gzip.decompress(atlas.geometry("2015")[0]))


def test_comparison_recomputed_when_a_crosswalk_is_stored(tmp_path):
    pytest.importorskip("riskmap.model.compare")
    root = build_fake_atlas(tmp_path)
    atlas = Atlas(root)
    first = atlas.comparison("2017", "2023")
    assert atlas.comparison("2017", "2023") is first
    assert atlas.comparison_summary("2017", "2023") is atlas.comparison_summary("2017", "2023")
    store = DataStore(root)
    store.save_crosswalk("2020", "2015", store.load_crosswalk("2015", "2020").rename(
        columns={"cvegeo_from": "cvegeo_to", "cvegeo_to": "cvegeo_from"}))
    assert atlas.comparison("2017", "2023") is not first


def test_worklists_computed_once_per_key_and_bounded(atlas):
    from riskmap.web.atlas import WORKLIST_CACHE

    first = atlas.targeting_records("2023", 50, 0.05)
    assert atlas.targeting_records("2023", 50, 0.05) is first
    for visits in range(1, WORKLIST_CACHE + 1):
        atlas.targeting_records("2023", visits, 0.05)
    assert atlas.targeting_records("2023", 50, 0.05) is not first  # evicted, rebuilt
    assert atlas.targeting_records("2023", 50, 0.05) == first


def test_comparison_delegates_and_is_cached(atlas):
    comparison = atlas.comparison("2017", "2023")
    assert atlas.comparison("2017", "2023") is comparison
    changes = comparison.changes.set_index("cvegeo")
    assert changes.at["22011", "derived_from"] == "22001"
    # The per-municipality history agrees with the library's comparison.
    for code in ("22006", "07001", "30005"):
        mine = atlas.history(code)[1]["change"]
        assert mine["change"] == changes.at[code, "change"]
        assert_allclose(mine["diff"], changes.at[code, "diff"])


def test_targeting_validates_and_delegates(atlas):
    worklist = atlas.targeting("2023", 100, 0.1, ["22"], ["alto", "medio"], "conteo")
    assert len(worklist) > 0 and worklist["visits"].sum() == 100
    assert set(worklist["cvegeo"].str[:2]) == {"22"}
    assert set(worklist["level"]) <= {"alto", "medio"}
    worklist.loc[0, "visits"] = -5  # callers get copies of the cached worklist
    again = atlas.targeting("2023", 100, 0.1, ["22"], ["alto", "medio"], "conteo")
    assert again["visits"].sum() == 100
    by_rate = atlas.targeting("2023", 100, 0.1, ["22"], ["alto", "medio"], "tasa")
    assert by_rate["visits"].sum() == 100
    with pytest.raises(BadParameter, match="allowed: 07, 12, 22, 30"):
        atlas.targeting("2023", 100, 0.1, ["99"], None, "conteo")
    with pytest.raises(BadParameter, match="allowed: conteo, tasa"):
        atlas.targeting("2023", 100, 0.1, None, None, "otro")


def test_levels_all_present_in_fake_data(atlas):
    for name in ("2017", "2023"):
        assert set(atlas.rows(name)["level"]) == set(LEVELS)
    assert isinstance(atlas.rows("2017")["rank_national"].dtype, pd.Int64Dtype)


@pytest.mark.realdata
def test_neighbours_on_real_2020_boundaries(mx_dir, tmp_path):
    import geopandas as gpd

    mun = gpd.read_file(mx_dir / "municipios_2020.geojson")
    for col in ("cvegeo", "cve_ent", "cve_mun"):
        mun[col] = mun[col].astype(str)
    DataStore(tmp_path).save_vintage("2020", mun)
    atlas = Atlas(tmp_path)
    got = {n["cvegeo"] for n in atlas.neighbours("2020", "01001")}
    # Aguascalientes (city) borders Jesús María and San Francisco de los Romo.
    assert {"01005", "01011"} <= got and "01001" not in got
    adjacency = {code: {n["cvegeo"] for n in atlas.neighbours("2020", code)}
                 for code in mun["cvegeo"]}
    assert all(code in adjacency[other] for code, others in adjacency.items() for other in others)
    degrees = np.array([len(v) for v in adjacency.values()])
    assert (degrees > 0).mean() > 0.99
    assert 4.0 < degrees.mean() < 8.0  # planar map: mean degree just under 6
    states = atlas.states("2020")
    assert len(states) == 32 and states[0]["nom_ent"] == "Aguascalientes"


def test_capabilities_of_modelled_and_imported_editions(imported_dir):
    from riskmap.web.notices import capabilities

    atlas = Atlas(imported_dir)
    modelled, imported = capabilities(atlas, "2017"), capabilities(atlas, "2023")
    assert not modelled["imported"] and modelled["se"] and modelled["factors"] and modelled["model"]
    assert modelled["expected"] and modelled["interval"] and modelled["probability"]
    assert imported["imported"] and not imported["se"] and not imported["factors"]
    assert not imported["model"]
    imported["se"] = "changed"  # callers get copies of the per-edition value
    assert capabilities(atlas, "2023")["se"] is False
