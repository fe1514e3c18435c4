"""The core command line: build, show, export, demo (through riskmap.cli.main)."""

from __future__ import annotations

import json
import zipfile

import openpyxl
import pandas as pd
import pyogrio
import pytest

from riskmap.publish.edition import ROW_COLUMNS
from riskmap.publish.store import DataStore
from cli_inputs import build_args, published_data, run
from pipeline_inputs import write_inputs


@pytest.fixture(scope="module")
def atlas(tmp_path_factory):
    """A data directory with edition 2023 built through the CLI (read-only for tests)."""
    return published_data(tmp_path_factory.mktemp("cli"), "--source", "ENTI 2022",
                          "--source", "Censo 2020", "--synthetic")


def test_build_prints_steps_and_summary(tmp_path, capsys):
    paths = write_inputs(tmp_path / "in", seed=3)
    code, out, err = run(build_args(paths, tmp_path / "data", "2019"), capsys)
    assert code == 0, err
    assert out.startswith("published edition 2019 (16 municipalities, level rule mirti): alto ")
    steps = err.strip().splitlines()
    assert len(steps) >= 5 and all(s.startswith("[") for s in steps)
    assert "fitting the model" in err and "Traceback" not in err
    card = DataStore(tmp_path / "data").load_card("2019")
    assert card["year"] == 2019 and card["synthetic"] is False


def test_show_prints_the_card(atlas, capsys):
    code, out, err = run(["show", "--edition", "2023", "--data-dir", atlas], capsys)
    assert code == 0
    card = json.loads(out)
    assert card["edition"] == "2023" and card["kind"] == "modelled"
    assert card["sources"] == ["ENTI 2022", "Censo 2020"] and card["synthetic"] is True
    assert [c["name"] for c in card["coefficients"]][0] == "intercept"


@pytest.mark.parametrize("argv", [["show", "--edition", "2023"],
                                  ["export", "--edition", "2023", "--format", "csv", "-o",
                                   "out.csv"]])
def test_missing_data_dir_is_named(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(argv + ["--data-dir", tmp_path / "nowhere"], capsys)
    assert code == 2 and out == ""
    assert err.strip() == (f"riskmap: error: {tmp_path / 'nowhere'}: no such data directory; "
                           "give --data-dir (or set RISKMAP_DATA_DIR), or build one with "
                           "'riskmap demo'")
    assert not (tmp_path / "nowhere").exists() and not (tmp_path / "out.csv").exists()


def test_show_uses_data_dir_setting(atlas, capsys, monkeypatch):
    monkeypatch.setenv("RISKMAP_DATA_DIR", str(atlas))
    code, out, _ = run(["show", "--edition", "2023"], capsys)
    assert code == 0 and json.loads(out)["edition"] == "2023"


@pytest.mark.parametrize("fmt, name", [("csv", "o.csv"), ("xlsx", "o.xlsx"),
                                       ("geojson", "o.geojson"), ("gpkg", "o.gpkg"),
                                       ("shp", "o.zip")])
def test_export_every_format(atlas, tmp_path, capsys, fmt, name):
    target = tmp_path / name
    code, _, err = run(["export", "--edition", "2023", "--format", fmt, "--state", "02",
                        "-o", target, "--data-dir", atlas], capsys)
    assert code == 0, err
    if fmt == "csv":
        df = pd.read_csv(target, encoding="utf-8-sig", dtype={"cvegeo": str, "cve_ent": str})
        assert list(df.columns[:len(ROW_COLUMNS)]) == list(ROW_COLUMNS)
        assert len(df) == 8 and set(df["cve_ent"]) == {"02"}
        assert df["nom_ent"].iloc[0] == "Estado Peñón"
    elif fmt == "xlsx":
        assert openpyxl.load_workbook(target)["municipios"].max_row == 9
    elif fmt == "shp":
        assert "LEEME.txt" in zipfile.ZipFile(target).namelist()
    else:
        assert len(pyogrio.read_dataframe(target, layer=0)) == 8


def test_export_level_filter(atlas, tmp_path, capsys):
    target = tmp_path / "alto.csv"
    code, _, _ = run(["export", "--edition", "2023", "--format", "CSV", "--level", "alto",
                      "-o", target, "--data-dir", atlas], capsys)
    assert code == 0
    levels = pd.read_csv(target, encoding="utf-8-sig")["level"]
    expected = DataStore(atlas).load_card("2023")["level_counts"]["alto"]
    assert len(levels) == expected > 0 and set(levels) == {"alto"}


def test_demo_command_calls_builder_and_summarises(atlas, tmp_path, capsys, monkeypatch):
    import shutil

    import riskmap.demo

    calls = []

    def fake_build_demo(data_dir, seed, progress=None):
        calls.append((str(data_dir), seed))
        progress("building")
        shutil.copytree(atlas, data_dir)

    monkeypatch.setattr(riskmap.demo, "build_demo", fake_build_demo, raising=False)
    data = tmp_path / "demo"
    code, out, err = run(["demo", "--data-dir", data, "--seed", 7], capsys)
    assert code == 0, err
    assert calls == [(str(data), 7)]
    counts = DataStore(atlas).load_card("2023")["level_counts"]
    assert f"alto {counts['alto']:>5}" in out and out.splitlines()[1].strip().startswith("2023")
    assert out.splitlines()[1].rstrip().endswith("(rule mirti)")  # the stored rule, named
    assert "building" in err


def test_build_with_raster_territorial_covariate(tmp_path, capsys):
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    from pipeline_inputs import SPEC_TOML

    paths = write_inputs(tmp_path / "in")
    paths["spec"].write_text(SPEC_TOML + """
[[covariates]]
name = "cropland"
kind = "territorial"
domain = "trabajo"
label_es = "Superficie agrícola"
label_en = "Cropland"
definition_es = "Proporción agrícola."
definition_en = "Cropland share."
""", encoding="utf-8")
    # 40 x 40 cells over the 4 x 4 grid; value = column index of the grid square / 10
    cols = np.repeat(np.arange(4), 10)[None, :].repeat(40, axis=0).astype("float32") / 10
    tif, far = tmp_path / "cropland.tif", tmp_path / "elsewhere.tif"
    for path, west in ((tif, 0), (far, 50)):
        with rasterio.open(path, "w", driver="GTiff", height=40, width=40, count=1,
                           dtype="float32", crs="EPSG:4326",
                           transform=from_origin(west, 4, 0.1, 0.1)) as dst:
            dst.write(cols, 1)
    # a raster that covers none of the municipalities (e.g. a wrong CRS): one line naming it
    code, _, err = run(build_args(paths, tmp_path / "data", "2023", "--raster",
                                  f"cropland={far}"), capsys)
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        "riskmap: error: elsewhere.tif: no municipality contains a valid cell of the raster: "
        "raster and boundaries do not overlap (check the CRS of both files)")
    assert not (tmp_path / "data" / "editions").exists()
    code, out, err = run(build_args(paths, tmp_path / "data", "2023", "--raster",
                                    f"cropland={tif}"), capsys)
    assert code == 0, err
    ed = DataStore(tmp_path / "data").load_edition("2023")
    assert [c["name"] for c in ed.card["coefficients"]][-1] == "cropland"
    crop = ed.factors[ed.factors["covariate"] == "cropland"].set_index("cvegeo")
    # municipality i covers grid column i % 4
    np.testing.assert_allclose(crop.loc["01003", "municipal_mean"], 0.2, atol=1e-6)
    np.testing.assert_allclose(crop.loc["02012", "municipal_mean"], 0.3, atol=1e-6)
    assert "cropland.tif" in ed.card["sources"]


def test_full_count_census_has_no_census_variance(tmp_path, capsys):
    paths = write_inputs(tmp_path / "in")
    code, _, err = run(build_args(paths, tmp_path / "data", "2023", "--full-count"), capsys)
    assert code == 0, err
    ed = DataStore(tmp_path / "data").load_edition("2023")
    assert ed.card["census_sample"] is False
    ok = ed.rows[ed.rows["n_records"] > 0]
    assert (ok["var_census"] == 0).all() and (ok["var_model"] > 0).all()
    import numpy as np
    np.testing.assert_allclose(ok["se"], np.sqrt(ok["var_model"]))
