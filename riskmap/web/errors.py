"""One error handler, one error shape.

Under ``/api/`` every error is JSON ``{"ok": false, "status": 400, "error": "...",
"errors": [...]}``; elsewhere it is the ``error.html`` page (a 404 page carries a search box
and, when the request had a ``q``, the matching municipalities). Unexpected exceptions are
logged with their traceback and answered with a generic 500: no internals reach the user.
"""

from __future__ import annotations

from flask import current_app, jsonify, render_template, request, url_for
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from ..errors import RiskmapError

API_PREFIX = "/api/"


def error_body(status: int, message: str, errors=None) -> dict:
    """The error shape shared by every route."""
    return {"ok": False, "status": int(status), "error": str(message),
            "errors": [str(e) for e in (errors or [])]}


def wants_json() -> bool:
    """API paths answer in JSON, pages in HTML."""
    return request.path.startswith(API_PREFIX)


def respond(status: int, message: str, errors=None, headers=None):
    """Build the JSON or HTML error response for the current request."""
    if wants_json():
        response = jsonify(error_body(status, message, errors))
        response.status_code = status
    else:
        try:
            html = render_template("error.html", **_page_context(status, message, errors))
        except Exception:  # noqa: BLE001 - the error page itself must never fail
            current_app.logger.exception("error page could not be rendered")
            html = _bare_page(status, message)
        response = current_app.make_response((html, status))
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def handle_riskmap_error(exc: RiskmapError):
    """Errors the user caused (bad parameter, unknown edition...) keep their status."""
    if exc.status == 503:
        # a missing optional component: say what is missing and how to get it
        current_app.logger.warning("unavailable: %s", exc.message)
        return respond(503, exc.message, exc.errors)
    if exc.status >= 500:
        current_app.logger.error("server-side riskmap error: %s", exc.message)
        return respond(500, _internal_message())
    return respond(exc.status, exc.message, exc.errors)


def handle_http_error(exc: HTTPException):
    """Routing errors (unknown URL, method not allowed) in the same shape."""
    status = exc.code or 500
    headers = {}
    if isinstance(exc, MethodNotAllowed):
        allowed = sorted(m for m in (exc.valid_methods or ["GET", "HEAD"]) if m != "OPTIONS")
        headers["Allow"] = ", ".join(allowed)
        message = (f"method {request.method} is not allowed on this read-only service; "
                   f"allowed: {', '.join(allowed)}")
        return respond(405, message, [f"method: allowed values are {', '.join(allowed)}"],
                       headers)
    if status == 404:
        message = f"no page or resource at {request.path}"
        hint = []
        if wants_json() and "api.openapi" in current_app.view_functions:
            hint = [f"routes: see {url_for('api.openapi')}"]
        return respond(404, message, hint)
    if status >= 500:
        current_app.logger.error("HTTP %s at %s", status, request.path)
        return respond(status, _internal_message())
    return respond(status, exc.description or exc.name)


def handle_unexpected(exc: Exception):
    """Anything else is a bug: log it with its traceback, tell the user nothing internal."""
    if isinstance(exc, HTTPException):  # pragma: no cover - Flask routes these above
        return handle_http_error(exc)
    current_app.logger.exception("unhandled error at %s", request.path)
    return respond(500, _internal_message())


def _bare_page(status: int, message: str) -> str:
    """Minimal error page used when the templates cannot render (escaped, no layout)."""
    from markupsafe import escape

    return (f"<!doctype html><html lang=\"es\"><meta charset=\"utf-8\"><title>{status}</title>"
            f"<h1>{status}</h1><p>{escape(message)}</p><p><a href=\"/\">riskmap</a></p></html>")


def _internal_message() -> str:
    return "internal error; it has been logged"


def init_app(app) -> None:
    """Register the handlers on ``app``."""
    app.register_error_handler(RiskmapError, handle_riskmap_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)


# -- HTML page context ------------------------------------------------------------------------
def _page_context(status: int, message: str, errors) -> dict:
    context = {"status": status, "message": message, "errors": list(errors or []),
               "query": "", "matches": [], "synthetic": False, "search_action": request.path}
    try:
        from .atlas import get_atlas

        atlas = get_atlas()
        latest = atlas.latest()
        from .notices import page_context

        context.update(page_context(atlas, latest), imported=[])
        if status == 404:
            query = (request.args.get("q") or "").strip()[:100]
            if not query:
                # /municipio/<code>: suggest municipalities of the same state or prefix.
                tail = request.path.rstrip("/").rsplit("/", 1)[-1]
                query = tail[:2] if tail.isdigit() and len(tail) >= 2 else ""
            else:
                context["query"] = query
            if query:
                context["matches"] = [dict(m, url=url_for("pages.municipio", cvegeo=m["cvegeo"]))
                                      for m in atlas.search(query, latest, limit=20)]
    except Exception:  # noqa: BLE001 - an error page must render even when data do not
        current_app.logger.warning("error page without data context", exc_info=True)
    return context

