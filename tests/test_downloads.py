"""/descargas: every edition x format, filters carried into the links, files with provenance."""

from __future__ import annotations

import io
import re
import zipfile
from html import unescape

import pandas as pd
import pytest
from numpy.testing import assert_allclose

from riskmap.publish.edition import ROW_COLUMNS
from riskmap.web.atlas import Atlas

from webdata import EVIL_NAME

FORMATS = ("csv", "xlsx", "geojson", "gpkg", "shp")


def links(html: str) -> list[str]:
    return [unescape(h) for h in re.findall(r'href="(/descargas/[^"]+)"', html)]


def test_page_lists_every_edition_and_format(client):
    response = client.get("/descargas")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    found = {tuple(re.match(r"/descargas/([^.?]+)\.(\w+)", h).groups()) for h in links(html)}
    assert found == {(e, f) for e in ("2017", "2023") for f in FORMATS}
    # Data dictionary: every exported column is explained; synthetic data are labelled.
    for col in ROW_COLUMNS:
        assert f"<code>{col}</code>" in html
    assert "SINTÉTICOS" in html
    assert "Querétaro" in html  # state filter options
    # Self-contained: nothing on the page asks the browser to contact another host.
    assert not re.search(r'(?:src|href|action)="(?:https?:)?//', html)


def test_page_in_english(client):
    html = client.get("/descargas?lang=en").get_data(as_text=True)
    assert "Municipal code" in html or "municipal code" in html
    assert "SYNTHETIC" in html


def test_filters_go_into_the_links(client):
    html = client.get("/descargas?estado=22&nivel=alto").get_data(as_text=True)
    hrefs = links(html)
    assert len(hrefs) == 10
    assert all("estado=22" in h and "nivel=alto" in h for h in hrefs)
    assert re.search(r'<option value="22" selected>', html)


def test_page_rejects_bad_filter(client):
    response = client.get("/descargas?nivel=rojo")
    assert response.status_code == 400
    assert "alto, medio, bajo, sin_informacion" in response.get_data(as_text=True)


@pytest.mark.parametrize("fmt, mimetype, suffix", [
    ("csv", "text/csv", ".csv"), ("xlsx", "application/vnd.openxmlformats", ".xlsx"),
    ("geojson", "application/geo+json", ".geojson"), ("gpkg", "application/geopackage", ".gpkg"),
    ("shp", "application/zip", ".zip"),
])
def test_each_format_downloads(client, fmt, mimetype, suffix):
    response = client.get(f"/descargas/2023.{fmt}?estado=22")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith(mimetype)
    assert response.headers["Content-Type"].count("charset") <= 1
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and f'riskmap_2023_22{suffix}"' in disposition
    assert len(response.data) > 100
    if fmt == "shp":
        names = zipfile.ZipFile(io.BytesIO(response.data)).namelist()
        assert any(n.endswith(".shp") for n in names) and any(n.endswith(".dbf") for n in names)


def test_csv_download_is_exactly_the_filtered_rows(client, fake_dir):
    response = client.get("/descargas/2017.csv?estado=22&nivel=alto")
    table = pd.read_csv(io.BytesIO(response.data), dtype={"cvegeo": str}, encoding="utf-8-sig")
    expected = Atlas(fake_dir).rows("2017", state="22", level="alto")
    assert sorted(table["cvegeo"]) == sorted(expected["cvegeo"])
    merged = table.merge(expected, on="cvegeo", suffixes=("", "_x"))
    # Exports keep probabilities to 1e-6 (riskmap.publish.export._DECIMALS).
    assert_allclose(merged["probability"], merged["probability_x"], rtol=0, atol=5e-7)
    assert EVIL_NAME in set(table["nom_mun"])


def test_download_etag_and_conditional_get(client):
    first = client.get("/descargas/2023.geojson")
    etag = first.headers["ETag"]
    again = client.get("/descargas/2023.geojson", headers={"If-None-Match": etag})
    assert again.status_code == 304
    other = client.get("/descargas/2023.geojson?nivel=alto")
    assert other.headers["ETag"] != etag


@pytest.mark.parametrize("url, status, text", [
    ("/descargas/1999.csv", 404, "published: 2017, 2023"),
    ("/descargas/2023.pdf", 400, "csv, xlsx, geojson, gpkg, shp"),
    ("/descargas/2023.csv?estado=99", 400, "07, 12, 22, 30"),
    ("/descargas/2023.csv?nivel=x", 400, "alto, medio, bajo, sin_informacion"),
])
def test_download_errors(client, url, status, text):
    response = client.get(url)
    assert response.status_code == status and response.mimetype == "text/html"
    assert text in unescape(response.get_data(as_text=True))


def test_xlsx_download_follows_the_page_language(client):
    import openpyxl

    es = openpyxl.load_workbook(io.BytesIO(client.get("/descargas/2023.xlsx").data))
    en = openpyxl.load_workbook(io.BytesIO(client.get("/descargas/2023.xlsx?lang=en").data))
    assert es.sheetnames[0] == "municipios" and en.sheetnames[0] == "municipalities"
    assert "Probabilidad" in [c.value for c in es.active[1]]
    assert "Probability" in [c.value for c in en.active[1]]
