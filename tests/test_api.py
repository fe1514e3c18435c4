"""JSON API /api/v1: editions, municipalities in three formats, geometry, comparison, targeting."""

from __future__ import annotations

import gzip
import io
import json

import pandas as pd
import pytest
from numpy.testing import assert_allclose

from riskmap.publish.edition import LEVELS, ROW_COLUMNS

from webdata import EVIL_NAME, build_fake_atlas, web_app


@pytest.fixture(scope="module")
def app(fake_dir):
    return web_app(fake_dir, cache_max_age=123, page_size=10, max_page_size=25)


def get_json(client, url, status=200):
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    return response.get_json()


def test_editions_list_with_working_links(client):
    body = get_json(client, "/api/v1/ediciones")
    assert body["ok"] is True and body["latest"] == "2023"
    assert [e["name"] for e in body["data"]] == ["2017", "2023"]
    assert body["meta"]["synthetic"] is True
    assert "SINTÉTICOS" in body["meta"]["attribution"]["es"]
    for edition in body["data"]:
        for name, link in edition["links"].items():
            assert client.get(link).status_code == 200, (name, link)
    assert client.get(body["links"]["openapi"]).status_code == 200


def test_edition_summary(client, atlas):
    body = get_json(client, "/api/v1/ediciones/2017")
    data = body["data"]
    assert data["vintage"] == "2015" and data["kind"] == "modelled"
    assert data["level_counts"] == atlas.edition("2017").level_counts()
    assert data["n_municipalities"] == 40
    assert [c["name"] for c in data["coefficients"]][:2] == ["intercept", "age"]
    assert data["diagnostics"]["auc"] == pytest.approx(0.78)
    assert body["meta"]["provenance"]["edition"] == "2017"


def test_json_pagination_covers_every_row_once(client, atlas):
    url = "/api/v1/ediciones/2023/municipios.json?per_page=7"
    seen, pages = [], 0
    while url:
        body = get_json(client, url)
        assert len(body["data"]) <= 7
        seen += [r["cvegeo"] for r in body["data"]]
        url = body["links"]["next"]
        pages += 1
    assert pages == body["pagination"]["pages"] == 6
    assert seen == atlas.rows("2023")["cvegeo"].tolist()
    assert body["pagination"]["total"] == 42
    assert body["links"]["prev"] is not None


def test_json_default_and_max_page_size(client):
    body = get_json(client, "/api/v1/ediciones/2023/municipios.json")
    assert body["pagination"]["per_page"] == 10 and len(body["data"]) == 10
    bad = get_json(client, "/api/v1/ediciones/2023/municipios.json?per_page=26", 400)
    assert "integer from 1 to 25" in bad["error"]
    bad = get_json(client, "/api/v1/ediciones/2023/municipios.json?page=99", 400)
    assert "'page'" in bad["error"]


def test_json_filters_and_links_keep_them(client, atlas):
    body = get_json(client, "/api/v1/ediciones/2017/municipios.json?estado=22&nivel=alto"
                            "&per_page=2")
    expected = atlas.rows("2017", state="22", level="alto")
    assert body["pagination"]["total"] == len(expected)
    assert all(r["cve_ent"] == "22" and r["level"] == "alto" for r in body["data"])
    for key in ("next", "csv", "geojson"):
        assert "estado=22" in body["links"][key] and "nivel=alto" in body["links"][key]
    names = [r["nom_mun"] for r in body["data"]]
    assert EVIL_NAME in names  # exact round trip through JSON
    row = next(r for r in body["data"] if r["cvegeo"] == "22006")
    assert_allclose([row["probability"], row["ci_low"], row["ci_high"]], [0.30, 0.25, 0.36])


def test_csv_stream_equals_rows(client, atlas):
    response = client.get("/api/v1/ediciones/2017/municipios.csv?nivel=alto")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    table = pd.read_csv(io.StringIO(response.get_data(as_text=True)),
                        dtype={"cvegeo": str, "cve_ent": str})
    assert list(table.columns) == list(ROW_COLUMNS) + ["synthetic", "source"]
    expected = atlas.rows("2017", level="alto")
    assert table["cvegeo"].tolist() == expected["cvegeo"].tolist()
    assert_allclose(table["probability"], expected["probability"])
    assert table["synthetic"].all()
    assert EVIL_NAME in set(table["nom_mun"])


def test_csv_empty_selection_has_header(client):
    # 2017 has no sin_informacion municipality in state 22.
    response = client.get("/api/v1/ediciones/2017/municipios.csv?estado=22&nivel=sin_informacion")
    assert response.status_code == 200
    assert response.get_data(as_text=True).startswith("edition,cvegeo,")
    assert len(response.get_data(as_text=True).strip().splitlines()) == 1


def test_geojson_stream(client, atlas):
    response = client.get("/api/v1/ediciones/2023/municipios.geojson?estado=07")
    assert response.status_code == 200 and response.mimetype == "application/geo+json"
    fc = json.loads(response.get_data(as_text=True))
    assert fc["type"] == "FeatureCollection" and fc["meta"]["synthetic"] is True
    codes = [f["properties"]["cvegeo"] for f in fc["features"]]
    assert codes == atlas.rows("2023", state="07")["cvegeo"].tolist()
    assert len(codes) == 11  # 07003 was split in 2020
    first = fc["features"][0]
    assert first["geometry"]["type"] == "Polygon"
    assert set(first["properties"]) >= set(ROW_COLUMNS)


def test_municipality_with_history_and_neighbours(client, atlas):
    body = get_json(client, "/api/v1/ediciones/2023/municipios/22011")
    data = body["data"]
    assert data["nom_mun"] == "Santa Rosa Jáuregui" and data["level"] == "sin_informacion"
    assert [h["edition"] for h in data["history"]] == ["2017", "2023"]
    assert data["history"][0]["derived_from"] == "22001"
    assert {n["cvegeo"] for n in data["neighbours"]} == {
        "22001", "22002", "12001", "12002", "30001", "30002"}
    for link in body["links"]["neighbours"]:
        assert client.get(link).status_code == 200
    evil = get_json(client, "/api/v1/ediciones/2017/municipios/22006")["data"]
    assert evil["nom_mun"] == EVIL_NAME and len(evil["factors"]) == 10


def test_geometry_etag_gzip_and_conditional_get(client, atlas):
    body, etag = atlas.geometry("2020")
    zipped = client.get("/api/v1/geometria/2020.geojson", headers={"Accept-Encoding": "gzip"})
    assert zipped.status_code == 200
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.headers["ETag"] == etag
    assert zipped.headers["Cache-Control"] == "public, max-age=123"
    assert zipped.data == body
    plain = client.get("/api/v1/geometria/2020.geojson")
    assert "Content-Encoding" not in plain.headers
    assert len(json.loads(plain.data)["features"]) == 42
    assert json.loads(gzip.decompress(zipped.data)) == json.loads(plain.data)
    again = client.get("/api/v1/geometria/2020.geojson", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    weak = client.get("/api/v1/geometria/2020.geojson", headers={"If-None-Match": "W/" + etag})
    assert weak.status_code == 304
    stale = client.get("/api/v1/geometria/2020.geojson", headers={"If-None-Match": '"x"'})
    assert stale.status_code == 200


def test_json_is_served_gzipped_when_accepted(client):
    response = client.get("/api/v1/ediciones/2023/municipios.json?per_page=25",
                          headers={"Accept-Encoding": "gzip"})
    assert response.headers.get("Content-Encoding") == "gzip"
    assert json.loads(gzip.decompress(response.data))["ok"] is True


@pytest.mark.parametrize("path", ["/api/v1/ediciones/2023/municipios.geojson",
                                  "/api/v1/ediciones/2023/municipios.csv"])
def test_streamed_lists_gzipped_when_accepted(client, path):
    plain = client.get(path)
    assert plain.is_streamed and "Content-Encoding" not in plain.headers
    assert "Accept-Encoding" in plain.headers.get("Vary", "")
    zipped = client.get(path, headers={"Accept-Encoding": "br, gzip"})
    assert zipped.is_streamed and zipped.headers["Content-Encoding"] == "gzip"
    assert "Content-Length" not in zipped.headers
    assert "Accept-Encoding" in zipped.headers["Vary"]
    assert gzip.decompress(zipped.data) == plain.data
    assert len(zipped.data) < len(plain.data) / 2
    refused = client.get(path, headers={"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in refused.headers and refused.data == plain.data


def test_openapi_documents_gzip_of_full_resolution_geojson(client):
    doc = get_json(client, "/api/v1/openapi.json")
    text = doc["paths"]["/ediciones/{edicion}/municipios.{formato}"]["get"]["description"]
    assert "gzip" in text and "full-resolution" in text and "/geometria/" in text


def test_focalizacion_bad_parameters(client):
    bad = get_json(client, "/api/v1/focalizacion?criterio=mayor", 400)
    assert "allowed: conteo, tasa" in bad["error"]
    bad = get_json(client, "/api/v1/focalizacion?niveles=alto,extremo", 400)
    assert "allowed: alto, medio, bajo, sin_informacion" in bad["error"]
    bad = get_json(client, "/api/v1/focalizacion?visitas=100001", 400)
    assert "integer from 1 to 100000" in bad["error"]  # the page's limit, one parser
    bad = get_json(client, "/api/v1/focalizacion?edicion=1900", 400)
    assert "allowed: 2017, 2023" in bad["error"]


def test_focalizacion_worklist(client):
    body = get_json(client, "/api/v1/focalizacion?edicion=2023&visitas=50"
                            "&estados=22&estados=07&niveles=alto,medio&criterio=tasa")
    assert body["parameters"] == {"edicion": "2023", "visitas": 50, "criterio": "tasa",
                                  "estados": "22,07", "niveles": "alto,medio",
                                  "enfriamiento": 180, "recientes": 0}
    assert body["units"]["lambda"] == {"value": 0.5, "source": "default"}
    assert body["units"]["cooldown_applied"] is False
    rows = body["data"]
    assert rows and all(r["cvegeo"][:2] in ("22", "07") for r in rows)
    assert all(r["level"] in ("alto", "medio") for r in rows)
    assert sum(r["visits"] for r in rows) == 50
    csv = client.get(body["links"]["csv"])
    assert csv.status_code == 200 and csv.mimetype == "text/csv"


def test_comparar(client):
    body = get_json(client, "/api/v1/comparar?a=2017&b=2023")
    assert body["editions"] == {"a": "2017", "b": "2023"}
    assert set(body["meta"]["editions"]) == {"2017", "2023"}
    text = json.dumps(body["data"])
    for level in LEVELS:
        assert level in text
    csv = client.get(body["links"]["csv"])
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    bad = get_json(client, "/api/v1/comparar?a=2017&b=2024", 400)
    assert "allowed: 2017, 2023" in bad["error"]


@pytest.mark.slow
def test_demo_atlas_end_to_end(demo_dir):
    """The synthetic demo through every API route (the shared demo fixture, read-only)."""
    client = web_app(demo_dir).test_client()
    editions = get_json(client, "/api/v1/ediciones")
    names = [e["name"] for e in editions["data"]]
    assert len(names) >= 2 and editions["meta"]["synthetic"] is True
    latest = editions["latest"]
    for edition in editions["data"]:
        for link in edition["links"].values():
            response = client.get(link)
            assert response.status_code == 200, link
            response.close()
    first = get_json(client, f"/api/v1/ediciones/{latest}/municipios.json?per_page=50")
    code = first["data"][0]["cvegeo"]
    detail = get_json(client, f"/api/v1/ediciones/{latest}/municipios/{code}")["data"]
    assert [h["edition"] for h in detail["history"]] == names
    assert detail["neighbours"]
    comparison = get_json(client, f"/api/v1/comparar?a={names[0]}&b={latest}")["data"]
    counts = get_json(client, f"/api/v1/ediciones/{latest}")["data"]["level_counts"]
    assert {lvl: c["b"] for lvl, c in comparison["counts"].items()} == counts
    worklist = get_json(client, f"/api/v1/focalizacion?edicion={latest}&visitas=2000")["data"]
    assert sum(r["visits"] for r in worklist) == 2000
    assert worklist[0]["rank"] == 1


def test_imported_edition_without_factors_or_errors(imported_app):
    client = imported_app.test_client()
    summary = get_json(client, "/api/v1/ediciones/2023")["data"]
    assert summary["kind"] == "imported" and "coefficients" not in summary
    data = get_json(client, "/api/v1/ediciones/2023/municipios/22006")["data"]
    assert data["factors"] == [] and data["se"] is None
    assert data["history"][1]["change"] is None  # no standard error: no significance test
    assert get_json(client, "/api/v1/ediciones/2023/municipios.json")["pagination"]["total"] == 42


def test_targeting_an_edition_without_expected_counts_is_a_clear_400(tmp_path):
    import numpy as np

    from riskmap.publish.store import DataStore
    root = build_fake_atlas(tmp_path, imported_2023=True)
    store = DataStore(root)
    ed = store.load_edition("2023")
    ed.rows["expected_child_labour"] = np.nan  # as import-edition publishes it
    store.publish_edition(ed)
    client = web_app(root).test_client()
    body = get_json(client, "/api/v1/focalizacion?edicion=2023", 400)
    assert body["ok"] is False and "publishes no expected number" in body["error"]
    assert body["error"].endswith("allowed: 2017")
    assert get_json(client, "/api/v1/focalizacion?edicion=2017")["data"]
