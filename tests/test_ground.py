"""Ground helpers used by every layer: JSON cleaning, atomic writes, vintage names."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskmap.fileio import atomic_path
from riskmap.ingest.boundaries import vintage_name
from riskmap.jsonable import jsonable


@dataclass
class _Pair:
    a: object
    b: object


def test_jsonable_cleans_everything_the_library_returns():
    frame = pd.DataFrame({"x": [1.5, np.nan], "n": pd.array([1, None], dtype="Int64"),
                          "geometry": [None, None]},
                         index=pd.Index(["01001", "01002"], name="cvegeo"))
    value = {1: np.int64(3), "f": np.float32(0.5), "inf": float("inf"), "b": np.bool_(True),
             "arr": np.array([[1, 2]]), "na": pd.NA, "s": pd.Series({"k": np.nan}),
             "df": frame, "dc": _Pair(np.float64(2.0), (np.int32(1),)), "p": Path("a/b")}
    out = jsonable(value)
    assert out == {"1": 3, "f": 0.5, "inf": None, "b": True, "arr": [[1, 2]], "na": None,
                   "s": {"k": None}, "dc": {"a": 2.0, "b": [1]}, "p": "a/b",
                   "df": [{"cvegeo": "01001", "x": 1.5, "n": 1},
                          {"cvegeo": "01002", "x": None, "n": None}]}
    json.dumps(out, allow_nan=False)  # strict JSON
    assert type(out["1"]) is int and type(out["b"]) is bool


def test_atomic_path_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "sub" / "out.gpkg"
    with atomic_path(target) as tmp:
        assert tmp.name == "out.gpkg" and tmp.parent != target.parent
        tmp.write_text("one")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError
    assert target.read_text() == "one"
    assert [p.name for p in target.parent.iterdir()] == ["out.gpkg"]  # no leftovers


@pytest.mark.parametrize("name, default, expected", [
    ("municipios_2020.geojson", None, "2020"), ("mg2015_mun.shp", "x", "2015"),
    ("grid.gpkg", None, "grid"), ("grid.gpkg", "2020", "2020"),
    ("límites v3.shp", None, "l_mites_v3"), ("límites v3.shp", "2020", "l_mites_v3")])
def test_one_default_vintage_name(name, default, expected):
    assert vintage_name(name, default) == expected


def _gpkg_version(path) -> tuple[int, int]:
    import sqlite3

    with sqlite3.connect(path) as con:
        app_id = con.execute("PRAGMA application_id").fetchone()[0]
        user_version = con.execute("PRAGMA user_version").fetchone()[0]
    return app_id, user_version


GPKG = 0x47504B47  # "GPKG"


def test_store_and_exports_write_geopackage_1_2(fake_dir, tmp_path):
    from riskmap.fileio import write_gpkg
    from riskmap.publish.export import export_edition
    from riskmap.publish.store import DataStore

    store = DataStore(fake_dir)
    assert _gpkg_version(store.edition_path("2023")) == (GPKG, 10200)
    assert _gpkg_version(store.vintage_path("2020")) == (GPKG, 10200)
    out = export_edition(store.load_edition("2023"), "gpkg", tmp_path / "e.gpkg")
    assert _gpkg_version(out) == (GPKG, 10200)
    # unless asked otherwise
    write_gpkg(store.load_vintage("2020"), tmp_path / "v.gpkg", layer="m", version="1.4")
    assert _gpkg_version(tmp_path / "v.gpkg") == (GPKG, 10400)
