"""Exports: every format opens again, with the right columns, rows, filters and provenance."""

from __future__ import annotations

import io
import json
import zipfile

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import pytest
from shapely.geometry import box

from riskmap.publish.edition import EXTRA_COLUMNS, ROW_COLUMNS, Edition
from riskmap.errors import BadParameter
from riskmap.publish.export import (FORMATS, SHP_FIELDS, export_bytes, export_edition, export_table,
                            filter_rows, normalise_format)
from riskmap.provenance import SYNTHETIC_ES

HOSTILE = '<script>alert("x")</script> O\'Brien'


def make_edition(synthetic=True) -> Edition:
    """Six municipalities in two states, with accents, a hostile name and a formula-like name."""
    names = ["Álamos", HOSTILE, "=HYPERLINK(\"http://x\")", "Santa María Peñoles",
             "+cmd", "Ciudad Ñu"]
    codes = ["01001", "01002", "01003", "07001", "07002", "07003"]
    levels = ["alto", "medio", "bajo", "alto", "sin_informacion", "medio"]
    prob = [0.2, 0.1, 0.05, 0.25, np.nan, 0.12]
    rows = gpd.GeoDataFrame({
        "edition": "2023", "cvegeo": codes, "cve_ent": [c[:2] for c in codes],
        "nom_ent": ["Aguascalientes"] * 3 + ["Chiapas"] * 3, "nom_mun": names,
        "children": [1000.0, 2000, 3000, 4000, 0, 500], "probability": prob,
        "ci_low": [p - 0.01 for p in prob], "ci_high": [p + 0.01 for p in prob],
        "level": levels, "expected_child_labour": [200.0, 200, 150, 1000, np.nan, 60],
        "rank_national": [2.0, 4, 5, 1, np.nan, 3], "rank_state": [1.0, 2, 3, 1, np.nan, 2],
        "top_factors": ["Edad; Hombre", "-Edad", None, "Jefatura en agricultura", None, ""],
        "cve_mun": [c[2:] for c in codes], "vintage": "2020", "se": 0.005,
        "var_model": 0.00002, "var_census": 0.000005, "n_records": [100, 200, 300, 400, 0, 50],
    }, geometry=[box(i, 0, i + 1, 1) for i in range(6)], crs=4326)
    card = {"edition": "2023", "kind": "modelled", "vintage": "2020", "year": 2023,
            "synthetic": synthetic, "sources": ["ENTI 2022", "Censo 2020"],
            "created": "2026-01-01T00:00:00+00:00",
            "rule": {"name": "significance", "description_es": "alto si ci_low > tasa",
                     "description_en": "alto if ci_low > rate", "min_records": 30}}
    return Edition(name="2023", rows=rows, factors=pd.DataFrame(), card=card)


@pytest.fixture
def edition():
    return make_edition()


def test_registry_normalises_and_lists_allowed():
    assert normalise_format(" .CSV ") == "csv"
    assert normalise_format("GeoPackage") == "gpkg"
    with pytest.raises(BadParameter, match="allowed: csv, xlsx, geojson, gpkg, shp"):
        normalise_format("pdf")


def test_csv_bom_columns_provenance_and_defused_text(edition, tmp_path):
    path = export_edition(edition, "csv", tmp_path / "out.csv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    df = pd.read_csv(path, encoding="utf-8-sig", dtype={"cvegeo": str, "cve_ent": str})
    assert list(df.columns) == list(ROW_COLUMNS) + ["synthetic", "rule", "source"]
    assert len(df) == 6
    assert df["cvegeo"].tolist()[0] == "01001"
    assert df.loc[0, "nom_mun"] == "Álamos"
    assert df.loc[1, "nom_mun"] == HOSTILE
    assert df.loc[2, "nom_mun"] == "'=HYPERLINK(\"http://x\")"
    assert df.loc[4, "nom_mun"] == "'+cmd"
    assert df.loc[1, "top_factors"] == "'-Edad"
    assert df["synthetic"].all()
    # the banner, then the data sources it does not name
    assert df.loc[0, "source"] == f"{SYNTHETIC_ES}. Fuentes: ENTI 2022; Censo 2020"
    assert df.loc[0, "rule"].startswith("alto si ci_low > tasa")
    np.testing.assert_allclose(df["probability"].to_numpy(),
                               edition.rows["probability"].to_numpy())


def test_xlsx_spanish_sheets_formats_and_no_formulas(edition, tmp_path):
    from riskmap.publish.export import HEADERS

    path = export_edition(edition, "xlsx", tmp_path / "out.xlsx")
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["municipios", "metadatos", "diccionario"]
    ws = wb["municipios"]
    header = [c.value for c in ws[1]]
    columns = list(ROW_COLUMNS) + ["synthetic", "rule", "source"]
    assert header == [HEADERS[c][0] for c in columns]
    assert header[6] == "Probabilidad" and "probability" not in header
    assert ws.max_row == 7
    # frozen header row, a filter over the whole table, percentages and thousands
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == ws.dimensions
    col = {c: i + 1 for i, c in enumerate(columns)}
    assert ws.cell(2, col["probability"]).number_format == "0.0%"
    assert ws.cell(2, col["ci_high"]).number_format == "0.0%"
    assert ws.cell(2, col["children"]).number_format == "#,##0"
    assert isinstance(ws.cell(2, col["probability"]).value, float)  # still a number
    cells = [c for row in ws.iter_rows() for c in row]
    assert not any(c.data_type == "f" for c in cells)
    values = [c.value for c in cells]
    assert HOSTILE in values and "Santa María Peñoles" in values
    assert "'=HYPERLINK(\"http://x\")" in values
    meta = {r[0]: r[1] for r in wb["metadatos"].iter_rows(min_row=2, values_only=True)}
    assert meta["datos sintéticos"] == "sí"
    assert meta["atribución"] == SYNTHETIC_ES
    assert meta["edición"] == "2023"
    assert meta["geografía (vintage)"] == edition.card["vintage"]
    assert meta["regla de clasificación"].startswith("alto si ci_low > tasa")
    terms = {r[0]: r[1] for r in wb["diccionario"].iter_rows(min_row=2, values_only=True)}
    assert terms["probability"] == "Probabilidad"  # machine name -> header shown


def test_xlsx_in_english(edition, tmp_path):
    path = export_edition(edition, "xlsx", tmp_path / "out.xlsx", lang="en")
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["municipalities", "metadata", "dictionary"]
    header = [c.value for c in wb["municipalities"][1]]
    assert "Probability" in header and "Probabilidad" not in header
    meta = {r[0]: r[1] for r in wb["metadata"].iter_rows(min_row=2, values_only=True)}
    assert meta["synthetic data"] == "yes" and meta["geography vintage"]


def test_geojson_metadata_and_features(edition, tmp_path):
    path = export_edition(edition, "GeoJSON", tmp_path / "out.geojson", state="07")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["type"] == "FeatureCollection"
    assert doc["metadata"]["synthetic"] is True
    assert doc["metadata"]["filters"] == {"state": "07", "level": None}
    props = [f["properties"] for f in doc["features"]]
    assert [p["cvegeo"] for p in props] == ["07001", "07002", "07003"]
    assert list(props[0]) == list(ROW_COLUMNS)
    assert props[1]["probability"] is None
    gdf = pyogrio.read_dataframe(path)
    assert len(gdf) == 3 and gdf.crs.to_epsg() == 4326


def test_gpkg_layer_and_metadata_table(edition, tmp_path):
    path = export_edition(edition, "gpkg", tmp_path / "out.gpkg", level="alto")
    layers = [name for name, _ in pyogrio.list_layers(path)]
    assert set(layers) == {"municipios", "metadatos"}
    gdf = pyogrio.read_dataframe(path, layer="municipios")
    assert gdf["cvegeo"].tolist() == ["01001", "07001"]
    assert list(gdf.columns[:len(ROW_COLUMNS)]) == list(ROW_COLUMNS)
    meta = pyogrio.read_dataframe(path, layer="metadatos", read_geometry=False)
    values = dict(zip(meta["clave"], meta["valor"]))
    assert json.loads(values["filters"]) == {"state": None, "level": "alto"}


def test_shapefile_zip_short_fields_utf8_and_readme(edition, tmp_path):
    path = export_edition(edition, "shp", tmp_path / "out.zip")
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        assert {"municipios.shp", "municipios.shx", "municipios.dbf", "municipios.prj",
                "municipios.cpg", "LEEME.txt"} <= names
        readme = zf.read("LEEME.txt").decode("utf-8")
        assert zf.read("municipios.cpg").decode().strip().upper().replace("-", "") == "UTF8"
        zf.extractall(tmp_path / "x")
    assert "exp_cl     = expected_child_labour" in readme
    assert SYNTHETIC_ES in readme
    gdf = pyogrio.read_dataframe(tmp_path / "x" / "municipios.shp")
    assert all(len(c) <= 10 for c in gdf.columns)
    assert list(gdf.columns[:-1]) == [SHP_FIELDS[c] for c in ROW_COLUMNS] + ["synthetic"]
    assert gdf["nom_mun"].tolist()[:2] == ["Álamos", HOSTILE]
    assert len(gdf) == 6


def test_real_data_carries_inegi_attribution(tmp_path):
    ed = make_edition(synthetic=False)
    data, mime, name = export_bytes(ed, "csv")
    text = data.decode("utf-8-sig")
    assert "Fuente: INEGI (ENTI 2022; Censo 2020). Datos transformados por riskmap; " \
           "INEGI no avala este producto." in text
    assert mime.startswith("text/csv") and name == "riskmap_2023.csv"


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_export_bytes_every_format(edition, fmt):
    data, mime, name = export_bytes(edition, fmt, state="1", level="medio")
    assert len(data) > 0 and mime
    assert name == f"riskmap_2023_01_medio.{FORMATS[fmt].extension}"
    if fmt == "csv":
        df = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", dtype={"cvegeo": str})
        assert df["cvegeo"].tolist() == ["01002"]


def test_filters_validate_values(edition):
    assert len(filter_rows(edition, state="01")) == 3
    assert filter_rows(edition, level="sin_informacion")["cvegeo"].tolist() == ["07002"]
    with pytest.raises(BadParameter, match="allowed: 01, 07"):
        filter_rows(edition, state="99")
    with pytest.raises(BadParameter, match="allowed: alto, medio, bajo, sin_informacion"):
        filter_rows(edition, level="muy alto")


def test_failed_export_leaves_previous_file(edition, tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("previous")
    with pytest.raises(BadParameter):
        export_edition(edition, "csv", target, level="nope")
    assert target.read_text() == "previous"


def test_export_table_csv_and_xlsx():
    df = pd.DataFrame({"rank": [1, 2], "nom_mun": ["@SUM(A1)", "Peñón"]})
    buf = io.BytesIO()
    export_table(df, "csv", buf, {"visits": 10, "edition": "2023"})
    back = pd.read_csv(io.BytesIO(buf.getvalue()), encoding="utf-8-sig")
    assert list(back.columns) == ["rank", "nom_mun", "visits", "edition"]
    assert back["nom_mun"].tolist() == ["'@SUM(A1)", "Peñón"]
    buf = io.BytesIO()
    export_table(df, "xlsx", buf, {"visits": 10}, sheet="focalizacion")
    wb = openpyxl.load_workbook(buf)
    assert wb.sheetnames == ["focalizacion", "metadatos", "diccionario"]
    assert wb["focalizacion"]["B2"].value == "'@SUM(A1)"
    with pytest.raises(BadParameter, match="allowed: csv, xlsx"):
        export_table(df, "gpkg", io.BytesIO())


def test_extra_columns_not_exported(edition, tmp_path):
    df = pd.read_csv(export_edition(edition, "csv", tmp_path / "o.csv"), encoding="utf-8-sig")
    assert not set(EXTRA_COLUMNS) & set(df.columns)


def test_provenance_accepts_source_dicts():
    from riskmap.provenance import attribution, provenance

    card = {"edition": "2017", "synthetic": False, "rule": {"text": {"es": "regla",
                                                                     "en": "rule"}},
            "sources": [{"name": "MTI 2017", "kind": "survey"}, "Intercensal 2015"]}
    info = provenance(card)
    assert info["sources"] == ["MTI 2017", "Intercensal 2015"]
    assert info["rule_text"] == {"es": "regla", "en": "rule"}
    assert attribution(card, "en") == ("Source: INEGI (MTI 2017; Intercensal 2015). Data "
                                       "transformed by riskmap; INEGI does not endorse this "
                                       "product.")


def test_source_text_names_sources_once():
    from riskmap.provenance import source_text

    real = {"synthetic": False, "sources": ["ENTI 2022", "Censo 2020"]}
    # the INEGI credit already lists them: not repeated
    assert source_text(real, "en") == ("Source: INEGI (ENTI 2022; Censo 2020). Data transformed "
                                       "by riskmap; INEGI does not endorse this product.")
    synthetic = {"synthetic": True, "sources": [{"name": "Encuesta sintética 2023"}]}
    assert source_text(synthetic, "en").endswith(". Sources: Encuesta sintética 2023")


def test_provenance_never_shows_raw_source_dicts():
    from riskmap.provenance import attribution, provenance, provenance_text

    card = {"edition": "2019", "synthetic": False,
            "sources": [{"kind": "survey", "note_es": "ENTI 2019, INEGI",
                         "note_en": "ENTI 2019 (INEGI)"},
                        {"kind": "census", "url": "https://www.inegi.org.mx/"},
                        {"name": "", "title": "Marco geoestadístico 2020"}, None, "  "]}
    info = provenance(card)
    assert info["sources"] == ["ENTI 2019, INEGI", "census", "Marco geoestadístico 2020"]
    for text in (attribution(card, "es"), attribution(card, "en"), provenance_text(card),
                 provenance_text(card, "en")):
        assert "{" not in text and "'kind'" not in text and "None" not in text
    assert "ENTI 2019 (INEGI)" in attribution(card, "en")
    assert "ENTI 2019, INEGI" in attribution(card, "es")
    # a single source given as a dict rather than a list
    single = {"edition": "x", "sources": {"name": "Censo 2020", "kind": "census"}}
    assert provenance(single)["sources"] == ["Censo 2020"]


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_ranks_are_integers_with_blanks(edition, tmp_path, fmt):
    """Ranks come back from the store as floats; exports write whole numbers, blank for NA."""
    path = export_edition(edition, fmt, tmp_path / f"o.{FORMATS[fmt].extension}")
    if fmt == "csv":
        text = path.read_text(encoding="utf-8-sig").splitlines()
        at = ROW_COLUMNS.index("rank_national")
        assert text[1].split(",")[at:at + 2] == ["2", "1"]
        assert text[5].split(",")[at:at + 2] == ["", ""]
        return
    if fmt == "xlsx":
        ws = openpyxl.load_workbook(path)["municipios"]
        col = openpyxl.utils.get_column_letter(ROW_COLUMNS.index("rank_national") + 1)
        nxt = openpyxl.utils.get_column_letter(ROW_COLUMNS.index("rank_national") + 2)
        assert (ws[f"{col}2"].value, ws[f"{nxt}2"].value, ws[f"{col}6"].value) == (2, 1, None)
        return
    if fmt == "geojson":
        props = [f["properties"] for f in json.loads(path.read_text())["features"]]
        assert (props[0]["rank_national"], props[4]["rank_national"]) == (2, None)
        return
    if fmt == "shp":
        with zipfile.ZipFile(path) as zf:
            zf.extractall(tmp_path / "x")
        path = tmp_path / "x" / "municipios.shp"
    gdf = pyogrio.read_dataframe(path, layer=0)
    name = "rank_nat" if fmt == "shp" else "rank_national"
    assert gdf[name].iloc[0] == 2 and pd.isna(gdf[name].iloc[4])


@pytest.mark.slow
def test_demo_atlas_editions_export(demo_store):
    """Every published demo edition exports; row counts match its geography vintage."""
    names = demo_store.edition_names()
    assert names
    for name in names:
        ed = demo_store.load_edition(name)
        data, _, _ = export_bytes(ed, "csv")
        df = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", dtype={"cvegeo": str})
        assert len(df) == len(demo_store.load_vintage(ed.vintage)) == len(ed.rows)
        assert df["cvegeo"].str.fullmatch(r"\d{5}").all()
        assert df["source"].str.startswith(SYNTHETIC_ES + ". Fuentes: Encuesta sintética").all()
        assert df["level"].value_counts().to_dict() == {
            k: v for k, v in ed.level_counts().items() if v}


def test_shapefile_export_must_be_named_zip(edition, tmp_path):
    with pytest.raises(BadParameter, match=r"a Shapefile export is a zip of several files: "
                                           r"name the output .zip, not 'out.shp'"):
        export_edition(edition, "shp", tmp_path / "out.shp")
    assert not list(tmp_path.iterdir())
    assert export_edition(edition, "shp", tmp_path / "out.ZIP").exists()


@pytest.mark.parametrize("fmt", ["gpkg", "shp"])
def test_layers_declare_polygons_even_when_the_filter_keeps_nothing(edition, tmp_path, fmt):
    name = "o.gpkg" if fmt == "gpkg" else "o.zip"
    for level, n in (("alto", 2), ("sin_informacion", 1)):
        ed = make_edition()
        if n == 1:  # a filter that keeps no municipality
            ed.rows.loc[ed.rows["level"] == "sin_informacion", "level"] = "medio"
        path = export_edition(ed, fmt, tmp_path / level / name, level=level)
        if fmt == "shp":
            with zipfile.ZipFile(path) as zf:
                zf.extractall(tmp_path / level / "x")
            path = tmp_path / level / "x" / "municipios.shp"
        info = pyogrio.read_info(path, layer=0)
        assert info["geometry_type"] in ("MultiPolygon", "Polygon")  # shp reports Polygon
        assert info["features"] == (n if n == 2 else 0)


@pytest.mark.parametrize("fmt", ["csv", "geojson"])
def test_semi_synthetic_edition_exports_its_own_attribution(fmt):
    """Simulated records on INEGI's real map: the card's attribution (INEGI credit + what is
    simulated) reaches the files, not the 'no real country' banner of the pure demo."""
    ed = make_edition(synthetic=True)
    ed.card["semi_synthetic"] = True
    ed.card["attribution"] = {
        "es": "SEMISINTÉTICO: geografía real del INEGI, registros simulados. Fuente: INEGI.",
        "en": "SEMI-SYNTHETIC: real INEGI geography, simulated records. Source: INEGI."}
    data, _, _ = export_bytes(ed, fmt)
    text = data.decode("utf-8-sig")
    assert "geografía real del INEGI, registros simulados" in text
    assert SYNTHETIC_ES not in text


def test_counts_and_probabilities_lose_float_noise():
    ed = make_edition()
    ed.rows["children"] = ed.rows["children"] + 2.68e-9
    ed.rows["probability"] = ed.rows["probability"] + 1e-12
    text = export_bytes(ed, "csv")[0].decode("utf-8-sig")
    assert "1000.0," in text and "1000.00000000" not in text
    assert ",0.2," in text


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_carries_level_rule_and_certainty(demo_store, tmp_path, fmt):
    """level_rule and level_certainty (empty for sin información) in all five formats, and
    the rule described in the provenance."""
    ed = demo_store.load_edition("2023")
    path = export_edition(ed, fmt, tmp_path / f"o.{FORMATS[fmt].extension}", state="07")
    expected = ed.rows[ed.rows["cve_ent"] == "07"].set_index("cvegeo")
    if fmt in ("csv", "xlsx"):
        if fmt == "csv":
            df = pd.read_csv(path, encoding="utf-8-sig", dtype={"cvegeo": str})
        else:  # Spanish headers; the dictionary sheet maps them back to the machine names
            from riskmap.publish.export import HEADERS

            names = {es: key for key, (es, _) in HEADERS.items()}
            df = pd.read_excel(path, sheet_name="municipios", dtype=str).rename(columns=names)
            for col in ("probability", "level_certainty"):
                df[col] = pd.to_numeric(df[col])
        assert df["rule"].str.startswith("Regla MIRTI (inferida").all()
    elif fmt == "shp":
        with zipfile.ZipFile(path) as zf:
            readme = zf.read("LEEME.txt").decode("utf-8")
            zf.extractall(tmp_path / "shp")
        assert "level_cert = level_certainty" in readme and "Regla MIRTI" in readme
        df = pyogrio.read_dataframe(tmp_path / "shp" / "municipios.shp").rename(
            columns={"level_cert": "level_certainty"})
    else:
        df = pyogrio.read_dataframe(path, **({"layer": "municipios"} if fmt == "gpkg" else {}))
        meta = (json.loads(path.read_text())["metadata"] if fmt == "geojson" else
                pyogrio.read_dataframe(path, layer="metadatos").set_index("clave")["valor"])
        assert "Regla MIRTI" in (meta["rule_text"]["es"] if fmt == "geojson"
                                 else meta["rule_text"])
    df = df.set_index(df["cvegeo"].astype(str))
    assert (df["level_rule"] == "mirti").all()
    got = pd.to_numeric(df["level_certainty"]).reindex(expected.index)
    np.testing.assert_allclose(got, expected["level_certainty"].round(4), atol=1e-9)
    none = expected["level"] == "sin_informacion"
    assert got[none].isna().all() and got[~none].between(0, 1).all()
