"""The service does what its OpenAPI document says: an independent fuzzer (schemathesis) calls
every operation of the demo's API in process with generated parameters and checks that each
answer's status code, content type, headers and body are the documented ones.

Bounded and deterministic: a few examples per operation, derandomised, no example database.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import checks

from webdata import web_app

CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_headers_conformance,
          checks.response_schema_conformance]


@pytest.fixture(scope="module")
def demo_api(demo_dir):
    app = web_app(demo_dir)
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


def _operations() -> list[tuple[str, str]]:
    from riskmap.web.openapi import document

    return [(method.upper(), path) for path, ops in document()["paths"].items() for method in ops]


@pytest.mark.parametrize("method, path", _operations())
def test_every_operation_conforms_to_the_document(demo_api, method, path):
    from hypothesis import given

    operation = demo_api[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=12, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    def check(case):
        # Identity encoding: the in-process client does not undo the service's gzip.
        case.call_and_validate(headers={"Accept-Encoding": "identity"}, checks=CHECKS)

    check()


def test_document_enumerates_editions_and_vintages(demo_dir):
    from riskmap.publish.store import DataStore

    store = DataStore(demo_dir)
    doc = web_app(demo_dir).test_client().get("/api/v1/openapi.json").get_json()
    ops = doc["paths"]
    edition = {p["name"]: p for p in ops["/ediciones/{edicion}"]["get"]["parameters"]}
    assert edition["edicion"]["schema"]["enum"] == store.edition_names()
    compare = {p["name"]: p for p in ops["/comparar"]["get"]["parameters"]}
    assert compare["a"]["schema"]["enum"] == store.edition_names()
    vintage = {p["name"]: p for p in ops["/geometria/{vintage}.geojson"]["get"]["parameters"]}
    assert vintage["vintage"]["schema"]["enum"] == store.vintage_names()
    for path in ("/comparar", "/focalizacion"):
        assert "text/csv" in ops[path]["get"]["responses"]["200"]["content"]


def test_api_root_is_an_index_linking_the_document(client):
    response = client.get("/api/v1/")
    assert response.status_code == 200 and response.mimetype == "application/json"
    body = response.get_json()
    assert body["ok"] is True and body["data"]["editions"] == ["2017", "2023"]
    links = body["links"]
    assert links["openapi"] == "/api/v1/openapi.json"
    for key in ("ediciones", "latest", "municipios", "comparar", "focalizacion", "openapi"):
        assert client.get(links[key]).status_code == 200, key
    assert client.get("/api/v1").status_code in (301, 308)  # to the index


def test_the_check_catches_an_undocumented_answer(fake_dir, monkeypatch):
    """The fuzzing test can fail: drop the CSV answer of /comparar from the document."""
    from riskmap.web import api

    real = api.document

    def without_csv(**kwargs):
        doc = real(**kwargs)
        del doc["paths"]["/comparar"]["get"]["responses"]["200"]["content"]["text/csv"]
        return doc

    monkeypatch.setattr(api, "document", without_csv)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", web_app(fake_dir))
    case = schema["/comparar"]["GET"].Case(query={"formato": "csv"})
    from schemathesis.core.failures import FailureGroup

    with pytest.raises(FailureGroup, match="Undocumented Content-Type"):
        case.call_and_validate(headers={"Accept-Encoding": "identity"}, checks=CHECKS)
