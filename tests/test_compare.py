"""Edition comparison: alignment through the crosswalk, counts, transitions, significance."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from riskmap.model.compare import compare, compare_editions
from riskmap.publish.edition import LEVELS, Edition
from riskmap.errors import InputError, NotFound

NAMES = {"01": "Aguascalientes", "02": "Baja California"}


def edition(name, vintage, rows, se=True):
    df = pd.DataFrame(rows, columns=["cvegeo", "level", "probability", "se"])
    if not se:
        df = df.drop(columns="se")
    df["cve_ent"] = df["cvegeo"].str[:2]
    df["nom_ent"] = df["cve_ent"].map(NAMES)
    df["nom_mun"] = "Mun " + df["cvegeo"]
    return Edition(name, gpd.GeoDataFrame(df), pd.DataFrame(),
                   {"edition": name, "vintage": vintage, "kind": "modelled"})


A_ROWS = [("01001", "alto", 0.30, 0.02), ("01002", "medio", 0.12, 0.03),
          ("01003", "bajo", 0.05, 0.01), ("02001", "alto", 0.25, 0.02),
          ("02002", "sin_informacion", np.nan, np.nan)]
B_ROWS = [("01001", "medio", 0.20, 0.03), ("01002", "alto", 0.22, 0.02),
          ("01003", "bajo", 0.055, 0.01), ("02001", "alto", 0.26, 0.02),
          ("02003", "medio", 0.18, 0.05), ("02004", "bajo", 0.04, 0.01)]
CROSSWALK = pd.DataFrame({
    "cvegeo_from": ["01001", "01002", "01003", "02001", "02001", "01003", "02002"],
    "cvegeo_to": ["01001", "01002", "01003", "02001", "02003", "02003", "02001"],
    "share": [1.0, 1.0, 0.9, 0.6, 0.4, 0.1, 1.0],
})


@pytest.fixture
def comparison():
    return compare_editions(edition("2017", "2015", A_ROWS), edition("2023", "2020", B_ROWS),
                            crosswalk=CROSSWALK)


def test_alignment_onto_b_with_parents(comparison):
    ch = comparison.changes.set_index("cvegeo")
    assert ch.index.tolist() == ["01001", "01002", "01003", "02001", "02003", "02004"]
    assert ch.loc["02003", "derived_from"] == "02001"  # largest share among its parents
    assert ch.loc["02003", "alignment"] == "derived"
    assert ch.loc["02003", "level_a"] == "alto"
    assert_allclose(ch.loc["02003", "probability_a"], 0.25)
    assert ch.loc["02004", "alignment"] == "unmatched"
    assert ch.loc["02004", "level_a"] == "sin_informacion"
    assert ch.loc["02004", "change"] == "sin_informacion"
    assert pd.isna(ch.loc["01001", "derived_from"]) and ch.loc["01001", "alignment"] == "same"


def test_significant_changes(comparison):
    ch = comparison.changes.set_index("cvegeo")
    sd = np.sqrt(0.02**2 + 0.03**2)
    assert_allclose(ch.loc["01001", "diff"], -0.10)
    assert_allclose(ch.loc["01001", "sd"], sd)
    assert_allclose(ch.loc["01001", "z"], -0.10 / sd)
    assert ch.loc["01001", "change"] == "disminucion"
    assert ch.loc["01002", "change"] == "aumento"
    assert ch.loc["01003", "change"] == "sin_cambio"
    assert ch.loc["02001", "change"] == "sin_cambio"
    # 0.18 - 0.25 = -0.07 with sd sqrt(.02^2+.05^2)=0.054: not significant
    assert ch.loc["02003", "change"] == "sin_cambio"


def test_counts_transitions_and_alto_lists(comparison):
    counts = comparison.counts
    assert counts.index.tolist() == list(LEVELS)
    assert counts.columns.tolist() == ["2017", "2023"]
    assert counts["2017"].tolist() == [2, 1, 1, 1]
    assert counts["2023"].tolist() == [2, 2, 2, 0]
    t = comparison.transitions
    assert t.index.tolist() == list(LEVELS) and t.columns.tolist() == list(LEVELS)
    assert t.to_numpy().sum() == 6
    assert t.at["alto", "medio"] == 2  # 01001 and derived 02003
    assert t.at["medio", "alto"] == 1
    assert t.at["sin_informacion", "bajo"] == 1
    assert comparison.entered_alto["cvegeo"].tolist() == ["01002"]
    assert comparison.left_alto["cvegeo"].tolist() == ["01001", "02003"]


def test_by_state(comparison):
    bs = comparison.by_state.set_index("cve_ent")
    assert bs.loc["01", ["municipios", "alto_a", "alto_b", "aumento", "disminucion"]].tolist() \
        == [3, 1, 1, 1, 1]
    assert bs.loc["02", ["municipios", "alto_a", "alto_b", "aumento", "disminucion"]].tolist() \
        == [3, 2, 1, 0, 0]
    assert bs.loc["02", "nom_ent"] == "Baja California"


def test_imported_edition_without_se_keeps_transitions():
    a = edition("2017", "2015", [r[:3] + (None,) for r in A_ROWS], se=False)
    cmp = compare_editions(a, edition("2023", "2020", B_ROWS), crosswalk=CROSSWALK)
    ch = cmp.changes.set_index("cvegeo")
    # Known levels without standard errors: the change cannot be tested (None, never
    # "sin cambio" and never counted as 0 changes); unknown levels stay sin_informacion.
    assert ch["change"].isna().sum() == 5
    assert ch.loc["02004", "change"] == "sin_informacion"  # no A value at all
    assert_allclose(cmp.changes["diff"].iloc[0], -0.10)
    assert cmp.transitions.at["alto", "medio"] == 2
    assert not cmp.testable
    summary = cmp.summary()
    assert summary["aumento"] is None and summary["disminucion"] is None
    assert summary["sin_cambio"] is None and summary["untested"] == 5
    assert cmp.by_state["aumento"].isna().all() and cmp.by_state["disminucion"].isna().all()
    assert [w["kind"] for w in cmp.warnings()] == ["untestable"]
    # The level transitions remain: 01001 alto -> medio fell, 01002 medio -> alto rose.
    assert ch.loc["01001", "level_change"] == "baja" and ch.loc["01002", "level_change"] == "sube"
    assert ch.loc["01003", "level_change"] == "igual"
    assert ch.loc["02004", "level_change"] == "sin_informacion"
    d = json.loads(json.dumps(cmp.to_dict()))
    assert d["summary"]["aumento"] is None and d["by_state"][0]["aumento"] is None
    assert d["changes"][0]["change"] is None and d["testable"] is False


def test_to_dict_is_json(comparison):
    d = json.loads(json.dumps(comparison.to_dict()))
    # own counts, and on B's geography: the derived 02003 takes its parent's alto
    assert d["counts"]["alto"] == {"a": 2, "b": 2, "a_aligned": 3, "b_aligned": 2}
    assert d["transition_totals"]["rows"]["alto"] == 3
    assert d["transition_totals"]["total"] == 6
    assert d["transitions"]["alto"]["medio"] == 2
    assert d["summary"]["aumento"] == 1 and d["summary"]["derived"] == 1
    assert d["changes"][5]["probability_a"] is None


def test_compare_loads_crosswalk_from_store():
    class Store:
        def load_crosswalk(self, vfrom, vto):
            assert (vfrom, vto) == ("2015", "2020")
            return CROSSWALK

    class Empty:
        def load_crosswalk(self, vfrom, vto):
            raise NotFound("none")

    a, b = edition("2017", "2015", A_ROWS), edition("2023", "2020", B_ROWS)
    cmp = compare(a, b, store=Store())
    assert cmp.changes.set_index("cvegeo").at["02003", "derived_from"] == "02001"
    with pytest.warns(RuntimeWarning, match="no crosswalk"):
        cmp = compare(a, b, store=Empty())
    assert cmp.changes.set_index("cvegeo").at["02003", "alignment"] == "unmatched"


def _split_geometry():
    """02003 is carved from a big parent (10 % of its area) and a small neighbour (40 %)."""
    from shapely.geometry import box

    def frame(items):
        return gpd.GeoDataFrame({"cvegeo": [c for c, _ in items]},
                                geometry=[g for _, g in items], crs=4326)
    old = frame([("02001", box(-100.0, 20.0, -90.0, 21.0)),
                 ("02002", box(-90.0, 20.0, -89.5, 21.0))])
    new = frame([("02001", box(-99.0, 20.0, -90.0, 21.0)),
                 ("02002", box(-89.8, 20.0, -89.5, 21.0)),
                 ("02003", box(-100.0, 20.0, -99.0, 21.0).union(box(-90.0, 20.0, -89.8, 21.0)))])
    return old, new


def test_parent_is_the_main_contributor_not_the_largest_share(tmp_path):
    from riskmap.ingest.crosswalk import area_crosswalk
    from riskmap.publish.store import DataStore

    old, new = _split_geometry()
    cw = area_crosswalk(old, new)
    rows = cw[cw["cvegeo_to"] == "02003"].set_index("cvegeo_from")
    # the two rules disagree: the neighbour lost the larger share of itself (40 % > 10 %),
    # the big parent gave the larger part of 02003 (1 degree wide versus 0.2)
    assert rows.at["02002", "share"] > rows.at["02001", "share"]
    assert rows.at["02001", "share_to"] > rows.at["02002", "share_to"]
    a = edition("2017", "2015", [("02001", "alto", 0.30, 0.02), ("02002", "bajo", 0.05, 0.01)])
    b = edition("2023", "2020", [("02001", "alto", 0.31, 0.02), ("02002", "bajo", 0.05, 0.01),
                                 ("02003", "alto", 0.29, 0.02)])
    ch = compare_editions(a, b, crosswalk=cw).changes.set_index("cvegeo")
    assert ch.at["02003", "derived_from"] == "02001"
    assert ch.at["02003", "level_a"] == "alto"
    assert_allclose(ch.at["02003", "probability_a"], 0.30)
    # the same through the stored crosswalk (share_to survives the CSV)
    store = DataStore(tmp_path)
    store.save_crosswalk("2015", "2020", cw)
    loaded = store.load_crosswalk("2015", "2020")
    assert list(loaded.columns) == ["cvegeo_from", "cvegeo_to", "share", "share_to"]
    got = compare(a, b, store=store).changes.set_index("cvegeo")
    assert got.at["02003", "derived_from"] == "02001"
    # a user-supplied crosswalk without share_to falls back to the share rule
    legacy = compare_editions(a, b, crosswalk=cw.drop(columns="share_to"))
    assert legacy.changes.set_index("cvegeo").at["02003", "derived_from"] == "02002"


def test_bad_crosswalk_raises():
    with pytest.raises(InputError, match="crosswalk lacks column.*share"):
        compare_editions(edition("a", "2015", A_ROWS), edition("b", "2020", B_ROWS),
                         crosswalk=CROSSWALK.drop(columns="share"))


def _with_variances(ed, children, var_model, var_census, rate):
    ed.rows["children"] = children
    ed.rows["var_model"] = var_model
    ed.rows["var_census"] = var_census
    ed.card["national_rate"] = {"estimate": rate}
    return ed


def test_newer_edition_pools_the_pieces_of_a_divided_municipality():
    """A (newer geography) split 01001 into 01001 + 01009; B (older) has the whole 01001.
    A's value on B's 01001 is the children-weighted value of both pieces, with the model
    parts taken as perfectly correlated and the census parts independent."""
    a = _with_variances(
        edition("2023", "2020", [("01001", "bajo", 0.10, 0.01), ("01009", "alto", 0.40, 0.02),
                                 ("01002", "medio", 0.15, 0.01)]),
        children=[3000.0, 1000.0, 2000.0], var_model=[1e-4, 4e-4, 1e-4],
        var_census=[0.0, 0.0, 0.0], rate=0.16)
    b = edition("2017", "2015", [("01001", "medio", 0.17, 0.01), ("01002", "medio", 0.15, 0.01)])
    cw = pd.DataFrame({"cvegeo_from": ["01001", "01009", "01002", "01009"],
                       "cvegeo_to": ["01001", "01001", "01002", "01002"],
                       "share": [1.0, 0.97, 1.0, 0.03]})
    ch = compare_editions(a, b, crosswalk=cw).changes.set_index("cvegeo")
    row = ch.loc["01001"]
    assert row["alignment"] == "aggregated" and row["aggregated_from"] == "01001+01009"
    assert_allclose(row["probability_a"], (3000 * 0.10 + 1000 * 0.40) / 4000)  # 0.175
    se = (3000 * 0.01 + 1000 * 0.02) / 4000
    assert_allclose(row["sd"], np.sqrt(se**2 + 0.01**2))
    # 0.175 with se 0.0125: logit-scale interval 0.152-0.201 contains 0.16 -> medio, not the
    # 'bajo' of the piece that kept the code
    assert row["level_a"] == "medio"
    assert ch.loc["01002", "alignment"] == "same"  # a 3 % sliver does not make a division
    assert_allclose(ch.loc["01002", "probability_a"], 0.15)


def test_older_edition_first_still_takes_parent_values():
    """The usual direction (A older) is unchanged: nothing is pooled."""
    a = edition("2017", "2015", [("01001", "medio", 0.17, 0.01)])
    b = edition("2023", "2020", [("01001", "bajo", 0.10, 0.01), ("01009", "alto", 0.40, 0.02)])
    cw = pd.DataFrame({"cvegeo_from": ["01001", "01001"], "cvegeo_to": ["01001", "01009"],
                       "share": [0.75, 0.25], "share_to": [1.0, 1.0]})
    ch = compare_editions(a, b, crosswalk=cw).changes.set_index("cvegeo")
    assert (ch["alignment"] == ["same", "derived"]).all()
    assert ch["aggregated_from"].isna().all()


def test_invert_swaps_directions_and_shares():
    from riskmap.model.compare import invert

    cw = pd.DataFrame({"cvegeo_from": ["01001", "01001"], "cvegeo_to": ["01001", "01009"],
                       "share": [0.75, 0.25], "share_to": [1.0, 1.0]})
    back = invert(cw)
    assert back.columns.tolist() == ["cvegeo_from", "cvegeo_to", "share", "share_to"]
    assert back["cvegeo_from"].tolist() == ["01001", "01009"]
    assert_allclose(back["share"], [1.0, 1.0])
    assert_allclose(back["share_to"], [0.75, 0.25])
