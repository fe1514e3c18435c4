"""The OpenAPI 3.1 document of ``/api/v1`` (built in code so it cannot drift from the routes).

``tests/test_openapi.py`` checks that every API rule of the Flask URL map appears here and
vice versa, validates the document with ``openapi_spec_validator``, and lets ``schemathesis``
call every operation with generated parameters to check that status codes, content types and
bodies are the documented ones. Edition and vintage parameters are enumerated from the data
directory (the document is built per request), so a client knows the valid values up front.
"""

from __future__ import annotations

from ..publish.edition import LEVELS
from . import params
from ..model.rules import DEFAULT_RULE, RULE_NAMES
from .params import LIST_COLUMNS
from .trends import FORMATS as TREND_FORMATS, LEVELS as TREND_LEVELS

VERSION = "1.0.0"


def _param(name: str, where: str, schema: dict, description: str, required: bool = False,
           explode: bool | None = None) -> dict:
    p = {"name": name, "in": where, "required": required or where == "path",
         "description": description, "schema": schema}
    if explode is not None:
        p["style"], p["explode"] = "form", explode
    return p


_STR = {"type": "string"}
EDICION = _param("edicion", "path", _STR, "Edition name, e.g. 2023 (see /ediciones).")
CVEGEO = _param("cvegeo", "path", {"type": "string", "pattern": "^[0-9]{5}$"},
                "INEGI municipal code (2-digit state + 3-digit municipality).")
ESTADO = _param("estado", "query", {"type": "string", "examples": ["07", "Chiapas"]},
                "Restrict to one state: its 2-digit code or its name (case and accents are "
                "ignored: chiapas, Mexico); 400 lists the valid codes.")
NIVEL = _param("nivel", "query", {"type": "string", "enum": list(LEVELS)},
               "Restrict to one risk level (case and accents are ignored).")

#: The ``regla`` values: the registry's plain names, or ``cortes:A,B`` (percent).
RULE_SCHEMA = {"default": DEFAULT_RULE, "anyOf": [
    {"type": "string", "enum": [n for n in RULE_NAMES if ":" not in n]},
    {"type": "string", "pattern": r"^cortes:[0-9]+(\.[0-9]+)?,[0-9]+(\.[0-9]+)?$"}]}

_ROW_TYPES = {"children": "integer", "rank_national": "integer", "rank_state": "integer",
              "n_records": "integer", "probability": "number", "ci_low": "number",
              "ci_high": "number", "expected_child_labour": "number", "se": "number",
              "level_certainty": "number"}


def _row_schema() -> dict:
    props = {}
    for col in LIST_COLUMNS:
        kind = _ROW_TYPES.get(col, "string")
        props[col] = {"type": [kind, "null"]} if kind != "string" else {"type": "string"}
    props["level"] = {"type": "string", "enum": list(LEVELS)}
    return {"type": "object", "properties": props}


def _ok(data_schema: dict, description: str, csv: bool = False) -> dict:
    content = {"application/json": {"schema": {
        "type": "object", "required": ["ok", "data", "meta"],
        "properties": {"ok": {"const": True}, "data": data_schema,
                       "meta": {"$ref": "#/components/schemas/Meta"},
                       "links": {"type": "object"}}}}}
    if csv:  # formato=csv: a UTF-8 table with the provenance columns synthetic and source
        content["text/csv"] = {"schema": {"type": "string"}}
    return {"200": {"description": description, "content": content}}


def _names(values, example: str) -> dict:
    """A string schema, enumerating ``values`` when the data directory is known."""
    if values is None:
        return dict(_STR, examples=[example])
    return {"type": "string", "enum": list(values)}


def _errors(*codes: int) -> dict:
    """Error answers (one shape); every operation may also fail with 500."""
    text = {400: "Bad parameter; the message lists the allowed values.",
            404: "Unknown edition, municipality or vintage.",
            405: "Method not allowed (the service is read-only).",
            500: "Unexpected server error (no internal detail is shown).",
            401: "Authentication required: Authorization: Bearer <token>.",
            403: "The token's role may not do this.",
            413: "Upload beyond 10 MB or 100,000 rows."}
    return {str(c): {"description": text[c], "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}} for c in (*codes, 500)}


def document(api_root: str = "/api/v1", editions=None, vintages=None) -> dict:
    """Return the OpenAPI document.

    Parameters
    ----------
    api_root : str
        Base URL path of the API (the ``servers`` entry).
    editions, vintages : sequence of str, optional
        Published editions and stored geography vintages: the allowed values (``enum``) of
        the edition and vintage parameters. Without them those are free strings.

    Returns
    -------
    dict
    """
    row_ref = {"$ref": "#/components/schemas/Municipio"}
    edicion = dict(EDICION, schema=_names(editions, "2023"))
    an_edition = _names(editions, "2023")
    paths = {
        "/": {"get": {
            "operationId": "getIndex", "summary": "Index of the API: its resources and this "
                                                  "document.",
            "responses": {"200": {"description": "Links to the main resources.", "content": {
                "application/json": {"schema": {
                    "type": "object", "required": ["ok", "data", "links"],
                    "properties": {"ok": {"const": True}, "data": {"type": "object"},
                                   "links": {"type": "object"}}}}}},
                **_errors(405)}}},
        "/ediciones": {"get": {
            "operationId": "listEditions", "summary": "Published editions, oldest first.",
            "responses": {**_ok({"type": "array", "items": {"type": "object", "properties": {
                "name": _STR, "year": {"type": "integer"}, "kind": _STR, "vintage": _STR,
                "synthetic": {"type": "boolean"},
                "semi_synthetic": {"type": "boolean", "description": "Simulated records on "
                                   "INEGI's real geography (a subset of synthetic)."},
                "links": {"type": "object"}}}},
                "Edition list."), **_errors(405)}}},
        "/ediciones/{edicion}": {"get": {
            "operationId": "getEdition", "summary": "Model card summary and level counts.",
            "parameters": [edicion],
            "responses": {**_ok({"type": "object"}, "Edition summary."), **_errors(404, 405)}}},
        "/ediciones/{edicion}/municipios.{formato}": {"get": {
            "operationId": "listMunicipalities",
            "summary": "Municipalities of an edition: JSON (paginated), GeoJSON or CSV "
                       "(complete, streamed).",
            "description": "The GeoJSON carries the full-resolution boundaries as published "
                           "(about 4 MB for Mexico's 2,469 municipalities). Streamed "
                           "responses (GeoJSON, CSV) are gzip-compressed on the fly when the "
                           "request sends `Accept-Encoding: gzip` (about a third of the size "
                           "on the wire; `Content-Encoding: gzip`, `Vary: Accept-Encoding`). "
                           "For maps, prefer `/geometria/{vintage}.geojson`: simplified, "
                           "quantised, cached geometry to join with these rows by `cvegeo`.",
            "parameters": [
                edicion,
                _param("formato", "path", {"type": "string", "enum": list(params.LIST_FORMATS)},
                       "Response format."),
                ESTADO, NIVEL,
                _param("page", "query", {"type": "integer", "minimum": 1}, "Page (JSON only)."),
                _param("per_page", "query", {"type": "integer", "minimum": 1},
                       "Rows per page (JSON only; capped by the max_page_size setting)."),
            ],
            "responses": {
                "200": {"description": "Rows of the edition.", "content": {
                    "application/json": {"schema": {"type": "object", "properties": {
                        "ok": {"const": True}, "data": {"type": "array", "items": row_ref},
                        "meta": {"$ref": "#/components/schemas/Meta"},
                        "pagination": {"type": "object"}, "links": {"type": "object"}}}},
                    "application/geo+json": {"schema": {"type": "object"}},
                    "text/csv": {"schema": {"type": "string"}}}},
                **_errors(400, 404, 405)}}},
        "/ediciones/{edicion}/municipios/{cvegeo}": {"get": {
            "operationId": "getMunicipality",
            "summary": "One municipality: values, factors, history across editions, neighbours.",
            "parameters": [edicion, CVEGEO],
            "responses": {**_ok(row_ref, "The municipality."), **_errors(404, 405)}}},
        "/comparar": {"get": {
            "operationId": "compareEditions",
            "summary": "Compare two editions through the crosswalk: level counts, transition "
                       "matrix, significant changes (|d| > 1.96 sd).",
            "parameters": [
                _param("a", "query", an_edition, "First edition; default the edition before b "
                       "(both absent: the second latest). a alone being the latest edition "
                       "is a 400: there is nothing newer to compare it with."),
                _param("b", "query", an_edition, "Final edition, whose geography the comparison "
                       "uses; default the latest."),
                _param("formato", "query", {"type": "string", "enum": ["json", "csv"]},
                       "json (summary) or csv (one row per municipality)."),
                _param("regla", "query", RULE_SCHEMA,
                       "Level rule both editions are classified under: " + ", ".join(
                           RULE_NAMES) + " (cut-offs in percent). An edition stored under "
                       "another rule is re-levelled for the comparison; imported editions "
                       "keep their published levels (\"publicado\")."),
            ],
            "responses": {**_ok({"type": "object"}, "Comparison (JSON), or one row per "
                                                    "municipality (CSV).", csv=True),
                          **_errors(400, 404, 405)}}},
        "/tendencias": {"get": {
            "operationId": "decomposeTrend",
            "summary": "What changed between two editions, and why: change = composition + "
                       "behaviour (exact Shapley split), parts per common covariate (Yun's "
                       "weights) and per policy domain; 95 % intervals for states and the "
                       "nation from 1,000 coefficient draws (census-sample uncertainty "
                       "ignored). Editions without a fitted model or census records (imported "
                       "lists) answer 400.",
            "parameters": [
                _param("a", "query", _STR, "Older edition; default the oldest modelled one."),
                _param("b", "query", _STR, "Newer edition; default the latest modelled one."),
                _param("por", "query", {"type": "string", "enum": list(TREND_LEVELS)},
                       "One row per municipality (older geography), state or the nation "
                       "(default nacional)."),
                ESTADO,
                _param("formato", "query", {"type": "string", "enum": list(TREND_FORMATS)},
                       "json (rows with every part and interval) or csv (the columns of "
                       "`riskmap trend`)."),
            ],
            "responses": {
                "200": {"description": "Decomposition rows.", "content": {
                    "application/json": {"schema": {"type": "object", "properties": {
                        "ok": {"const": True},
                        "data": {"type": "object", "required": ["a", "b", "rows"]},
                        "meta": {"$ref": "#/components/schemas/Meta"},
                        "links": {"type": "object"}}}},
                    "text/csv": {"schema": {"type": "string"}}}},
                **_errors(400, 404, 405)}}},
        "/focalizacion": {"get": {
            "operationId": "targetVisits",
            "summary": "Greedy allocation of inspection visits (one visit = one inspected "
                       "workplace) maximising the children expected to be found: the v-th "
                       "visit to m finds lambda (P_m/r) (1 - (v-1)/K_m)+, at most E_m in all. "
                       "With a bearer token, municipalities visited within the cool-down "
                       "window are left out.",
            "parameters": [
                _param("edicion", "query", an_edition, "Edition; default the latest."),
                _param("visitas", "query", {"type": "integer", "minimum": 1,
                                            "maximum": params.MAX_VISITS,
                                            "default": params.DEFAULT_VISITS},
                       "Number of visits (workplaces) to allocate."),
                _param("enfriamiento", "query", {"type": "integer", "minimum": 0,
                                                 "maximum": params.MAX_COOLDOWN,
                                                 "default": params.DEFAULT_COOLDOWN},
                       "Cool-down window in days (applies to authenticated requests)."),
                _param("recientes", "query", {"type": "string", "enum": ["0", "1"]},
                       "1: keep municipalities visited within the cool-down window."),
                _param("enviado", "query", _STR,
                       "Any value: no `niveles` means all levels (else alto and medio)."),
                _param("estados", "query", {"type": "array", "items": _STR},
                       "State codes (repeated or comma-separated); default all.", explode=True),
                _param("niveles", "query", {"type": "array",
                                            "items": {"type": "string", "enum": list(LEVELS)}},
                       "Levels (repeated or comma-separated); default alto and medio.",
                       explode=True),
                _param("criterio", "query", {"type": "string", "enum": list(params.CRITERIA)},
                       "Worklist order: conteo, by children expected in total; tasa, per "
                       "visit."),
                _param("formato", "query", {"type": "string", "enum": ["json", "csv"]},
                       "Response format."),
            ],
            "responses": {**_ok({"type": "array", "items": {"type": "object"}},
                                "Worklist (JSON or CSV).", csv=True),
                          **_errors(400, 404, 405)}}},
        "/geometria/{vintage}.geojson": {"get": {
            "operationId": "getGeometry",
            "summary": "Simplified, quantised web geometry of a vintage (cached; ETag; gzip).",
            "parameters": [
                _param("vintage", "path", _names(vintages, "2020"),
                       "Geography vintage, e.g. 2020."),
                _param("If-None-Match", "header", _STR, "ETag of a cached copy."),
            ],
            "responses": {
                "200": {"description": "GeoJSON FeatureCollection (properties cvegeo, cve_ent, "
                                       "nom_mun, nom_ent).",
                        "headers": {"ETag": {"schema": _STR}},
                        "content": {"application/geo+json": {"schema": {"type": "object"}}}},
                "304": {"description": "Not modified."},
                **_errors(404, 405)}}},
        "/geometria/{vintage}.topojson": {"get": {
            "operationId": "getGeometryTopology",
            "summary": "The same geometry as TopoJSON: shared borders stored once as "
                       "delta-encoded integer arcs (what the maps load; about 40 % smaller).",
            "parameters": [
                _param("vintage", "path", _STR, "Geography vintage, e.g. 2020."),
                _param("If-None-Match", "header", _STR, "ETag of a cached copy."),
            ],
            "responses": {
                "200": {"description": "TopoJSON Topology with one GeometryCollection, "
                                       "'municipios' (properties as the GeoJSON's).",
                        "headers": {"ETag": {"schema": _STR}},
                        "content": {"application/json": {"schema": {"type": "object"}}}},
                "304": {"description": "Not modified."},
                **_errors(404, 405)}}},
        "/openapi.json": {"get": {
            "operationId": "getOpenAPI", "summary": "This document.",
            "responses": {"200": {"description": "OpenAPI document.", "content": {
                "application/json": {"schema": {"type": "object"}}}}}}},
    }
    paths.update(_outcome_paths())
    return {
        "openapi": "3.1.0",
        "info": {"title": "riskmap API", "version": VERSION,
                 "description": "Municipal risk of child labour (MIRTI-style model): editions, "
                                "municipalities, comparisons and inspection targeting. "
                                "Read-only. Every JSON answer carries provenance in `meta`. "
                                "Every response of 1 KB or more, streamed ones included, is "
                                "gzip-compressed when the client accepts gzip.",
                 "license": {"name": "MIT", "identifier": "MIT"}},
        "servers": [{"url": api_root}],
        "paths": paths,
        "components": {"schemas": {
            "Municipio": _row_schema(),
            "Meta": {"type": "object", "required": ["synthetic", "attribution"], "properties": {
                "synthetic": {"type": "boolean"},
                "attribution": {"type": "object", "properties": {"es": _STR, "en": _STR}}}},
            "Resumen": {"type": "object", "description": "Field validation: hit rate and "
                        "children per workplace by level and decile of P_m (95 % Wilson / "
                        "exact Poisson intervals), lift, municipal AUC, lambda and slope."},
            "Error": {"type": "object", "required": ["ok", "status", "error", "errors"],
                      "properties": {"ok": {"const": False}, "status": {"type": "integer"},
                                     "error": _STR,
                                     "errors": {"type": "array", "items": _STR}}},
        }, "securitySchemes": {"bearer": {
            "type": "http", "scheme": "bearer",
            "description": "API token from `riskmap users token NAME` (inspector or admin)."}}},
    }


def _outcome_paths() -> dict:
    """Inspection outcomes: authenticated with a bearer token (inspector or admin)."""
    secured = [{"bearer": []}]
    result = {"type": "object", "properties": {
        "file": _STR, "rows": {"type": "integer"}, "inserted": {"type": "integer"},
        "unchanged": {"type": "integer"}, "audit_id": {"type": "integer"}}}
    imported = {"content": {"application/json": {"schema": {
        "type": "object", "required": ["ok", "data"],
        "properties": {"ok": {"const": True}, "data": result}}}}}
    return {
        "/resultados": {"post": {
            "operationId": "importVisits", "security": secured,
            "summary": "Import visit records (CSV UTF-8/latin-1 or XLSX) in one transaction: "
                       "any bad row or conflicting folio imports nothing and the 400 lists "
                       "them (file, row, column, expected). Re-importing stored rows is a "
                       "no-op.",
            "parameters": [_param("nombre", "query", _STR,
                                  "File name when the file is sent as the raw body.")],
            "requestBody": {"required": True, "content": {
                "multipart/form-data": {"schema": {"type": "object", "properties": {
                    "archivo": {"type": "string", "format": "binary"}}}},
                "text/csv": {"schema": _STR},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                    "schema": {"type": "string", "format": "binary"}}}},
            "responses": {"201": dict(imported, description="Rows inserted."),
                          "200": dict(imported, description="Nothing new (all rows stored)."),
                          **_errors(400, 401, 403, 413)}}},
        "/resultados/resumen": {"get": {
            "operationId": "fieldSummary", "security": secured,
            "summary": "Field validation of an edition against the recorded visits.",
            "parameters": [_param("edicion", "query", _STR, "Edition; default the latest.")],
            "responses": {"200": {"description": "Summary.", "content": {"application/json": {
                "schema": {"type": "object", "properties": {
                    "ok": {"const": True}, "data": {"$ref": "#/components/schemas/Resumen"}}}}}},
                **_errors(400, 401, 403, 404)}}},
        **_worklist_paths(secured),
    }


def _worklist_paths(secured: list) -> dict:
    """Named worklists of the token holder (inspector or admin)."""
    item = {"type": "object", "required": ["id", "nombre", "consulta", "edicion", "creada"],
            "properties": {"id": {"type": "integer"}, "nombre": _STR, "consulta": _STR,
                           "edicion": _STR, "creada": dict(_STR, format="date-time"),
                           "enlace": _STR}}

    def answer(data: dict, description: str) -> dict:
        return {"description": description, "content": {"application/json": {"schema": {
            "type": "object", "required": ["ok", "data"],
            "properties": {"ok": {"const": True}, "data": data,
                           "links": {"type": "object"}}}}}}

    return {"/focalizaciones": {
        "get": {"operationId": "listWorklists", "security": secured,
                "summary": "The token holder's saved worklists, newest first.",
                "responses": {"200": answer({"type": "array", "items": item}, "Worklists."),
                              **_errors(401, 403)}},
        "post": {"operationId": "saveWorklist", "security": secured,
                 "summary": "Save a targeting plan under a name (1-80 characters, unique per "
                            "user). `consulta` is the query string of a /focalizacion "
                            "permalink; it is validated and stored normalised.",
                 "requestBody": {"required": True, "content": {"application/json": {
                     "schema": {"type": "object", "required": ["nombre", "consulta"],
                                "properties": {"nombre": dict(_STR, minLength=1, maxLength=80),
                                               "consulta": dict(_STR, examples=[
                                                   "edicion=2023&visitas=500"])}}}}},
                 "responses": {"201": answer(item, "Saved."),
                               **_errors(400, 401, 403, 404)}}}}
