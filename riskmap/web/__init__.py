"""The web service: Flask app factory (``create_app``) wiring blueprints, i18n and security.

Run with ``riskmap serve`` or ``gunicorn wsgi:app``. The service is read-only (GET/HEAD only)
except the login and inspection-outcome routes (:mod:`.auth`, :mod:`.outcomes`),
Spanish first with English available, and never asks the browser to contact another host:
Leaflet is served from the installed ``django-js-lib-leaflet`` package.
"""

from __future__ import annotations

import functools
import gzip
import secrets
import zlib
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, g, request, url_for
from flask_babel import Babel, gettext
from werkzeug.exceptions import MethodNotAllowed, NotFound as HTTPNotFound

from .. import paths, settings as settings_mod
from .http import COMPRESSIBLE, accepts_gzip, current_lang

#: Former name of :func:`riskmap.web.http.accepts_gzip` (web modules import it from there).
_accepts_gzip = accepts_gzip

LANGUAGES = ("es", "en")
TRANSLATIONS_DIR = paths.TRANSLATIONS_DIR

#: Leaflet files the pages use; nothing else of the package is served.
LEAFLET_FILES = ("leaflet.js", "leaflet.css", "images/layers.png", "images/layers-2x.png",
                 "images/marker-icon.png", "images/marker-icon-2x.png",
                 "images/marker-shadow.png")



def leaflet_dir() -> Path:
    """Folder of Leaflet 1.9.4's files in the installed ``js_lib_leaflet`` package."""
    import js_lib_leaflet

    return Path(js_lib_leaflet.__file__).resolve().parent / "static" / "js_lib_leaflet"


def select_locale() -> str:
    """Interface language: ``?lang=``, then the ``lang`` cookie, then Accept-Language."""
    from flask import current_app

    asked = request.args.get("lang")
    if asked in LANGUAGES:
        return asked
    cookie = request.cookies.get("lang")
    if cookie in LANGUAGES:
        return cookie
    default = current_app.config["RISKMAP"]["default_language"]
    best = request.accept_languages.best_match(LANGUAGES) if request.accept_languages else None
    return best or (default if default in LANGUAGES else "es")


def create_app(config: dict | None = None) -> Flask:
    """Build the Flask application.

    Parameters
    ----------
    config : dict, optional
        Setting overrides (see :mod:`riskmap.settings`), plus ``TESTING`` (bool).

    Returns
    -------
    flask.Flask
    """
    config = dict(config or {})
    testing = config.pop("TESTING", config.pop("testing", None))
    settings = settings_mod.resolve(config)
    app = Flask(__name__, template_folder=str(paths.TEMPLATES_DIR),
                static_folder=str(paths.STATIC_DIR))
    app.config["RISKMAP"] = settings
    if testing is not None:
        app.config["TESTING"] = bool(testing)
    app.config["BABEL_DEFAULT_LOCALE"] = "es"
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS_DIR)
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = settings["cache_max_age"]
    Babel(app, locale_selector=select_locale)

    from . import (api, atlas, auth, downloads, errors, fichas, method, outcomes, pages, trends,
                   worklists)

    atlas.init_app(app)
    errors.init_app(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp, url_prefix="/api/v1")
    app.register_blueprint(downloads.bp)
    app.register_blueprint(fichas.bp)
    app.register_blueprint(method.bp)
    app.register_blueprint(trends.bp)
    auth.init_app(app)  # login, sessions, CSRF; the outcomes pages and API need it
    outcomes.init_app(app)
    worklists.init_app(app)

    app.add_url_rule("/assets/leaflet/<path:filename>", "leaflet_asset", _leaflet_asset)
    app.jinja_env.globals.update(_=gettext, url_for=url_for, csp_nonce=_csp_nonce,
                                 LANGUAGES=LANGUAGES)
    app.context_processor(_template_context)
    app.before_request(_read_only)
    app.after_request(_finish_response)
    from . import cache, health

    cache.init_app(app)  # after _finish_response: its hook must run first
    health.init_app(app)
    return app


def _template_context() -> dict:
    from datetime import date

    return {"lang": current_lang(), "settings": _settings(), "today": date.today().isoformat()}


def _settings() -> dict:
    from flask import current_app

    return current_app.config["RISKMAP"]


def _csp_nonce() -> str:
    """Per-response nonce for the few inline scripts folium emits (map construction)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def _leaflet_asset(filename: str):
    """Serve Leaflet's own files (JS, CSS, control images) from the installed package."""
    if filename not in LEAFLET_FILES:
        raise HTTPNotFound()
    from flask import current_app

    import mimetypes

    # Served from memory (not as a file stream) so the after-request hook can gzip it:
    # leaflet.js is 148 KB raw, about 40 KB on the wire.
    response = current_app.response_class(_leaflet_bytes(filename),
                                          mimetype=mimetypes.guess_type(filename)[0])
    response.cache_control.public = True
    response.cache_control.max_age = current_app.config["RISKMAP"]["cache_max_age"]
    response.add_etag()
    response.make_conditional(request)
    return response


@functools.lru_cache(maxsize=len(LEAFLET_FILES))
def _leaflet_bytes(filename: str) -> bytes:
    """A Leaflet file's bytes, read once per process (the installed package does not change)."""
    return (leaflet_dir() / filename).read_bytes()


def _read_only():
    # The service publishes; it accepts writes only on the login and inspection-outcome
    # routes (riskmap.web.auth.WRITE_ENDPOINTS). OPTIONS stays for CORS-less clients.
    from .auth import WRITE_ENDPOINTS

    if (request.method not in ("GET", "HEAD", "OPTIONS")
            and request.endpoint not in WRITE_ENDPOINTS):
        raise MethodNotAllowed(valid_methods=["GET", "HEAD"])


def _finish_response(response):
    settings = _settings()
    script_src = "'self'"
    if "csp_nonce" in g:
        script_src += f" 'nonce-{g.csp_nonce}'"
    for digest in g.get("csp_script_hashes", ()):  # a cached page's inline scripts (cache.py)
        script_src += f" 'sha256-{digest}'"
    img_src = "'self' data:"
    tile_url = settings.get("tile_url") or ""
    if tile_url:
        parts = urlsplit(tile_url.replace("{s}", "a"))
        if parts.scheme and parts.netloc:
            host = parts.netloc if "{s}" not in tile_url else "*." + parts.netloc.split(".", 1)[-1]
            img_src += f" {parts.scheme}://{host}"
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src {script_src}; style-src 'self' 'unsafe-inline'; "
        f"img-src {img_src}; connect-src 'self'; font-src 'self'; object-src 'none'; "
        "base-uri 'self'; form-action 'self'; frame-ancestors 'self'")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    asked = request.args.get("lang")
    if asked in LANGUAGES and request.cookies.get("lang") != asked:
        response.set_cookie("lang", asked, max_age=365 * 24 * 3600, samesite="Lax")
    return _maybe_gzip(response)


def _maybe_gzip(response):
    """Compress text responses for clients that accept gzip (pages, JSON, CSV, GeoJSON).

    Streamed responses (the API's complete GeoJSON and CSV lists) are compressed on the
    fly, chunk by chunk, so they stay streamed: the full-resolution municipalities GeoJSON
    (about 4 MB) leaves the server at roughly a fifth of that.
    """
    if (response.direct_passthrough
            or response.status_code < 200 or response.status_code >= 300
            or "Content-Encoding" in response.headers
            or response.mimetype not in COMPRESSIBLE):
        return response
    response.vary.add("Accept-Encoding")
    if not accepts_gzip():
        return response
    if response.is_streamed:
        response.response = _gzip_stream(response.response)
        response.headers.pop("Content-Length", None)
        response.headers["Content-Encoding"] = "gzip"
        return response
    data = response.get_data()
    if len(data) < 1024:
        return response
    response.set_data(gzip.compress(data, compresslevel=6))
    response.headers["Content-Encoding"] = "gzip"
    return response


def _gzip_stream(chunks, level: int = 6):
    """Gzip an iterable of str/bytes chunks lazily (one gzip member, flushed at the end)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # wbits 31: gzip container
    try:
        for chunk in chunks:
            if isinstance(chunk, str):
                chunk = chunk.encode("utf-8")
            out = compressor.compress(chunk)
            if out:
                yield out
        yield compressor.flush()
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
