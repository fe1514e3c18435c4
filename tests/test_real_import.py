"""Imported editions: published level lists -> published editions."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from shapely.geometry import box

from riskmap.cli import cli, main
from riskmap.errors import InputError
from riskmap.inegi.imported import import_edition, normalise_level, read_levels
from riskmap.publish.store import DataStore


@pytest.fixture()
def boundaries(tmp_path):
    rows = [{"CVEGEO": f"{ent}{m:03d}", "NOMGEO": f"Municipio {ent}-{m}",
             "geometry": box(i, 0, i + 1, 1)}
            for i, (ent, m) in enumerate([("01", 1), ("01", 2), ("02", 1), ("02", 2), ("02", 3)])]
    path = tmp_path / "mun_2015.gpkg"
    gpd.GeoDataFrame(rows, crs=4326).to_file(path, driver="GPKG")
    return path


@pytest.mark.parametrize("raw, level", [
    ("Alto", "alto"), ("ALTO", "alto"), (" alto ", "alto"), ("Medio", "medio"),
    ("No significativo", "medio"), ("NO SIGNIFICATIVO", "medio"), ("no_significativo", "medio"),
    ("Bajo", "bajo"), ("Sin información", "sin_informacion"), ("SIN INFORMACION", "sin_informacion"),
    ("sin_informacion", "sin_informacion"), ("", "sin_informacion"), ("muy alto", None),
])
def test_level_spellings(raw, level):
    assert normalise_level(raw) == level


def test_cli_import_complete_rows_and_card(tmp_path, boundaries):
    levels = tmp_path / "mirti2017.csv"
    levels.write_text("cvegeo,nivel,probabilidad,li,ls\n1001,Alto,12.5,10,15\n"
                      "1002,No significativo,8,6,10\n2001,BAJO,3.25,2,4.5\n", encoding="utf-8")
    data = tmp_path / "data"
    result = CliRunner().invoke(cli, ["import-edition", "--edition", "mirti2017", "--levels",
                                      str(levels), "--boundaries", str(boundaries),
                                      "--data-dir", str(data), "--national-rate", "0.11",
                                      "--allow-missing"])
    assert result.exit_code == 0, result.output
    # the municipalities absent from the list are named in the summary
    assert "2 municipalities missing from the list" in result.output
    assert "02002 Municipio 02-2, Baja California" in result.output
    assert "'No significativo' -> medio (1 row)" in result.output
    assert "zero-padded" in result.output and "percentages" in result.output
    assert "alto 1, medio 1, bajo 1, sin_informacion 2" in result.output
    store = DataStore(data)
    ed = store.load_edition("mirti2017")
    rows = ed.rows.set_index("cvegeo")
    assert rows.index.tolist() == ["01001", "01002", "02001", "02002", "02003"]
    assert rows["level"].tolist() == ["alto", "medio", "bajo", "sin_informacion",
                                      "sin_informacion"]
    np.testing.assert_allclose(rows["probability"].to_numpy()[:3], [0.125, 0.08, 0.0325])
    # the published interval is carried to each municipality (absent ones have none)
    np.testing.assert_allclose(rows["ci_low"].to_numpy(), [0.10, 0.06, 0.02, np.nan, np.nan])
    np.testing.assert_allclose(rows["ci_high"].to_numpy(), [0.15, 0.10, 0.045, np.nan, np.nan])
    assert rows["rank_national"].tolist()[:3] == [1, 2, 3]
    assert ed.card["kind"] == "imported" and ed.card["coefficients"] == []
    assert ed.card["year"] == 2017 and ed.card["vintage"] == "2015"
    assert ed.card["national_rate"]["estimate"] == pytest.approx(0.11)
    assert ed.card["synthetic"] is False and "INEGI" in ed.card["attribution"]["es"]
    assert ed.card["rule"]["id"] == "publicado"
    assert ed.card["import"]["missing"] == ["02002 Municipio 02-2, Baja California",
                                            "02003 Municipio 02-3, Baja California"]
    assert len(ed.factors) == 0
    assert store.vintage_names() == ["2015"]
    assert ed.card["level_counts"] == {"alto": 1, "medio": 1, "bajo": 1, "sin_informacion": 2}


def test_unknown_level_names_row(tmp_path):
    levels = tmp_path / "l.csv"
    levels.write_text("cvegeo,level\n01001,alto\n01002,muy alto\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"column 'level', row 3: unknown level 'muy alto'; "
                                         "allowed: alto, medio"):
        read_levels(levels)


def test_codes_not_in_boundaries_rejected_and_nothing_published(tmp_path, boundaries):
    levels = tmp_path / "l.csv"
    levels.write_text("cvegeo,level\n01001,alto\n09099,bajo\n", encoding="utf-8")
    data = tmp_path / "data"
    with pytest.raises(SystemExit) as exc:
        main(["import-edition", "--edition", "x2023", "--levels", str(levels), "--boundaries",
              str(boundaries), "--data-dir", str(data)])
    assert exc.value.code == 2
    assert DataStore(data).edition_names() == []


def test_duplicates_and_bad_numbers(tmp_path):
    levels = tmp_path / "l.csv"
    levels.write_text("cvegeo,level\n01001,alto\n01001,bajo\n", encoding="utf-8")
    with pytest.raises(InputError, match="rows 2, 3: code 01001 listed more than once"):
        read_levels(levels)
    levels.write_text("cvegeo,level,probability\n01001,alto,abc\n", encoding="utf-8")
    with pytest.raises(InputError, match="column 'probability', row 2: expected a number"):
        read_levels(levels)
    levels.write_text("cvegeo,level,probability\n01001,alto,250\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"\[0, 1\] or percentages"):
        read_levels(levels)
    levels.write_text("code,level\n01001,alto\n", encoding="utf-8")
    with pytest.raises(InputError, match="expected a cvegeo column.*found code, level"):
        read_levels(levels)


def test_semicolon_latin1_and_state_municipality_columns(tmp_path):
    levels = tmp_path / "l.csv"
    levels.write_bytes("CVE_ENT;CVE_MUN;Nivel\n1;1;Sin información\n1;2;Medio\n"
                       .encode("latin-1"))
    with pytest.warns(UserWarning, match="zero-padded"):
        out = read_levels(levels)
    pd.testing.assert_frame_equal(out, pd.DataFrame({"cvegeo": ["01001", "01002"],
                                                     "level": ["sin_informacion", "medio"]}),
                                  check_dtype=False)


def test_import_edition_without_probabilities(tmp_path, boundaries):
    gdf = __import__("riskmap.ingest.boundaries", fromlist=["x"]).read_boundaries(boundaries)
    levels = pd.DataFrame({"cvegeo": ["02003"], "level": ["alto"]})
    with pytest.raises(InputError, match="4 municipalities of the 2020 boundaries missing.*"
                                         "01001 Municipio 01-1, Aguascalientes"):
        import_edition("mirti2023", levels, gdf, vintage="2020")
    ed = import_edition("mirti2023", levels, gdf, vintage="2020", allow_missing=True)
    assert ed.rows["probability"].isna().all()
    assert ed.rows["rank_national"].isna().all()
    assert ed.level_counts() == {"alto": 1, "medio": 0, "bajo": 0, "sin_informacion": 4}
    assert ed.card["n_absent"] == 4 and ed.card["year"] == 2023


def test_vintage_conflict_rejected(tmp_path, boundaries):
    data = tmp_path / "data"
    levels = tmp_path / "l.csv"
    levels.write_text("cvegeo,level\n01001,alto\n", encoding="utf-8")
    args = ["import-edition", "--edition", "a2017", "--levels", str(levels), "--boundaries",
            str(boundaries), "--data-dir", str(data), "--allow-missing"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    other = tmp_path / "other_2015.geojson"
    gpd.GeoDataFrame({"CVEGEO": ["01001"], "geometry": [box(0, 0, 1, 1)]},
                     crs=4326).to_file(other, driver="GeoJSON")
    args[-4] = str(other)
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2


def test_import_on_another_vintage_stores_crosswalks_so_new_municipalities_compare(
        tmp_path, boundaries):
    """A 2015 list imported beside a 2020 list: 02004 was split from 02003 in between."""
    data = tmp_path / "data"
    rows = [{"CVEGEO": c, "NOMGEO": c, "geometry": g} for c, g in [
        ("01001", box(0, 0, 1, 1)), ("01002", box(1, 0, 2, 1)), ("02001", box(2, 0, 3, 1)),
        ("02002", box(3, 0, 4, 1)), ("02003", box(4, 0, 4.6, 1)), ("02004", box(4.6, 0, 5, 1))]]
    b2020 = tmp_path / "mun_2020.gpkg"
    gpd.GeoDataFrame(rows, crs=4326).to_file(b2020, driver="GPKG")
    l2015, l2020 = tmp_path / "l2015.csv", tmp_path / "l2020.csv"
    l2015.write_text("cvegeo,level\n01001,alto\n01002,medio\n02001,bajo\n02002,medio\n"
                     "02003,alto\n", encoding="utf-8")
    l2020.write_text("cvegeo,level\n01001,alto\n01002,alto\n02001,bajo\n02002,medio\n"
                     "02003,medio\n02004,bajo\n", encoding="utf-8")
    runner = CliRunner()
    first = runner.invoke(cli, ["import-edition", "--edition", "m2017", "--levels", str(l2015),
                                "--boundaries", str(boundaries), "--data-dir", str(data)])
    assert first.exit_code == 0 and "crosswalk" not in first.output  # nothing to link yet
    second = runner.invoke(cli, ["import-edition", "--edition", "m2023", "--levels",
                                 str(l2020), "--boundaries", str(b2020), "--data-dir", str(data)])
    assert second.exit_code == 0, second.output
    assert "crosswalk 2015 -> 2020 stored" in second.output
    store = DataStore(data)
    assert store.vintage_names() == ["2015", "2020"]
    cw = store.load_crosswalk("2015", "2020")
    parts = cw[cw["cvegeo_from"] == "02003"].set_index("cvegeo_to")["share"]
    np.testing.assert_allclose(parts.sort_index().to_numpy(), [0.6, 0.4], atol=1e-6)
    assert len(store.load_crosswalk("2020", "2015"))  # either edition may come first
    from riskmap.model.compare import compare

    cmp = compare(store.load_edition("m2017"), store.load_edition("m2023"), store)
    new = cmp.changes.set_index("cvegeo").loc["02004"]
    assert new["alignment"] == "derived" and new["derived_from"] == "02003"
    assert new["level_a"] == "alto"
    # a third import on a stored vintage adds nothing
    third = runner.invoke(cli, ["import-edition", "--edition", "m2019", "--levels",
                                str(l2020), "--boundaries", str(b2020), "--data-dir", str(data)])
    assert third.exit_code == 0 and "crosswalk" not in third.output


def test_excel_list_and_binary_file(tmp_path):
    xlsx = tmp_path / "mirti.xlsx"
    pd.DataFrame({"CVE_ENT": [1, 2], "CVE_MUN": [1, 3], "Nivel": ["Alto", "No significativo"],
                  "Probabilidad": [0.2, 0.1]}).to_excel(xlsx, index=False)
    with pytest.warns(UserWarning, match="zero-padded"):
        table = read_levels(xlsx)
    assert table["cvegeo"].tolist() == ["01001", "02003"]
    assert table["level"].tolist() == ["alto", "medio"]
    np.testing.assert_allclose(table["probability"], [0.2, 0.1])
    gpkg = tmp_path / "oops.gpkg"
    gpd.GeoDataFrame({"CVEGEO": ["01001"], "geometry": [box(0, 0, 1, 1)]},
                     crs=4326).to_file(gpkg, driver="GPKG")
    with pytest.raises(InputError, match="not a text file.*CSV"):
        read_levels(gpkg)
