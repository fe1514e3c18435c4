"""One error shape on every route: bad parameter -> 400 listing allowed values, unknown -> 404,
writes -> 405, bugs -> a generic 500 without internals; HTML pages get the error page."""

from __future__ import annotations

import pytest
from werkzeug.exceptions import MethodNotAllowed

from webdata import EVIL_NAME, web_app


SHAPE = {"ok", "status", "error", "errors"}

#: (url, status, text the message must contain) for every API route.
CASES = [
    ("/api/v1/ediciones/1999", 404, "published: 2017, 2023"),
    ("/api/v1/ediciones/1999/municipios.json", 404, "published: 2017, 2023"),
    ("/api/v1/ediciones/2023/municipios.xml", 400, "allowed: json, geojson, csv"),
    ("/api/v1/ediciones/2023/municipios.json?nivel=rojo", 400,
     "allowed: alto, medio, bajo, sin_informacion"),
    ("/api/v1/ediciones/2023/municipios.csv?estado=99", 400, "allowed: 07, 12, 22, 30"),
    ("/api/v1/ediciones/2023/municipios.geojson?estado=abc", 400, "allowed: 07, 12, 22, 30"),
    ("/api/v1/ediciones/2023/municipios.json?page=zero", 400, "integer from 1"),
    ("/api/v1/ediciones/2023/municipios/99999", 404, "'99999' is not in edition 2023"),
    ("/api/v1/ediciones/1999/municipios/22001", 404, "published: 2017, 2023"),
    ("/api/v1/comparar?a=2017&b=1999", 400, "allowed: 2017, 2023"),
    ("/api/v1/comparar?formato=pdf", 400, "allowed: json, csv"),
    ("/api/v1/tendencias?a=2017&b=1999", 400, "allowed: 2017, 2023"),
    ("/api/v1/tendencias?por=mapa", 400, "allowed: municipio, estado, nacional"),
    ("/api/v1/tendencias?a=2017&b=2023", 400, "no trend decomposition is possible"),
    ("/api/v1/focalizacion?visitas=-3", 400, "integer from 1"),
    ("/api/v1/focalizacion?estados=99", 400, "allowed: 07, 12, 22, 30"),
    ("/api/v1/focalizacion?edicion=1999", 400, "allowed: 2017, 2023"),
    ("/api/v1/geometria/1999.geojson", 404, "stored: 2015, 2020"),
    ("/api/v1/geometria/no%20v%C3%A1lido.geojson", 404, "stored: 2015, 2020"),
    ("/api/v1/geometria/1999.topojson", 404, "stored: 2015, 2020"),
    ("/api/v1/resultados/resumen", 401, "authentication required"),
    ("/api/v1/resultados", 405, "method GET is not allowed"),
    ("/api/v1/focalizaciones", 401, "authentication required"),
    ("/api/v1/no-existe", 404, "/api/v1/no-existe"),
]


@pytest.fixture(scope="module")
def app(fake_dir):
    app = web_app(fake_dir)

    def boom():
        raise RuntimeError("secret internal detail /srv/path")

    # Routes that fail unexpectedly, to check the 500 handler (added before any request).
    app.add_url_rule("/api/v1/_boom", "api_boom", boom)
    app.add_url_rule("/_boom", "page_boom", boom)
    return app


@pytest.fixture()
def client(app):
    return app.test_client()


def check_shape(response, status):
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == SHAPE
    assert body["ok"] is False and body["status"] == status
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["errors"], list) and all(isinstance(e, str) for e in body["errors"])
    return body


@pytest.mark.parametrize("url, status, text", CASES)
def test_api_error_shape(client, url, status, text):
    body = check_shape(client.get(url), status)
    assert text in body["error"]
    if status == 400 and "allowed:" in text:
        # The errors list names the parameter and its allowed values too.
        assert any("allowed values are" in e for e in body["errors"])


def test_every_api_route_has_an_error_case(app):
    """A new API route must get an entry in CASES (and in the OpenAPI document)."""
    covered = set()
    adapter = app.url_map.bind("localhost")
    for url, _, _ in CASES:
        try:
            endpoint, _ = adapter.match(url.split("?")[0])
        except MethodNotAllowed:  # a write-only route (its GET answers 405)
            endpoint, _ = adapter.match(url.split("?")[0], method="POST")
        except Exception:  # noqa: BLE001 - the unknown-path case matches no rule
            continue
        covered.add(endpoint)
    api = {r.endpoint for r in app.url_map.iter_rules()
           if r.rule.startswith("/api/v1/") and r.endpoint not in ("api_boom", "api.openapi",
                                                                   "api.ediciones", "api.index")}
    assert api <= covered, api - covered


@pytest.mark.parametrize("url", [
    "/api/v1/ediciones", "/api/v1/ediciones/2023", "/api/v1/ediciones/2023/municipios.json",
    "/api/v1/ediciones/2023/municipios/22001", "/api/v1/comparar", "/api/v1/focalizacion",
    "/api/v1/geometria/2020.geojson", "/api/v1/openapi.json",
])
@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
def test_writes_are_refused(client, url, method):
    response = getattr(client, method)(url, json={"x": 1})
    body = check_shape(response, 405)
    assert "read-only" in body["error"]
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "HEAD"}


def test_unknown_api_path_points_to_the_openapi_document(client):
    body = check_shape(client.get("/api/v1/ediciones/2023/otra-cosa"), 404)
    assert body["errors"] == ["routes: see /api/v1/openapi.json"]


def test_unexpected_error_is_generic_and_logged(client, app, caplog):
    with caplog.at_level("ERROR"):
        body = check_shape(client.get("/api/v1/_boom"), 500)
    assert "secret" not in body["error"] and "/srv/path" not in str(body)
    assert "secret internal detail" in caplog.text  # the traceback went to the log


def test_unexpected_error_page_hides_internals(client):
    response = client.get("/_boom")
    assert response.status_code == 500 and response.mimetype == "text/html"
    text = response.get_data(as_text=True)
    assert "secret" not in text and "Traceback" not in text


def test_html_404_page_has_search_box(client):
    response = client.get("/no-existe")
    assert response.status_code == 404 and response.mimetype == "text/html"
    text = response.get_data(as_text=True)
    assert 'name="q"' in text and 'role="search"' in text


def test_html_404_search_results_are_escaped(client):
    response = client.get("/no-existe?q=brien")
    text = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "&lt;script&gt;alert(" in text and EVIL_NAME not in text
    assert "/municipio/22006" in text


def test_html_404_echoes_query_escaped(client):
    response = client.get('/no-existe?q="><script>alert(1)</script>')
    text = response.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_html_bad_parameter_page(client):
    response = client.get("/descargas/2023.pdf")
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert "csv, xlsx, geojson, gpkg, shp" in response.get_data(as_text=True)
