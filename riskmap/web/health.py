"""``/salud``: the health check a load balancer polls.

``200`` with ``"status": "ok"`` when the data directory is readable and the latest published
edition loads; ``503`` with ``"status": "error"`` and the reasons otherwise. The answer also
reports the package version, the data version the worker serves, the editions published and
those in memory, and the response cache's counts (:mod:`riskmap.web.cache`). It is never
cached, and it stays cheap: after the first call it only looks at file metadata.
"""

from __future__ import annotations

import os

from flask import jsonify

from .. import __version__
from . import cache
from .atlas import get_atlas


@cache.no_cache
def salud():
    """Service health for load balancers and monitoring (200 healthy, 503 not)."""
    atlas = get_atlas()
    state = cache.get_state()
    problems = []
    root = atlas.store.root
    readable = root.is_dir() and os.access(root, os.R_OK | os.X_OK)
    data_version = state.version.current()
    if not readable:
        problems.append("the data directory is not readable")
    published, latest = [], None
    if readable:
        try:
            published = atlas.names()
            latest = atlas.latest()
            atlas.edition(latest)
        except Exception as exc:  # noqa: BLE001 - reported, the check itself must answer
            problems.append(getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}")
    body = {"status": "error" if problems else "ok", "version": __version__,
            "data_dir_readable": readable, "data_version": data_version,
            "editions": {"published": published, "latest": latest, "loaded": atlas.loaded()},
            "cache": state.cache.stats(), "errors": problems}
    response = jsonify(body)
    response.status_code = 503 if problems else 200
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app) -> None:
    """Register ``/salud`` on ``app``."""
    app.add_url_rule("/salud", "salud", salud)
