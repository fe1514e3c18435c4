"""Small per-request helpers shared by the web modules (so that none imports the factory).

:mod:`riskmap.web` (the app factory) wires the application; views, notices and the API read
the request's language and encodings through these functions.
"""

from __future__ import annotations

from flask import request
from flask_babel import get_locale


#: Responses worth compressing when the client accepts gzip (geometry is pre-compressed).
COMPRESSIBLE = ("text/html", "text/css", "text/csv", "application/javascript",
                "text/javascript", "application/json", "application/geo+json", "image/svg+xml")


def current_lang() -> str:
    """Language of the current request ("es" or "en")."""
    locale = get_locale()
    return locale.language if locale is not None else "es"


def accepts_gzip() -> bool:
    """Whether the client accepts gzip (``Accept-Encoding``, honouring ``gzip;q=0``)."""
    return request.accept_encodings["gzip"] > 0
