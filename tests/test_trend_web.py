"""The trend page, the municipality page's decomposition and ``/api/v1/tendencias`` over a
small demo atlas (census records kept), plus the plain notice when no decomposition is
possible (an imported edition, or editions published without census records)."""

from __future__ import annotations

import csv
import io
import re
import shutil

import numpy as np
import pytest

from riskmap.model.trend import columns
from riskmap.publish.store import DataStore
from webdata import build_fake_atlas, web_app

EXTERNAL = re.compile(r'''(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//''', re.I)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from riskmap.demo import DemoConfig, build_demo

    path = tmp_path_factory.mktemp("trend-web")
    build_demo(path, config=DemoConfig.small())
    return path


@pytest.fixture(scope="module")
def app(data_dir):
    return web_app(data_dir)


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.mark.parametrize("lang, words", [
    ("es", ["Tendencias: qué cambió y por qué", "la tasa nacional",
            "Factor dominante por municipio", "Por estado"]),
    ("en", ["Trends: what changed and why", "the national rate", "Dominant driver by municipality",
            "By state"]),
])
def test_page_in_both_languages(client, lang, words):
    r = client.get(f"/tendencias?a=2017&b=2023&lang={lang}")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    for w in words:
        assert w in html
    assert 'data-chart="waterfall"' in html and "<svg" in html
    assert 'class="sortable" data-table="states"' in html
    assert html.count("<tr>") >= 6  # one per state of the small country
    assert not EXTERNAL.search(html)
    sentences = re.search(r"data-sentences>(.*?)</div>", html, re.S).group(1)
    assert re.search(r"(IC 95 %|95 % CI): [0-9.]+ (a|to) [0-9.]+", sentences), sentences


def test_sentences_follow_the_numbers(client, app):
    from riskmap.web.atlas import get_atlas

    with app.app_context():
        nat = get_atlas().trend("2017", "2023").nation.iloc[0]
    html = client.get("/tendencias?a=2017&b=2023&lang=es").get_data(as_text=True)
    verb = "redujeron" if nat["composition"] < 0 else "aumentaron"
    assert f"(composición) {verb} la tasa nacional {abs(nat['composition']) * 100:.2f}" in html


def test_state_view_and_links(client):
    html = client.get("/tendencias?a=2017&b=2023&estado=02").get_data(as_text=True)
    assert "la tasa de" in html
    assert '"estado": "02"' in html
    assert "Mayor parte: " in html  # the driver map's tooltips name the largest part
    index = client.get("/").get_data(as_text=True)
    assert "/tendencias" in index  # navigation
    comparar = client.get("/comparar?a=2017&b=2023").get_data(as_text=True)
    assert "/tendencias?a=2017&amp;b=2023" in comparar


@pytest.mark.parametrize("query, status", [
    ("a=2017&b=2017", 400), ("a=2017&b=2023&estado=77", 400), ("a=1999&b=2023", 400),
])
def test_bad_parameters(client, query, status):
    assert client.get(f"/tendencias?{query}").status_code == status
    r = client.get(f"/api/v1/tendencias?{query}")
    assert r.status_code == status
    body = r.get_json()
    assert body["ok"] is False and body["status"] == status and body["errors"]


def test_municipality_page_has_its_decomposition(client, app):
    from riskmap.web.atlas import get_atlas

    with app.app_context():
        row = get_atlas().trend("2017", "2023").municipalities.iloc[0]
    html = client.get(f"/municipio/{row['unit']}").get_data(as_text=True)
    assert 'data-trend="municipio"' in html
    assert f"{row['change'] * 100:+.2f}" in html


def test_api_json_rows_and_invariant(client):
    r = client.get("/api/v1/tendencias?a=2017&b=2023&por=estado")
    assert r.status_code == 200
    body = r.get_json()
    data = body["data"]
    assert {"a", "b", "geography", "covariates", "domains", "draws", "notes", "rows"} <= set(data)
    assert data["draws"] == 1000 and body["meta"]["synthetic"] is True
    for row in data["rows"]:
        assert row["composition"] + row["behaviour"] == pytest.approx(row["change"], abs=1e-12)
        assert row["change_ci_low"] <= row["change"] <= row["change_ci_high"]
    n = len(DataStore(client.application.config["RISKMAP"]["data_dir"]).load_vintage("2015"))
    mun = client.get("/api/v1/tendencias?a=2017&b=2023&por=municipio").get_json()
    assert len(mun["data"]["rows"]) == n
    one = client.get("/api/v1/tendencias?a=2017&b=2023&por=municipio&estado=01").get_json()
    assert {r["cve_ent"] for r in one["data"]["rows"]} == {"01"}


def test_api_csv_has_the_cli_columns(client, app):
    from riskmap.web.atlas import get_atlas

    r = client.get("/api/v1/tendencias?a=2017&b=2023&por=nacional&formato=csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    with app.app_context():
        expected = columns(get_atlas().trend("2017", "2023"), "nation")
    assert rows[0] == expected + ["synthetic", "source"]
    assert rows[1][0] == "nacional"


def test_computed_once_per_pair_of_edition_files(app):
    from riskmap.web.atlas import get_atlas

    with app.app_context():
        atlas = get_atlas()
        assert atlas.trend("2017", "2023") is atlas.trend("2017", "2023")


def test_no_decomposition_is_said_plainly(tmp_path):
    # The web-test atlas publishes cards without census records; 2023 as an imported list.
    app = web_app(build_fake_atlas(tmp_path / "fake", imported_2023=True))
    client = app.test_client()
    r = client.get("/tendencias?a=2017&b=2023")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert 'data-trend="impossible"' in html and "imported" in html
    api = client.get("/api/v1/tendencias?a=2017&b=2023")
    assert api.status_code == 400
    assert "no trend decomposition is possible" in api.get_json()["error"]
    assert client.get("/municipio/22001").status_code == 200
    comparar = client.get("/comparar?a=2017&b=2023").get_data(as_text=True)
    assert 'data-trend="impossible"' in comparar and "/tendencias?" not in comparar.split(
        "<main")[1]


def test_edition_without_census_records(data_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(data_dir, data)
    DataStore(data).census_path("2017").unlink()
    client = web_app(data).test_client()
    html = client.get("/tendencias?a=2017&b=2023").get_data(as_text=True)
    assert 'data-trend="impossible"' in html and "keeps no census records" in html
    assert np.isfinite(1.0)


def test_a_single_edition_gets_a_notice_not_an_error(data_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(data_dir, data)
    for name in ("2019", "2023"):
        for path in (data / "editions").glob(f"{name}.*"):
            path.unlink()
    r = web_app(data).test_client().get("/tendencias?lang=en")
    assert r.status_code == 200
    assert 'data-trend="impossible"' in r.get_data(as_text=True)
    assert "a trend needs two" in r.get_data(as_text=True)


def test_openapi_documents_the_trend_route(client):
    from openapi_spec_validator import validate

    from riskmap.web.trends import FORMATS, LEVELS

    doc = client.get("/api/v1/openapi.json").get_json()
    validate(doc)
    op = doc["paths"]["/tendencias"]["get"]
    declared = {p["name"]: p for p in op["parameters"]}
    assert set(declared) == {"a", "b", "por", "estado", "formato"}
    assert declared["por"]["schema"]["enum"] == list(LEVELS)
    assert declared["formato"]["schema"]["enum"] == list(FORMATS)
