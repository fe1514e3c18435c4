"""The method document (``docs/METHOD.md``) served by the service, shipped in the wheel.

``/metodologia/metodo`` renders it as a page of the site; ``/metodologia/METHOD.md`` gives the
Markdown source. The document is the project's own (raw HTML in it is not rendered).
"""

from __future__ import annotations

import functools

from flask import Blueprint, Response, render_template

from .. import paths

bp = Blueprint("method", __name__)


@functools.lru_cache(maxsize=4)
def _document(path: str, mtime_ns: int) -> tuple[str, str, str]:
    """The document's text, its HTML rendering and its title; cached per file version."""
    from markdown_it import MarkdownIt

    text = open(path, encoding="utf-8").read()
    html = MarkdownIt("commonmark", {"html": False, "typographer": False}).enable("table") \
        .render(text)
    title = next((line.lstrip("# ").strip() for line in text.splitlines()
                  if line.startswith("# ")), "riskmap")
    return text, html, title


def document() -> tuple[str, str, str]:
    """Read (or reuse) ``docs/METHOD.md``: text, HTML, title."""
    path = paths.METHOD_DOC
    return _document(str(path), path.stat().st_mtime_ns)


@bp.get("/metodologia/metodo")
def page():
    """The full method document as a page of the site."""
    _, html, title = document()
    return render_template("metodo.html", body=html, title=title)


@bp.get("/metodologia/METHOD.md")
def source():
    """The method document's Markdown source."""
    text, _, _ = document()
    response = Response(text, mimetype="text/markdown")
    response.headers["Content-Disposition"] = 'inline; filename="METHOD.md"'
    return response
