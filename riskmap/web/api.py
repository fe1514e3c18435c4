"""JSON API under ``/api/v1`` (read-only; one resource, many formats).

Successful JSON answers are ``{"ok": true, "data": ..., "meta": {...}, "links": {...}}``;
``meta`` carries the provenance (synthetic flag, attribution) of the editions involved. Errors
use the shared shape (:mod:`riskmap.web.errors`). Every link is built with ``url_for``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json

import pandas as pd
from flask import Blueprint, Response, current_app, jsonify, request, url_for

from ..publish.edition import ROW_COLUMNS
from ..errors import BadParameter
from . import cache, params
from .openapi import VERSION as API_VERSION, document
from .params import LIST_COLUMNS
from .http import accepts_gzip
from ..jsonable import jsonable
from .atlas import get_atlas
from .outcomes import outcomes_version

bp = Blueprint("api", __name__)

COMPARE_FORMATS = ("json", "csv")
WORKLIST_FORMATS = ("json", "csv")


# -- helpers ----------------------------------------------------------------------------------
def meta_for(*names: str) -> dict:
    """Provenance of the editions behind a response: synthetic flag and attribution texts."""
    atlas = get_atlas()
    infos = [atlas.provenance(n) for n in names]
    meta = {"synthetic": any(i["synthetic"] for i in infos),
            "attribution": {lang: " | ".join(dict.fromkeys(i["attribution"][lang] for i in infos))
                            for lang in ("es", "en")}}
    if len(infos) == 1:
        meta["provenance"] = infos[0]
    else:
        meta["editions"] = {n: i for n, i in zip(names, infos)}
    return meta


def ok(data, meta: dict | None = None, links: dict | None = None, **extra):
    """The success envelope."""
    body = {"ok": True, "data": data}
    body.update(extra)
    if meta is not None:
        body["meta"] = meta
    if links:
        body["links"] = links
    return jsonify(body)


def _edition_param(name: str) -> str:
    atlas = get_atlas()
    atlas.edition(name)  # NotFound lists the published editions
    return name


# -- index and editions -------------------------------------------------------------------------
@bp.get("/")
def index():
    """Index of the API: what it serves and where the OpenAPI document is."""
    atlas = get_atlas()
    names = atlas.names()
    data = {"name": "riskmap API", "version": API_VERSION, "editions": names,
            "latest": names[-1] if names else None}
    links = {"self": url_for(".index"), "openapi": url_for(".openapi"),
             "ediciones": url_for(".ediciones"), "comparar": url_for(".comparar"),
             "focalizacion": url_for(".focalizacion")}
    if names:
        links["latest"] = url_for(".edicion", edicion=names[-1])
        links["municipios"] = url_for(".municipios", edicion=names[-1], formato="json")
    return ok(data, links=links)


# -- editions ---------------------------------------------------------------------------------
@bp.get("/ediciones")
def ediciones():
    """List the published editions, oldest first, with links."""
    atlas = get_atlas()
    items = []
    for item in atlas.editions():
        name = item["name"]
        items.append(dict(item, links=_edition_links(name, item["vintage"])))
    latest = atlas.latest()
    return ok(items, meta_for(*[i["name"] for i in items]),
              {"self": url_for(".ediciones"), "latest": url_for(".edicion", edicion=latest),
               "openapi": url_for(".openapi")}, latest=latest)


def _edition_links(name: str, vintage: str) -> dict:
    return {"self": url_for(".edicion", edicion=name),
            **{f"municipios_{fmt}": url_for(".municipios", edicion=name, formato=fmt)
               for fmt in params.LIST_FORMATS},
            "geometria": url_for(".geometria", vintage=vintage)}


@bp.get("/ediciones/<edicion>")
def edicion(edicion: str):
    """Summary of one edition's model card, with its level counts."""
    atlas = get_atlas()
    ed = atlas.edition(edicion)
    card = atlas.card(edicion)
    keep = ("edition", "year", "kind", "vintage", "synthetic", "created", "sources", "rule",
            "n_survey", "national_rate", "coefficients", "min_records")
    data = {k: card.get(k) for k in keep if k in card}
    diag = card.get("diagnostics") or {}
    data["diagnostics"] = {k: v for k, v in diag.items() if k != "calibration"} or None
    data["level_counts"] = ed.level_counts()
    data["n_municipalities"] = int(len(ed.rows))
    return ok(jsonable(data), meta_for(edicion), _edition_links(edicion, ed.vintage))


@bp.get("/ediciones/<edicion>/municipios.<formato>")
def municipios(edicion: str, formato: str):
    """Municipalities of an edition as paginated JSON, or complete streamed GeoJSON / CSV."""
    atlas = get_atlas()
    edicion = _edition_param(edicion)
    formato = params.choice("formato", formato, params.LIST_FORMATS)
    estado = params.estado(request.args.get("estado"), atlas.state_names(edicion))
    nivel = params.nivel(request.args.get("nivel"))
    table = atlas.rows(edicion, state=estado, level=nivel)
    filters = {k: v for k, v in (("estado", estado), ("nivel", nivel)) if v}
    if formato == "csv":
        return _csv_response(edicion, table, f"riskmap_{edicion}_municipios.csv")
    if formato == "geojson":
        return _geojson_response(edicion, table)
    settings = current_app.config["RISKMAP"]
    per_page = params.integer("per_page", request.args.get("per_page"), minimum=1,
                              maximum=settings["max_page_size"], default=settings["page_size"])
    total = len(table)
    pages = max(1, -(-total // per_page))
    page = params.integer("page", request.args.get("page"), minimum=1, maximum=pages, default=1)
    chunk = atlas.records_for(edicion, table["cvegeo"].iloc[(page - 1) * per_page:
                                                           page * per_page])
    link = lambda p: url_for(".municipios", edicion=edicion, formato="json", page=p,  # noqa: E731
                             per_page=per_page, **filters)
    links = {"self": link(page), "first": link(1), "last": link(pages),
             "next": link(page + 1) if page < pages else None,
             "prev": link(page - 1) if page > 1 else None,
             "geojson": url_for(".municipios", edicion=edicion, formato="geojson", **filters),
             "csv": url_for(".municipios", edicion=edicion, formato="csv", **filters)}
    return ok([{k: r[k] for k in LIST_COLUMNS} for r in chunk], meta_for(edicion), links,
              pagination={"page": page, "per_page": per_page, "total": total, "pages": pages},
              filters=filters)


def _csv_response(edicion: str, table: pd.DataFrame, filename: str, columns=None):
    """Stream a table as UTF-8 CSV, with the provenance columns exports carry."""
    from ..publish.export import defuse_frame

    info = get_atlas().provenance(edicion)
    columns = list(columns or ROW_COLUMNS)
    out = defuse_frame(table[columns])
    out["synthetic"] = info["synthetic"]
    out["source"] = info["attribution"]["es"]

    # The generators below use only precomputed values: no request context is needed while
    # the body streams.
    def generate():
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(out.columns)
        for start in range(0, len(out), 500):
            for row in out.iloc[start:start + 500].itertuples(index=False):
                writer.writerow(["" if v is None or v is pd.NA or (isinstance(v, float) and v != v)
                                 else v for v in row])
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
        if not len(out):
            yield buf.getvalue()

    return Response(generate(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _geojson_response(edicion: str, table: pd.DataFrame):
    """Stream a FeatureCollection (full-resolution geometry), feature by feature."""
    geoms = get_atlas().geojson_geometries(edicion)
    meta = json.dumps(meta_for(edicion), ensure_ascii=False)
    records = [{k: r[k] for k in LIST_COLUMNS}
               for r in get_atlas().records_for(edicion, table["cvegeo"])]

    def generate():
        yield '{"type":"FeatureCollection","meta":' + meta + ',"features":['
        for i, props in enumerate(records):
            geometry = geoms.get(props["cvegeo"], "null")
            yield ((',' if i else '') + '{"type":"Feature","id":' + json.dumps(props["cvegeo"])
                   + ',"properties":' + json.dumps(props, ensure_ascii=False)
                   + ',"geometry":' + geometry + '}')
        yield ']}'

    return Response(generate(), mimetype="application/geo+json")


@bp.get("/ediciones/<edicion>/municipios/<cvegeo>")
def municipio(edicion: str, cvegeo: str):
    """One municipality: values, factor contributions, history and neighbours."""
    atlas = get_atlas()
    data = atlas.municipality(edicion, cvegeo)
    vintage = atlas.edition(edicion).vintage
    data["history"] = atlas.history(cvegeo)
    data["neighbours"] = atlas.neighbours(vintage, cvegeo, edition=edicion)
    links = {"self": url_for(".municipio", edicion=edicion, cvegeo=cvegeo),
             "edition": url_for(".edicion", edicion=edicion),
             "neighbours": [url_for(".municipio", edicion=edicion, cvegeo=n["cvegeo"])
                            for n in data["neighbours"]]}
    return ok(jsonable(data), meta_for(edicion), links)


# -- comparison and targeting -------------------------------------------------------------------
@bp.get("/comparar")
@cache.defaults(a=cache.previous_edition, b=cache.latest_edition, formato="json")
def comparar():
    """Compare two editions: level counts, transition matrix, significant changes."""
    atlas = get_atlas()
    a, b = params.comparison_pair(request.args.get("a"), request.args.get("b"), atlas.names())
    regla = params.rule(request.args.get("regla"))
    formato = params.choice("formato", request.args.get("formato"), COMPARE_FORMATS, "json")
    if formato == "csv":
        changes = atlas.comparison(a, b, regla).changes  # one row per municipality of b
        uses = {u["edition"]: u["used"] for u in (atlas.rule_use(a, regla),
                                                 atlas.rule_use(b, regla))}
        changes = changes.assign(level_rule_a=uses[a], level_rule_b=uses[b])
        return _plain_csv(changes, f"riskmap_comparacion_{a}_{b}.csv", [a, b])
    payload = jsonable(atlas.comparison_summary(a, b, regla))
    links = {"self": url_for(".comparar", a=a, b=b, regla=regla),
             "csv": url_for(".comparar", a=a, b=b, regla=regla, formato="csv")}
    return ok(payload, meta_for(a, b), links, editions={"a": a, "b": b}, rule=regla)


def _plain_csv(table: pd.DataFrame, filename: str, editions: list[str], notes=()):
    from ..publish.export import defuse_frame

    meta = meta_for(*editions)
    if not isinstance(table.index, pd.RangeIndex):
        table = table.reset_index()  # a cvegeo index becomes a column
    out = defuse_frame(table)
    out["synthetic"] = meta["synthetic"]
    out["source"] = meta["attribution"]["es"]
    text = "".join(f"# {line}\n" for line in notes) + out.to_csv(index=False, lineterminator="\n")
    return Response(text, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.get("/focalizacion")
@cache.depends_on(outcomes_version)
def focalizacion():
    """Greedy allocation of inspection visits (one visit = one workplace): the worklist."""
    from .outcomes import targeting_inputs
    from .pages import assumptions

    atlas = get_atlas()
    names = atlas.names()
    query = params.targeting(request.args, names, names[-1] if names else None,
                             lambda e: atlas.rows(e)["cve_ent"].unique())
    edicion = query["edicion"]
    _require_expected_counts(atlas, edicion, names)
    formato = params.choice("formato", request.args.get("formato"), WORKLIST_FORMATS, "json")
    inputs = targeting_inputs(atlas, query)
    args = (edicion, query["visitas"], inputs["lam"]["value"], query["estados"],
            query["niveles"], query["criterio"])
    kwargs = {"exclude": inputs["exclude"], "workplaces": inputs["workplaces"]}
    link = {k: (",".join(v) if isinstance(v, list) else int(v) if isinstance(v, bool) else v)
            for k, v in query.items() if v != []}
    if formato == "csv":
        worklist = atlas.targeting(*args, **kwargs)
        return _plain_csv(worklist, f"riskmap_focalizacion_{edicion}.csv", [edicion],
                          notes=assumptions(query, inputs))
    links = {"self": url_for(".focalizacion", **link),
             "csv": url_for(".focalizacion", formato="csv", **link)}
    worklist = atlas.targeting_records(*args, **kwargs)
    units = {"visit": "one inspected workplace", "expected_found": "children in child labour",
             "lambda": inputs["lam"], "cooldown_applied": inputs["cooldown_applied"],
             "excluded_recently_visited": inputs["excluded"],
             "workplaces": "table" if inputs["workplaces"] else "0.2 x children (assumption)",
             "assumptions": assumptions(query, inputs)}
    return ok(worklist, meta_for(edicion), links, parameters=link, units=units)


def _require_expected_counts(atlas, edicion: str, names: list[str]) -> None:
    """400 naming the editions that can be targeted when ``edicion`` has no expected counts.

    Imported editions publish levels (maybe probabilities) but no expected children in
    child labour, which the allocation maximises: an empty worklist would look like "no
    municipality needs a visit".
    """
    from .notices import capabilities

    if capabilities(atlas, edicion)["expected"]:
        return
    usable = [n for n in names if capabilities(atlas, n)["expected"]]
    raise BadParameter("edicion", edicion, usable, message=(
        f"edition {edicion!r} publishes no expected number of children in child labour "
        "(an imported edition of published levels); targeting needs it"))


# -- geometry and the OpenAPI document ----------------------------------------------------------
@bp.get("/geometria/<vintage>.geojson")
def geometria(vintage: str):
    """Simplified web geometry of a vintage: ETag, conditional GET, gzip when accepted."""
    return _geometry(vintage, "geojson", "application/geo+json")


@bp.get("/geometria/<vintage>.topojson")
def geometria_topo(vintage: str):
    """The same geometry as TopoJSON (shared arcs, integer deltas): what the maps load."""
    return _geometry(vintage, "topojson", "application/json")


def _geometry(vintage: str, fmt: str, mimetype: str):
    body, etag = get_atlas().geometry(vintage, fmt)
    max_age = current_app.config["RISKMAP"]["cache_max_age"]
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={max_age}",
               "Vary": "Accept-Encoding"}
    asked = _etags(request.headers.get("If-None-Match", ""))
    if etag in asked or "*" in asked:
        return Response(status=304, headers=headers)
    if accepts_gzip():
        response = Response(body, mimetype=mimetype, headers=headers)
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = Response(gzip.decompress(body), mimetype=mimetype, headers=headers)
    return response


def _etags(header: str) -> set[str]:
    tags = {t.strip() for t in header.split(",") if t.strip()}
    # Weak comparison (RFC 9110 13.1.2): W/"x" matches "x".
    return tags | {t[2:] for t in tags if t.startswith("W/")}


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3 document describing this API."""
    atlas = get_atlas()
    return jsonify(document(api_root=url_for(".index").rstrip("/"), editions=atlas.names(),
                            vintages=atlas.vintages()))
