"""Official (published) lists: strict import, reinterpretations reported, headers, footers and
sheets found, and the list credited to its real publisher in every output."""

from __future__ import annotations

import io
import json
import zipfile

import geopandas as gpd
import openpyxl
import pandas as pd
import pytest
from shapely.geometry import box

from riskmap.cli import main
from riskmap.inegi.imported import read_list
from riskmap.publish.store import DataStore

CODES = [("01", 1), ("01", 2), ("02", 1), ("02", 2), ("02", 3)]
SOURCE = "STPS, MIRTI 2017"
CREDIT_ES = ("Fuente: STPS, MIRTI 2017. Límites municipales: INEGI, Marco Geoestadístico. "
             "Datos transformados por riskmap; INEGI no avala este producto.")
CREDIT_EN = ("Source: STPS, MIRTI 2017. Municipal boundaries: INEGI, Marco Geoestadístico. "
             "Data transformed by riskmap; INEGI does not endorse this product.")


@pytest.fixture()
def boundaries(tmp_path):
    rows = [{"CVEGEO": f"{ent}{m:03d}", "NOMGEO": f"Municipio {ent}-{m}",
             "geometry": box(i, 0, i + 1, 1)} for i, (ent, m) in enumerate(CODES)]
    path = tmp_path / "mun_2015.gpkg"
    gpd.GeoDataFrame(rows, crs=4326).to_file(path, driver="GPKG")
    return path


def run(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def import_args(levels, boundaries, data, *extra):
    return ["import-edition", "--edition", "mirti2017", "--levels", levels, "--boundaries",
            boundaries, "--data-dir", data, *extra]


# -- strictness ------------------------------------------------------------------------------
def test_missing_municipalities_fail_unless_allowed_and_are_then_listed(tmp_path, boundaries,
                                                                       capsys):
    levels = tmp_path / "l.csv"
    levels.write_text("cvegeo,nivel\n01001,Alto\n01002,Medio\n02001,Bajo\n", encoding="utf-8")
    data = tmp_path / "data"
    code, out, err = run(capsys, *import_args(levels, boundaries, data))
    assert code == 2 and "Traceback" not in err
    assert "2 municipalities of the 2015 boundaries missing from the list" in err
    assert "02002 Municipio 02-2, Baja California" in err and "--allow-missing" in err
    assert DataStore(data).edition_names() == []  # nothing published
    code, out, err = run(capsys, *import_args(levels, boundaries, data, "--allow-missing"))
    assert code == 0, err
    assert "2 municipalities missing from the list, published as sin_informacion" in out
    assert "02002 Municipio 02-2, Baja California" in out
    assert "02003 Municipio 02-3, Baja California" in out
    ed = DataStore(data).load_edition("mirti2017")
    assert ed.level_counts()["sin_informacion"] == 2


def test_every_problem_of_a_file_in_one_message(tmp_path, boundaries, capsys):
    levels = tmp_path / "l.csv"
    levels.write_text("cvegeo,nivel,probabilidad\n"
                      "01001,Muy alto,0.2\n"      # row 2: unknown level
                      "01x02,Alto,0.1\n"          # row 3: malformed code
                      "02001,Bajo,abc\n"          # row 4: not a number
                      "02002,Medio,0.1\n"
                      "02002,Medio,0.1\n"         # rows 5, 6: repeated code
                      "09009,Alto,0.3\n",         # not in the boundaries
                      encoding="utf-8")
    code, out, err = run(capsys, *import_args(levels, boundaries, tmp_path / "data"))
    assert code == 2 and "Traceback" not in err
    assert "l.csv: 6 problems:" in err
    assert "column 'nivel', row 2: unknown level 'Muy alto'" in err
    assert "column 'cvegeo', row 3: expected a 5-digit code, found '01x02'" in err
    assert "column 'probabilidad', row 4: expected a number, found 'abc'" in err
    assert "column 'cvegeo', rows 5, 6: code 02002 listed more than once" in err
    assert "1 code(s) of the list are not in the 2015 boundaries: 09009" in err
    assert "missing from the list" in err  # 01001..02003 lost to the problems above
    assert err.count("riskmap: error:") == 1  # one message, several rows


def test_reinterpreted_values_are_reported(tmp_path, boundaries, capsys):
    levels = tmp_path / "l.csv"
    levels.write_text("cvegeo;nivel\n01001;Alta\n01002;N/D\n02001;No significativo\n"
                      "02002;\n02003;ALTO\n", encoding="utf-8")
    code, out, err = run(capsys, *import_args(levels, boundaries, tmp_path / "data"))
    assert code == 0, err
    assert "'Alta' -> alto (1 row)" in out
    assert "'N/D' -> sin_informacion (1 row)" in out
    assert "'No significativo' -> medio (1 row)" in out
    assert "(empty) -> sin_informacion (1 row)" in out
    assert "'ALTO'" not in out  # the same word in capitals is not a reinterpretation
    card = DataStore(tmp_path / "data").load_card("mirti2017")
    assert {"value": "Alta", "level": "alto", "rows": 1} in card["import"]["reinterpreted"]


def test_title_row_and_footer_in_csv(tmp_path):
    levels = tmp_path / "l.csv"
    levels.write_text("Municipios con riesgo de trabajo infantil - MIRTI 2017\n\n"
                      "cvegeo,nivel\n01001,Alto\n01002,Bajo\n\nFuente: STPS\n",
                      encoding="utf-8")
    listing = read_list(levels)
    assert listing.problems == [] and listing.header_row == 3
    assert listing.table["cvegeo"].tolist() == ["01001", "01002"]
    assert listing.skipped == [
        {"row": 1, "text": "Municipios con riesgo de trabajo infantil - MIRTI 2017",
         "kind": "title"},
        {"row": 7, "text": "Fuente: STPS", "kind": "footer"}]


def test_xlsx_sheet_title_and_footer(tmp_path, boundaries, capsys):
    book = openpyxl.Workbook()
    notes = book.active
    notes.title = "Notas"
    notes.append(["Este libro contiene la lista publicada"])
    sheet = book.create_sheet("MIRTI 2017")
    sheet.append(["Resultados MIRTI 2017 por municipio"])
    sheet.append([])
    sheet.append(["CVE_ENT", "CVE_MUN", "Municipio", "Nivel"])
    for ent, mun in CODES:
        sheet.append([int(ent), mun, f"M {ent}-{mun}", "Alto" if mun == 1 else "Medio"])
    sheet.append(["Fuente: STPS"])
    path = tmp_path / "mirti.xlsx"
    book.save(path)
    data = tmp_path / "data"
    code, out, err = run(capsys, *import_args(path, boundaries, data, "--sheet", "MIRTI 2017",
                                              "--source", SOURCE))
    assert code == 0, err
    assert "sheet 'MIRTI 2017', header on row 3: 5 municipalities listed" in out
    assert "footer row 9 ignored: 'Fuente: STPS'" in out
    assert "title row 1 ignored: 'Resultados MIRTI 2017 por municipio'" in out
    assert DataStore(data).load_edition("mirti2017").level_counts()["alto"] == 2
    # Without --sheet the first sheet holding a header is read; an unknown sheet is named.
    with pytest.warns(UserWarning, match="zero-padded"):
        assert read_list(path).sheet == "MIRTI 2017"
    code, out, err = run(capsys, *import_args(path, boundaries, data, "--sheet", "Hoja9"))
    assert code == 2 and "no sheet 'Hoja9' in the workbook; sheets: Notas, MIRTI 2017" in err


def test_a_row_without_code_inside_the_data_is_a_problem_not_a_footer(tmp_path):
    levels = tmp_path / "l.csv"
    levels.write_text("cvegeo,nivel\n01001,Alto\nFuente: STPS,\n01002,Bajo\n", encoding="utf-8")
    listing = read_list(levels)
    assert listing.problems == ["column 'cvegeo', row 3: expected a 5-digit code, found "
                                "'Fuente: STPS'"]


# -- attribution -----------------------------------------------------------------------------
@pytest.fixture()
def credited(tmp_path, boundaries, capsys):
    levels = tmp_path / "l.csv"
    levels.write_text("cvegeo,nivel,probabilidad\n01001,Alto,0.2\n01002,Medio,0.1\n"
                      "02001,Bajo,0.05\n02002,Medio,0.1\n02003,Bajo,0.04\n", encoding="utf-8")
    data = tmp_path / "data"
    code, out, err = run(capsys, *import_args(levels, boundaries, data, "--source", SOURCE))
    assert code == 0, err
    assert f"credited: {CREDIT_ES}" in out
    return data


def test_card_and_provenance_credit_the_publisher(credited):
    from riskmap.provenance import provenance

    card = DataStore(credited).load_card("mirti2017")
    assert card["attribution"] == {"es": CREDIT_ES, "en": CREDIT_EN}
    info = provenance(card)
    assert info["attribution"] == {"es": CREDIT_ES, "en": CREDIT_EN}
    assert "Fuente: INEGI (" not in json.dumps(info, ensure_ascii=False)


def test_source_given_with_its_own_label_is_quoted_verbatim():
    from riskmap.provenance import attribution

    card = {"kind": "imported", "sources": ["Fuente: STPS, MIRTI 2017"]}
    assert attribution(card, "es").startswith("Fuente: STPS, MIRTI 2017. Límites municipales: "
                                              "INEGI. ")
    other = {"kind": "imported", "sources": ["STPS", {"name": "Gobierno del Estado",
                                                      "role": "boundaries"}]}
    assert attribution(other, "es") == "Fuente: STPS. Límites municipales: Gobierno del Estado."


def test_old_cards_with_the_inegi_credit_are_corrected():
    from riskmap.provenance import attribution

    card = {"kind": "imported", "sources": [SOURCE],
            "attribution": {"es": "Fuente: INEGI (STPS, MIRTI 2017). Datos transformados por "
                                  "riskmap; INEGI no avala este producto."}}
    assert attribution(card, "es").startswith("Fuente: STPS, MIRTI 2017. ")


def test_every_export_credits_the_publisher(credited):
    from riskmap.publish.export import export_bytes

    ed = DataStore(credited).load_edition("mirti2017")
    csv_bytes = export_bytes(ed, "csv")[0]
    table = pd.read_csv(io.BytesIO(csv_bytes), encoding="utf-8-sig", dtype=str)
    assert set(table["source"]) == {CREDIT_ES}
    book = openpyxl.load_workbook(io.BytesIO(export_bytes(ed, "xlsx")[0]))
    meta = {r[0]: r[1] for r in book["metadatos"].iter_rows(values_only=True)}
    assert meta["atribución"] == CREDIT_ES
    english = openpyxl.load_workbook(io.BytesIO(export_bytes(ed, "xlsx", lang="en")[0]))
    assert {r[0]: r[1] for r in english["metadata"].iter_rows(values_only=True)}[
        "attribution"] == CREDIT_EN
    sources = {r[0].value for r in book["municipios"].iter_rows(min_row=2)
               for r in [[c for c in r if c.column_letter == _column(book, "source")]]}
    assert sources == {CREDIT_ES}
    with zipfile.ZipFile(io.BytesIO(export_bytes(ed, "shp")[0])) as zf:
        readme = zf.read("LEEME.txt").decode("utf-8")
    assert f"Atribución: {CREDIT_ES}" in readme and f"Attribution: {CREDIT_EN}" in readme
    assert "Fuente: INEGI (" not in readme
    doc = json.loads(export_bytes(ed, "geojson")[0])
    assert doc["metadata"]["attribution"]["es"] == CREDIT_ES


def _column(book, name):
    from riskmap.publish.export import HEADERS

    header = next(book["municipios"].iter_rows(max_row=1))
    return next(c.column_letter for c in header if c.value == HEADERS[name][0])


def test_pages_and_api_credit_the_publisher(credited):
    from webdata import web_app

    client = web_app(credited).test_client()
    html = client.get("/?lang=es").get_data(as_text=True)
    assert CREDIT_ES in html and "Fuente: INEGI (" not in html
    html = client.get("/?lang=en").get_data(as_text=True)
    assert CREDIT_EN in html
    meta = client.get("/api/v1/ediciones/mirti2017").get_json()["meta"]
    assert meta["attribution"] == {"es": CREDIT_ES, "en": CREDIT_EN}
    listing = client.get("/api/v1/ediciones/mirti2017/municipios.csv")
    text = listing.get_data(as_text=True)
    assert CREDIT_ES in text and "Fuente: INEGI (" not in text


def test_methodology_page_lists_reinterpretations_and_missing(tmp_path, boundaries, capsys):
    from webdata import web_app

    levels = tmp_path / "l.csv"
    levels.write_text("cvegeo,nivel\n01001,Alta\n01002,N/D\n02001,Bajo\n", encoding="utf-8")
    data = tmp_path / "data"
    code, _, err = run(capsys, *import_args(levels, boundaries, data, "--allow-missing",
                                              "--source", SOURCE))
    assert code == 0, err
    html = web_app(data).test_client().get("/metodologia?lang=es").get_data(as_text=True)
    reinterpreted = html.split("data-reinterpreted")[1].split("</ul>")[0]
    assert "«Alta» → Alto (1)" in reinterpreted and "«N/D» → Sin información (1)" in reinterpreted
    missing = html.split("data-missing-list")[1].split("</details>")[0]
    assert ": 2</summary>" in missing and "02003 Municipio 02-3, Baja California" in missing
    assert "INEGI, Marco Geoestadístico (límites municipales)" in html
