"""Area crosswalks between vintages and the changes they reveal."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner
from pyproj import CRS
from shapely.geometry import box

from riskmap.cli import cli
from riskmap.ingest.crosswalk import MEXICO_ALBERS, area_crosswalk, detect_changes, equal_area_crs
from riskmap.errors import InputError

from pipeline_inputs import CREATED_2015_2020


def _frame(items) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"cvegeo": [c for c, _ in items]},
                            geometry=[shapely.segmentize(g, 0.01) for _, g in items], crs=4326)


# Old vintage: three municipalities side by side; 01003 and 01004 will merge.
OLD = _frame([("01001", box(-100.0, 20.0, -99.0, 21.0)),
              ("01002", box(-99.0, 20.0, -98.0, 21.0)),
              ("01003", box(-98.0, 20.0, -97.5, 21.0)),
              ("01004", box(-97.5, 20.0, -97.0, 21.0))])
# New vintage: 01001 split at the meridian -99.75 (new code 01005 takes the west quarter),
# 01002 unchanged, 01004 absorbed into 01003.
NEW = _frame([("01001", box(-99.75, 20.0, -99.0, 21.0)),
              ("01005", box(-100.0, 20.0, -99.75, 21.0)),
              ("01002", box(-99.0, 20.0, -98.0, 21.0)),
              ("01003", box(-98.0, 20.0, -97.0, 21.0))])


def test_shares_are_area_fractions_in_equal_area_crs():
    cw = area_crosswalk(OLD, NEW)
    assert list(cw.columns) == ["cvegeo_from", "cvegeo_to", "share", "share_to"]
    got = cw.set_index(["cvegeo_from", "cvegeo_to"])["share"]
    # On an equal-area projection a band of longitude holds area proportional to its width.
    np.testing.assert_allclose(got[("01001", "01001")], 0.75, rtol=1e-4)
    np.testing.assert_allclose(got[("01001", "01005")], 0.25, rtol=1e-4)
    np.testing.assert_allclose(got[("01002", "01002")], 1.0)
    np.testing.assert_allclose(got[("01004", "01003")], 1.0)
    assert len(cw) == 5  # touching neighbours (zero-area contacts) are not rows
    np.testing.assert_allclose(cw.groupby("cvegeo_from")["share"].sum(), 1.0)


def test_share_to_is_the_fraction_of_the_new_municipality():
    cw = area_crosswalk(OLD, NEW).set_index(["cvegeo_from", "cvegeo_to"])["share_to"]
    # 01003 (new) = old 01003 (west half) + old 01004 (east half)
    np.testing.assert_allclose(cw[("01003", "01003")], 0.5, rtol=1e-4)
    np.testing.assert_allclose(cw[("01004", "01003")], 0.5, rtol=1e-4)
    # the split pieces are each wholly made of old 01001
    np.testing.assert_allclose(cw[("01001", "01005")], 1.0)
    np.testing.assert_allclose(cw[("01001", "01001")], 1.0)
    np.testing.assert_allclose(cw.groupby(level="cvegeo_to").sum(), 1.0)


def test_tiny_new_municipality_of_a_huge_parent_is_kept():
    # 03002 takes 0.05 % of 03001's area (below min_share) but is wholly made of it.
    old = _frame([("03001", box(-100.0, 20.0, -90.0, 22.0))])
    new = _frame([("03001", box(-100.0, 20.0, -90.0, 22.0).difference(
                      box(-100.0, 20.0, -99.99, 20.02))),
                  ("03002", box(-100.0, 20.0, -99.99, 20.02))])
    cw = area_crosswalk(old, new)
    row = cw[cw["cvegeo_to"] == "03002"]
    assert row["cvegeo_from"].tolist() == ["03001"]
    assert row["share"].item() < 0.001
    np.testing.assert_allclose(row["share_to"].item(), 1.0)
    ch = detect_changes(cw, old["cvegeo"], new["cvegeo"])
    assert ch[ch["change"] == "new"][["cvegeo_from", "cvegeo_to"]].values.tolist() == [
        ["03001", "03002"]]


def test_inputs_in_other_crs_give_the_same_shares():
    a = area_crosswalk(OLD, NEW)
    b = area_crosswalk(OLD.to_crs(6372), NEW.to_crs(32614))
    pd.testing.assert_frame_equal(a, b, rtol=1e-6)


def test_slivers_dropped_and_renormalised():
    shifted = NEW.copy()
    # Move 01002's west edge 0.0005 degrees into 01001: a 0.07 % sliver of 01001.
    shifted.loc[shifted["cvegeo"] == "01002", "geometry"] = box(-99.0005, 20.0, -98.0, 21.0)
    raw = area_crosswalk(OLD, shifted, min_share=0.0)
    sliver = raw[(raw["cvegeo_from"] == "01001") & (raw["cvegeo_to"] == "01002")]["share"]
    np.testing.assert_allclose(sliver.item(), 0.0005, rtol=1e-2)
    cw = area_crosswalk(OLD, shifted, min_share=0.001)
    assert not ((cw["cvegeo_from"] == "01001") & (cw["cvegeo_to"] == "01002")).any()
    np.testing.assert_allclose(cw[cw["cvegeo_from"] == "01001"]["share"].sum(), 1.0)


def test_unmatched_from_codes_warned():
    far = _frame([("09001", box(-90.0, 18.0, -89.0, 19.0))])
    with pytest.warns(UserWarning, match="overlap nothing.*09001"):
        cw = area_crosswalk(pd.concat([OLD, far]), NEW)
    assert "09001" not in set(cw["cvegeo_from"])


def test_bad_inputs_rejected():
    with pytest.raises(InputError, match="'to' boundaries have no cvegeo"):
        area_crosswalk(OLD, NEW.rename(columns={"cvegeo": "code"}))
    with pytest.raises(InputError, match="'from' boundaries repeat codes: 01001"):
        area_crosswalk(pd.concat([OLD, OLD.iloc[[0]]]), NEW)
    with pytest.raises(InputError, match="no CRS"):
        area_crosswalk(OLD.set_crs(None, allow_override=True), NEW)


def test_equal_area_crs_choice():
    assert equal_area_crs(OLD) == CRS.from_proj4(MEXICO_ALBERS)
    europe = _frame([("x", box(0.0, 40.0, 10.0, 50.0))])
    with warnings.catch_warnings():  # to_dict warns that PROJ strings are lossy
        warnings.simplefilter("ignore")
        params = equal_area_crs(europe).to_dict()
    assert params["proj"] == "aea" and params["lon_0"] == pytest.approx(5.0)


def test_detect_changes_new_split_merge_removed():
    cw = area_crosswalk(OLD, NEW)
    ch = detect_changes(cw, OLD["cvegeo"], NEW["cvegeo"])
    new = ch[ch["change"] == "new"]
    assert new[["cvegeo_from", "cvegeo_to"]].values.tolist() == [["01001", "01005"]]
    split = ch[ch["change"] == "split"]
    assert sorted(split["cvegeo_to"]) == ["01001", "01005"]
    assert set(split["cvegeo_from"]) == {"01001"}
    merge = ch[ch["change"] == "merge"]
    assert sorted(merge["cvegeo_from"]) == ["01003", "01004"]
    assert set(merge["cvegeo_to"]) == {"01003"}
    removed = ch[ch["change"] == "removed"]
    assert removed[["cvegeo_from", "cvegeo_to"]].values.tolist() == [["01004", "01003"]]
    # 01002 is untouched: it appears in no change
    assert "01002" not in set(ch["cvegeo_from"]) | set(ch["cvegeo_to"])


def test_new_code_main_parent_ranked_by_contributed_area():
    # 02003 is carved from a big parent (10 % of it) and a small neighbour (40 % of it):
    # by area the big parent gave more.
    old = _frame([("02001", box(-100.0, 20.0, -90.0, 21.0)),
                  ("02002", box(-90.0, 20.0, -89.5, 21.0))])
    new = _frame([("02001", box(-99.0, 20.0, -90.0, 21.0)),
                  ("02002", box(-89.8, 20.0, -89.5, 21.0)),
                  ("02003", box(-100.0, 20.0, -99.0, 21.0).union(box(-90.0, 20.0, -89.8, 21.0)))])
    cw = area_crosswalk(old, new)
    ch = detect_changes(cw, old["cvegeo"], new["cvegeo"])
    parents = ch[ch["change"] == "new"]["cvegeo_from"].tolist()
    assert parents == ["02001", "02002"]
    # the same from the crosswalk alone, as read back from a CSV (share_to ranks)
    ch = detect_changes(cw.copy(), old["cvegeo"], new["cvegeo"])
    assert ch[ch["change"] == "new"]["cvegeo_from"].tolist() == ["02001", "02002"]
    # a crosswalk without share_to (user-supplied) falls back to the parent's share
    legacy = detect_changes(cw.drop(columns="share_to"), old["cvegeo"], new["cvegeo"])
    assert legacy[legacy["change"] == "new"]["cvegeo_from"].tolist() == ["02002", "02001"]
    # with equal areas the ranking falls back to the share of each parent
    by_share = detect_changes(cw, old["cvegeo"], new["cvegeo"],
                              areas_from={"02001": 1, "02002": 1})
    assert by_share[by_share["change"] == "new"]["cvegeo_from"].tolist() == ["02002", "02001"]


def test_real_2015_2020_new_municipalities_and_parents(mx_dir, tmp_path):
    out = tmp_path / "cw.csv"
    result = CliRunner().invoke(cli, ["crosswalk", "--from", str(mx_dir / "municipios_2015.geojson"),
                                      "--to", str(mx_dir / "municipios_2020.geojson"),
                                      "-o", str(out)])
    assert result.exit_code == 0, result.output
    print(result.output)  # the list of new municipalities with their parents
    cw = pd.read_csv(out, dtype={"cvegeo_from": str, "cvegeo_to": str})
    # the documented columns first, share_to after
    assert list(cw.columns) == ["cvegeo_from", "cvegeo_to", "share", "share_to"]
    assert cw["cvegeo_from"].nunique() == 2457
    np.testing.assert_allclose(cw.groupby("cvegeo_from")["share"].sum(), 1.0, atol=1e-5)
    codes_15 = set(cw["cvegeo_from"])
    codes_20 = set(cw["cvegeo_to"])
    ch = detect_changes(cw, codes_15, codes_20)
    new = ch[ch["change"] == "new"].drop_duplicates("cvegeo_to")
    found = dict(zip(new["cvegeo_to"], new["cvegeo_from"]))
    # read back from CSV, parents rank by share_to (the area they gave): as the CLI lists
    assert found == CREATED_2015_2020
    for code, parent in CREATED_2015_2020.items():
        assert f"{code} " in result.output and f"split from {parent} " in result.output
    assert "new municipalities: 12" in result.output
    assert "removed municipalities: 0" in result.output


def test_cli_crosswalk_bad_input_exit_2(tmp_path):
    from riskmap.cli import main

    bad = tmp_path / "bad.geojson"
    bad.write_text("{}", encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        main(["crosswalk", "--from", str(bad), "--to", str(bad), "-o", str(tmp_path / "o.csv")])
    assert exc.value.code == 2
    assert not (tmp_path / "o.csv").exists()
