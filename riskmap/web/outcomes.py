"""Inspection outcomes on the web: the /resultados page (login), its upload form and CSV
export, the outcomes API (``POST /api/v1/resultados``, ``GET /api/v1/resultados/resumen``),
and the λ and cool-down list the targeting page and API use.
"""

from __future__ import annotations

import functools
import math
import threading

from flask import Blueprint, Response, current_app, jsonify, render_template, request, url_for
from flask_babel import gettext as _

from ..errors import InputError, NotFound
from ..model import targeting
from ..outcomes import fieldstats, visits
from . import maps, params
from .atlas import get_atlas
from .auth import csrf, current_user, engine, require

bp = Blueprint("outcomes", __name__)
api_bp = Blueprint("outcomes_api", __name__)
_cache: dict = {}
_cache_lock = threading.Lock()


# -- shared with targeting -------------------------------------------------------------------
def _version(eng) -> tuple:
    import sqlalchemy as sa

    from ..outcomes.db import audit

    # Every write adds an audit row: its id and time identify the database's state (the time
    # too, so that a database recreated under the same URL never matches a cached state).
    with eng.connect() as conn:
        last = conn.execute(sa.select(audit.c.id, audit.c.at)
                            .order_by(audit.c.id.desc()).limit(1)).first()
    return (str(eng.url), None if last is None else (last[0], str(last[1])))


def outcomes_version() -> tuple:
    """The outcomes database's state, for the response cache's key of the targeting answers
    (their λ is estimated from recorded visits; a new import must show at once)."""
    import sqlalchemy as sa

    from ..errors import ConfigError

    try:
        return _version(engine())
    except (ConfigError, sa.exc.SQLAlchemyError, OSError):
        return ("unavailable",)


def summary(atlas, edition: str) -> dict:
    """Field validation of ``edition`` (cached until the next import or a new edition)."""
    eng = engine()
    key = ("summary", edition, atlas._mtime(edition), _version(eng))
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    result = fieldstats.summary(visits.stats_frame(eng), atlas.rows(edition))
    with _cache_lock:
        if len(_cache) > 64:
            _cache.clear()
        _cache[key] = result
    return result


def lambda_for(atlas, edition: str) -> dict:
    """The λ targeting uses: estimated from recorded outcomes, else the documented default.

    Returns
    -------
    dict
        ``value``, ``source`` ("estimated" or "default"), and for an estimate ``ci_low``,
        ``ci_high`` and ``n_visits``.
    """
    import sqlalchemy as sa

    from ..errors import ConfigError

    try:
        reg = summary(atlas, edition)["regression"]
    except (ConfigError, sa.exc.SQLAlchemyError, OSError) as exc:
        # The public targeting page must work without the outcomes database (e.g. a
        # read-only data directory): it falls back to the documented default.
        current_app.logger.warning("outcomes database unavailable, default lambda used: %s",
                                   type(exc).__name__)
        reg = None
    if reg is None:
        return {"value": targeting.DEFAULT_LAMBDA, "source": "default"}
    lam = reg["lambda"]
    return {"value": round(lam["estimate"], 4), "source": "estimated",
            "ci_low": lam["ci_low"], "ci_high": lam["ci_high"], "n_visits": reg["n_visits"]}


def workplaces():
    """The workplace table for targeting, as (cache key, DataFrame), or ``None``.

    The ``establishments_file`` setting (``serve --establishments``) wins; else the table an
    admin uploaded on /resultados (stored in the outcomes database).
    """
    from pathlib import Path

    path = current_app.config["RISKMAP"].get("establishments_file") or ""
    if path:
        stat = Path(path).stat()
        key = ("workplaces", path, stat.st_mtime_ns, stat.st_size)
        loader = functools.partial(targeting.read_workplaces, path)
    else:
        import sqlalchemy as sa

        from ..errors import ConfigError

        try:
            eng = engine()
            key = ("workplaces", _version(eng))
        except (ConfigError, sa.exc.SQLAlchemyError, OSError):
            return None
        loader = functools.partial(visits.stored_workplaces, eng)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    table = loader()
    entry = None if table is None else (key, table)
    with _cache_lock:
        _cache[key] = entry
    return entry


def targeting_inputs(atlas, query: dict) -> dict:
    """λ, the cool-down exclusions and the workplace table for a targeting query.

    Visit records are not public: the cool-down applies to signed-in users (and bearer
    tokens) only; anonymous worklists ignore it and say so.
    """
    lam = lambda_for(atlas, query["edicion"])
    user = current_user()
    exclude: set[str] = set()
    applied = False
    if user is not None and not query["recientes"] and query["enfriamiento"] > 0:
        exclude = visits.recently_visited(engine(), query["enfriamiento"])
        applied = True
    return {"lam": lam, "exclude": exclude, "cooldown_applied": applied,
            "excluded": len(exclude), "workplaces": workplaces()}


# -- page ------------------------------------------------------------------------------------
@bp.route("/resultados", methods=["GET", "POST"])
@require("inspector", "admin")
def resultados():
    """Inspection outcomes: upload visit records and see whether the map works in the field."""
    from .pages import _common, _edition, _geometry_url, _map_config, _municipio_link, _tile_kwargs

    atlas = get_atlas()
    edition = _edition(atlas)
    report, errors, status = None, [], 200
    if request.method == "POST":
        upload = request.files.get("archivo")
        if upload is None or not upload.filename:
            errors, status = [_("Elija un archivo CSV o XLSX.")], 400
        else:
            try:
                report = _import(upload.read(), upload.filename).to_dict()
            except InputError as exc:
                errors, status = [exc.message, *exc.errors[1:]], exc.status
    data = summary(atlas, edition)
    vintage = atlas.edition(edition).vintage
    parts = maps.build_map("resultados", **_tile_kwargs())
    word = _("visitas")
    values = {c: ["v", f"{n:,} {word}"] for c, n in data["visited"].items()}
    spec = {"var": parts.name, "geometry": _geometry_url(vintage), "values": values,
            "mode": "keyed", "keyColours": {"v": maps.VISIT_COLOURS[3]},
            "link": _municipio_link(edition), "fit": True}
    cfg = _map_config([spec], states=atlas.states(vintage))
    cfg["labels"].update({"v": _("Municipio visitado")})
    return render_template("resultados.html", **_common(atlas, edition), data=data,
                           lam=lambda_for(atlas, edition), chart=calibration(data),
                           report=report, errors=errors, user=current_user(), map=parts,
                           config=cfg, total=visits.count(engine())), status


def _import(data: bytes, name: str):
    known = set()
    atlas = get_atlas()
    for edition in atlas.names():
        known.update(atlas.rows(edition)["cvegeo"].astype(str))
    return visits.import_bytes(engine(), data, name[-200:], current_user().name,
                               known_codes=known or None)


def calibration(data: dict, size: int = 300) -> dict | None:
    """Geometry of the field calibration chart: observed vs predicted children per workplace
    by decile of P_m (inline SVG drawn by the template)."""
    pts = [(d.get("predicted_per_workplace"), d["per_workplace"], d["per_workplace_ci_low"],
            d["per_workplace_ci_high"], d["decile"]) for d in data["by_decile"]]
    pts = [p for p in pts if p[0] is not None and math.isfinite(p[1])]
    if not pts:
        return None
    pad = 44
    top = max(max(p[0] for p in pts), max(min(p[3], 3 * p[1] + 0.1) for p in pts)) or 1.0
    inner = size - 2 * pad

    def sx(v):
        return round(pad + inner * min(v, top) / top, 1)

    def sy(v):
        return round(size - pad - inner * min(v, top) / top, 1)

    ticks = [round(top * k / 4, 3) for k in range(5)]
    return {"size": size, "pad": pad,
            "ticks": [{"v": t, "x": sx(t), "y": sy(t)} for t in ticks],
            "points": [{"x": sx(p), "y": sy(o), "y0": sy(lo), "y1": sy(hi), "decile": d,
                        "predicted": p, "observed": o} for p, o, lo, hi, d in pts],
            "diag": {"x0": sx(0), "y0": sy(0), "x1": sx(top), "y1": sy(top)}}


@bp.post("/resultados/establecimientos")
@require("admin")
def establecimientos():
    """Replace the workplace table targeting uses (admins only; CSV cvegeo,count)."""
    from flask import redirect

    upload = request.files.get("archivo")
    if upload is None or not upload.filename:
        raise InputError("choose a CSV file with the columns cvegeo, count")
    visits.replace_workplaces(engine(), upload.read(), upload.filename[-200:],
                              current_user().name)
    return redirect(url_for(".resultados", edicion=request.args.get("edicion")))


@bp.get("/resultados.csv")
@require("inspector", "admin")
def resultados_csv():
    """Every stored visit as CSV (spreadsheet formulas neutralised)."""
    from ..publish.export import defuse_frame

    table = defuse_frame(visits.frame(engine()))
    return Response("\ufeff" + table.to_csv(index=False, lineterminator="\r\n"),
                    mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="riskmap_visitas.csv"'})


# -- API -------------------------------------------------------------------------------------
@api_bp.post("/resultados")
@csrf.exempt
@require("inspector", "admin", api=True)
def importar():
    """Import visit records (CSV or XLSX; multipart field ``archivo`` or the raw body)."""
    upload = request.files.get("archivo")
    if upload is not None and upload.filename:
        data, name = upload.read(), upload.filename
    else:
        data = request.get_data(cache=False)
        name = request.args.get("nombre") or ("upload.xlsx" if "spreadsheet" in
                                               (request.mimetype or "") else "upload.csv")
    if not data:
        raise InputError("empty upload: send a CSV or XLSX file (multipart field 'archivo' "
                         "or the request body)")
    result = _import(data, name)
    response = jsonify({"ok": True, "data": result.to_dict()})
    response.status_code = 201 if result.inserted else 200
    return response


@api_bp.get("/resultados/resumen")
@require("inspector", "admin", api=True)
def resumen():
    """Field validation of an edition: hit rates, lift, AUC, λ and slope."""
    atlas = get_atlas()
    names = atlas.names()
    if not names:
        raise NotFound("no edition is published")
    edition = params.edition(request.args.get("edicion"), names, names[-1])
    data = dict(summary(atlas, edition))
    data["lambda_used"] = lambda_for(atlas, edition)
    return jsonify({"ok": True, "data": _plain(data), "meta": {"edition": edition},
                    "links": {"self": url_for(".resumen", edicion=edition)}})


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "item"):
        return _plain(obj.item())
    return obj


def init_app(app) -> None:
    """Register the page and API blueprints."""
    app.register_blueprint(bp)
    app.register_blueprint(api_bp, url_prefix="/api/v1")

