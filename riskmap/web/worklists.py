"""Named worklists on the web: save the targeting plan shown on /focalizacion under a name,
list, reopen and delete one's own (/focalizacion/guardadas, login), and the API
``GET/POST /api/v1/focalizaciones`` (bearer token, inspector or admin).

A saved worklist is the normalised query string of the targeting page (its permalink), so
reopening it recomputes the plan with the data and outcomes of the day.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from flask import Blueprint, jsonify, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from ..errors import BadParameter, NotFound
from ..outcomes import worklists
from . import params
from .atlas import get_atlas
from .auth import csrf, current_user, engine, require

bp = Blueprint("worklists", __name__)
api_bp = Blueprint("worklists_api", __name__)


def normalise(args) -> tuple[str, str]:
    """Validate targeting arguments (a MultiDict); return (query string, edition)."""
    atlas = get_atlas()
    names = atlas.names()
    if not names:
        raise NotFound("no edition is published in the data directory")
    query = params.targeting(args, names, names[-1],
                             lambda e: atlas.rows(e)["cve_ent"].unique())
    return params.targeting_query_string(query), query["edicion"]


def _from_string(text) -> MultiDict:
    if not isinstance(text, str):
        raise BadParameter("consulta", text, message="'consulta' must be the query string of "
                           "a /focalizacion permalink, e.g. edicion=2023&visitas=500")
    pairs = parse_qs(text.lstrip("?"), keep_blank_values=False, max_num_fields=200)
    return MultiDict([(k, v) for k, vs in pairs.items() for v in vs])


def _link(query: str) -> str:
    return url_for("pages.focalizacion") + "?" + query


def _public(item: dict) -> dict:
    return {"id": item["id"], "nombre": item["name"], "consulta": item["query"],
            "edicion": item["edition"], "creada": item["created"].isoformat(),
            "enlace": _link(item["query"])}


@bp.post("/focalizacion/guardar")
@require("inspector", "admin")
def guardar():
    """Save the plan of the query arguments under the form's ``nombre`` (CSRF)."""
    query, edition = normalise(request.args)
    worklists.save(engine(), current_user(), request.form.get("nombre", ""), query, edition)
    return redirect(url_for(".guardadas"))


@bp.get("/focalizacion/guardadas")
@require("inspector", "admin")
def guardadas():
    """The signed-in user's saved worklists: reopen or delete."""
    items = [dict(i, link=_link(i["query"])) for i in worklists.list_for(engine(), current_user())]
    return render_template("guardadas.html", items=items, user=current_user())


@bp.post("/focalizacion/guardadas/<int:wid>/borrar")
@require("inspector", "admin")
def borrar(wid: int):
    """Delete one of the user's own worklists (CSRF); another user's is 404."""
    worklists.delete(engine(), current_user(), wid)
    return redirect(url_for(".guardadas"))


@api_bp.route("/focalizaciones", methods=["GET", "POST"])
@csrf.exempt
@require("inspector", "admin", api=True)
def focalizaciones():
    """GET: the token holder's saved worklists, newest first. POST: save one from JSON
    ``{"nombre": ..., "consulta": "edicion=...&visitas=..."}`` (201)."""
    user = current_user(bearer_only=True)
    if request.method == "GET":
        items = [_public(i) for i in worklists.list_for(engine(), user)]
        return jsonify({"ok": True, "data": items,
                        "links": {"self": url_for(".focalizaciones")}})
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadParameter("body", "...", message="send a JSON object with 'nombre' and "
                           "'consulta' (the query string of a /focalizacion permalink)")
    query, edition = normalise(_from_string(body.get("consulta", "")))
    item = worklists.save(engine(), user, body.get("nombre"), query, edition)
    response = jsonify({"ok": True, "data": _public(item)})
    response.status_code = 201
    return response


def init_app(app) -> None:
    """Register the page and API blueprints."""
    app.register_blueprint(bp)
    app.register_blueprint(api_bp, url_prefix="/api/v1")
