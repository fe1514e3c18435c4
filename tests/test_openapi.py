"""The OpenAPI document matches the API routes and is a valid OpenAPI 3 document."""

from __future__ import annotations

import re

import pytest


PREFIX = "/api/v1"


@pytest.fixture(scope="module")
def document(app):
    response = app.test_client().get(f"{PREFIX}/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def api_rules(app) -> dict[str, set[str]]:
    """OpenAPI-style path -> methods, for every API rule of the URL map."""
    out = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(PREFIX + "/"):
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule[len(PREFIX):])
            out[path] = {m.lower() for m in rule.methods} - {"head", "options"}
    return out


def test_document_is_valid_openapi(document):
    from openapi_spec_validator import validate

    validate(document)
    assert document["openapi"].startswith("3.")
    assert document["servers"] == [{"url": PREFIX}]


def test_every_route_documented_and_vice_versa(app, document):
    rules = api_rules(app)
    documented = {path: set(ops) for path, ops in document["paths"].items()}
    assert set(rules) == set(documented)
    for path, methods in rules.items():
        assert methods == documented[path], path


def test_path_parameters_match_rule_arguments(app, document):
    for path, ops in document["paths"].items():
        names = set(re.findall(r"{([^}]+)}", path))
        for op in ops.values():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == names, path


def test_enums_match_validation(document):
    from riskmap.publish.edition import LEVELS
    from riskmap.web import params

    ops = document["paths"]
    listing = {p["name"]: p for p in
               ops["/ediciones/{edicion}/municipios.{formato}"]["get"]["parameters"]}
    assert listing["formato"]["schema"]["enum"] == list(params.LIST_FORMATS)
    assert listing["nivel"]["schema"]["enum"] == list(LEVELS)
    target = {p["name"]: p for p in ops["/focalizacion"]["get"]["parameters"]}
    assert target["criterio"]["schema"]["enum"] == list(params.CRITERIA)


def test_error_responses_reference_the_error_schema(document):
    schema = document["components"]["schemas"]["Error"]
    assert set(schema["required"]) == {"ok", "status", "error", "errors"}
    for path, ops in document["paths"].items():
        for op in ops.values():
            for code, resp in op["responses"].items():
                if code.startswith("4"):
                    ref = resp["content"]["application/json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/Error", (path, code)


def test_municipality_schema_lists_the_fields_of_a_listing_row(app, document):
    props = document["components"]["schemas"]["Municipio"]["properties"]
    body = app.test_client().get(f"{PREFIX}/ediciones/2023/municipios.json?per_page=1").get_json()
    assert set(props) == set(body["data"][0])
