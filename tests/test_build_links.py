"""`riskmap build` links a new geography vintage to those already stored, as import-edition
does: editions on different vintages then compare, and a new municipality gets its parent's
earlier value."""

from __future__ import annotations

import warnings

import geopandas as gpd
from shapely.geometry import box

from cli_inputs import build_args, run
from pipeline_inputs import grid_boundaries, write_inputs
from riskmap.publish.store import DataStore
from riskmap.web.atlas import Atlas

NEW = "01099"  # carved out of 01001 (the unit square at the origin) in vintage "grid2"


def _split_boundaries(path) -> None:
    bnd = grid_boundaries()
    first = bnd.index[bnd["cvegeo"] == "01001"][0]
    new = bnd.loc[[first]].copy()
    new["cvegeo"], new["cve_mun"], new["nom_mun"] = NEW, "099", "Nueva"
    new["geometry"] = [box(0.5, 0, 1, 1)]
    bnd.loc[first, "geometry"] = box(0, 0, 0.5, 1)
    gpd.GeoDataFrame(gpd.pd.concat([bnd, new]), crs=4326).to_file(path, driver="GeoJSON")


def test_build_stores_crosswalks_to_stored_vintages(tmp_path, capsys):
    paths = write_inputs(tmp_path / "in")
    data = tmp_path / "data"
    code, _, err = run(build_args(paths, data, "2017"), capsys)
    assert code == 0, err
    _split_boundaries(tmp_path / "in" / "split.geojson")
    code, _, err = run(["build", "--edition", "2023", "--survey", paths["survey"], "--census",
                        paths["census"], "--boundaries", tmp_path / "in" / "split.geojson",
                        "--spec", paths["spec"], "--vintage", "grid2", "--data-dir", data],
                       capsys)
    assert code == 0, err
    store = DataStore(data)
    assert store.crosswalk_path("grid", "grid2").exists()
    assert store.crosswalk_path("grid2", "grid").exists()
    cw = store.load_crosswalk("grid", "grid2")
    halves = cw[cw["cvegeo_from"] == "01001"].set_index("cvegeo_to")["share"]
    assert halves.round(6).to_dict() == {"01001": 0.5, NEW: 0.5}

    atlas = Atlas(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "no crosswalk" warning
        comparison = atlas.comparison("2017", "2023")
    changes = comparison.changes.set_index("cvegeo")
    assert changes.loc[NEW, "derived_from"] == "01001"
    history = {h["edition"]: h for h in atlas.history(NEW)}
    assert history["2017"]["derived_from"] == "01001"  # the parent's earlier value
    assert history["2017"]["probability"] == atlas.municipality("2017", "01001")["probability"]
