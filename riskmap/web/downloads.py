"""Downloads: the ``/descargas`` page and the export files behind it.

``/descargas/<edicion>.<formato>?estado=&nivel=`` returns exactly what ``riskmap export`` writes
(:func:`riskmap.publish.export.export_bytes`), with the edition's provenance inside the file. Recent
files are kept in a small in-memory LRU cache and carry an ETag, because building a GeoPackage
or a zipped Shapefile of 2,469 municipalities takes a noticeable fraction of a second.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from flask import Blueprint, Response, render_template, request, url_for

from ..publish.edition import LEVELS
from . import params
from .http import current_lang
from .atlas import get_atlas

bp = Blueprint("downloads", __name__)

#: Download formats in display order: key -> label.
FORMATS = {"csv": "CSV", "xlsx": "Excel (XLSX)", "geojson": "GeoJSON",
           "gpkg": "GeoPackage", "shp": "Shapefile (ZIP)"}
CACHE_SIZE = 24

_cache: OrderedDict = OrderedDict()
_lock = threading.Lock()


def _export(name: str, fmt: str, estado: str | None, nivel: str | None):
    """(bytes, mimetype, filename, etag) of one export, memoised by the edition file (its
    path, so that two apps on different data directories in one process never share an
    entry, and its mtime)."""
    from ..publish.export import export_bytes

    atlas = get_atlas()
    edition = atlas.edition(name)
    path = atlas.store.edition_path(name)
    lang = current_lang()
    key = (str(path), path.stat().st_mtime_ns, fmt, estado, nivel, lang)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    data, mimetype, filename = export_bytes(edition, fmt, estado, nivel, lang=lang)
    etag = hashlib.sha256(repr(key).encode() + hashlib.sha256(data).digest()).hexdigest()[:32]
    value = (data, mimetype, filename, etag)
    with _lock:
        _cache[key] = value
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return value


@bp.get("/descargas/<edicion>.<formato>")
def archivo(edicion: str, formato: str):
    """One edition in one format, optionally filtered by state and level."""
    atlas = get_atlas()
    atlas.card(edicion)  # unknown edition -> 404 listing the published ones
    formato = params.choice("formato", formato, list(FORMATS))
    estado = params.estado(request.args.get("estado"), atlas.state_names(edicion))
    nivel = params.nivel(request.args.get("nivel"))
    data, mimetype, filename, etag = _export(edicion, formato, estado, nivel)
    response = Response(data, content_type=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.set_etag(etag)
    return response.make_conditional(request)


@bp.get("/descargas")
def descargas():
    """Every edition in every format, with state and level filters and the data dictionary."""
    from ..publish.export import DICTIONARY
    from . import notices

    atlas = get_atlas()
    names = atlas.names()
    latest = atlas.latest()
    states = atlas.states(atlas.edition(latest).vintage)
    estado = params.estado(request.args.get("estado"), {s["cve_ent"]: s["nom_ent"] for s in states})
    nivel = params.nivel(request.args.get("nivel"))
    filters = {k: v for k, v in (("estado", estado), ("nivel", nivel)) if v}
    editions = []
    for info in reversed(atlas.editions()):  # newest first: what most people want
        prov = atlas.provenance(info["name"])
        files = [{"format": key, "label": label,
                  "url": url_for(".archivo", edicion=info["name"], formato=key, **filters)}
                 for key, label in FORMATS.items()]
        editions.append(dict(info, files=files, attribution=prov["attribution"],
                             sources=prov["sources"], rule_text=prov["rule_text"]))
    dictionary = [{"column": col, "es": text.split(" / ")[0],
                   "en": text.split(" / ")[-1]} for col, text in DICTIONARY.items()]
    context = notices.page_context(atlas, *reversed(names))
    context["imported"] = []  # each imported edition is tagged in the table instead
    return render_template("descargas.html", editions=editions, states=states, levels=LEVELS,
                           estado=estado, nivel=nivel, dictionary=dictionary,
                           n_editions=len(names), **context)
