"""Response cache: every public page and API answer is rendered once per data version.

A GET (or HEAD) answer is stored under the key (data version, host, route path, normalised
query, language) and later served from memory with a strong ETag (``304`` on
``If-None-Match``) and gzip compressed once, when it is stored. Pages change only when the data
directory does, so one rendering serves every later request until a new edition is published.

What is never cached, whatever the route (so routes added later are covered by the rule, not by
a list):

- requests other than GET/HEAD, requests carrying the session or "remember me" cookie or an
  ``Authorization`` header (a signed-in user's answers may depend on who asks);
- answers other than ``200``, streamed or file answers, answers that set a cookie, touch the
  session, vary on anything but ``Accept-Encoding``, are already encoded, carry their own
  ETag (the view keeps its own copy and answers conditional requests itself: geometry,
  downloads, Leaflet's files), or say ``Cache-Control: private`` / ``no-store``;
- views marked with :func:`no_cache`.

So a page that reads the session (``current_user`` in a shared template, for instance) is never
cached: show who is signed in only on the pages that need it.

**Data version.** A digest of the name, size and modification time of every file in the data
directory's folders (editions, geography, crosswalks, census records ...), looked at no more
often than ``cache_check_seconds`` per worker. Every publication renames a file into place, so
every gunicorn worker sees a new edition within that delay, without a restart; the cache is then
emptied. The web layer's own disk cache and databases are left out of the digest (the service
writes them itself; pages that read a database are session-bound and not cached).

**Normalised query.** Parameters sorted by name (repeated values keep their order), blank values
dropped (``riskmap.web.params`` treats a blank parameter as absent), ``lang`` replaced by the
language the request resolves to (parameter, cookie or ``Accept-Language``), and the defaults a
view declares with :func:`defaults` dropped, so ``/comparar`` and ``/comparar?a=2017&b=2023``
share one entry.

**Inline scripts.** Pages carry folium's inline scripts under a per-response CSP nonce. A cached
page is the same bytes for everyone, so its answers allow those scripts by their SHA-256 hashes
instead (``script-src 'sha256-...'``), which stays exact without a reusable secret.

**Fast path.** Once Flask has served a cached answer for a request, a WSGI middleware
(:class:`FastPath`) remembers the exact request (path, raw query, ``Accept-Language``,
``Accept-Encoding``, ``lang`` cookie) and answers its repeats with the same status, headers
and bytes without entering Flask: the per-request cost of a hit drops from Flask's request
handling to a dictionary look-up. Answers that set a cookie are never remembered, and the
same bypass rules (method, session cookie, ``Authorization``) apply. Request hooks do not run
for these repeats; a route that needs them per request should be marked :func:`no_cache`.

The cache is a per-process LRU bounded by bytes (``cache_bytes``; 0 disables it); its counts
appear on ``/salud`` (:mod:`riskmap.web.health`).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import re

from flask import Response, current_app, g, request
from flask.globals import _cv_request
from werkzeug.datastructures import Headers

from .cachestore import DataVersion, Entry, ResponseCache

__all__ = ["DataVersion", "Entry", "ResponseCache", "answer", "cacheable", "defaults",
           "get_state", "init_app", "no_cache", "warm"]

EXTENSION_KEY = "riskmap_cache"
#: Seconds a request waits for another thread rendering the same key before rendering itself.
WAIT_SECONDS = 30.0
#: Smallest body worth compressing (as the factory's on-the-fly gzip).
MIN_GZIP = 1024
_NO_CACHE = "_riskmap_no_cache"
_DEFAULTS = "_riskmap_cache_defaults"
_DEPENDS = "_riskmap_cache_depends"
# Headers rebuilt for every answer from the entry (or per request by the factory).
_DROP = {"content-length", "content-encoding", "etag", "set-cookie", "date",
         "content-security-policy"}

def no_cache(view):
    """Mark a view whose answers must never be cached (the rule above is the usual guard)."""
    setattr(view, _NO_CACHE, True)
    return view


def depends_on(*versions):
    """Mark a view whose answers also depend on state outside the data directory's files
    (the outcomes database, whose estimated λ the targeting answers use).

    Each of ``versions`` is a callable taking no argument and returning a hashable that
    changes with that state; it is evaluated for every request of the view and joins the
    cache key. Such answers skip the fast path, which matches requests before any view runs.
    """
    def mark(view):
        setattr(view, _DEPENDS, tuple(versions))
        return view

    return mark


def defaults(**values):
    """Declare a view's parameter defaults for the cache key (``?capa=nivel`` = no ``capa``).

    Values are strings or callables taking no argument, evaluated in the request (e.g. the
    latest edition). Only declare a value the view really uses when the parameter is absent:
    ``tests/test_cache.py`` renders every declared default both ways and compares.
    """
    def mark(view):
        setattr(view, _DEFAULTS, dict(values))
        return view

    return mark


def latest_edition() -> str:
    """The latest published edition (a default for :func:`defaults`)."""
    from .atlas import get_atlas

    return get_atlas().latest()


def previous_edition() -> str:
    """The edition before the latest (the latest when it is the only one): the comparison's
    default first edition."""
    from .atlas import get_atlas

    names = get_atlas().names()
    return names[-2] if len(names) > 1 else names[-1]


def declared_defaults(view) -> dict:
    """The defaults a view declared with :func:`defaults` (empty when none)."""
    return dict(getattr(view, _DEFAULTS, None) or {})


class CacheState:
    """What :func:`init_app` attaches to the app: the cache and the data version."""

    def __init__(self, data_dir, max_bytes: int, interval: float):
        self.cache = ResponseCache(max_bytes)
        self.version = DataVersion(data_dir, interval)


def get_state(app=None) -> CacheState:
    return (app or current_app).extensions[EXTENSION_KEY]


# -- Flask wiring -------------------------------------------------------------------------------
def init_app(app) -> None:
    """Attach the cache to ``app``. Call after the factory's own ``after_request`` hook, so
    that it runs first (Flask runs them in reverse) and stores the view's answer before the
    per-request headers (CSP, language cookie) are added."""
    settings = app.config["RISKMAP"]
    app.extensions[EXTENSION_KEY] = CacheState(settings["data_dir"], settings["cache_bytes"],
                                               settings["cache_check_seconds"])
    app.before_request(_lookup)
    app.after_request(_store)
    app.teardown_request(_release)
    app.wsgi_app = FastPath(app, app.wsgi_app)


def request_key():
    """The cache key of the current request, or None when it must not be cached."""
    if request.method not in ("GET", "HEAD") or request.endpoint in (None, "static"):
        return None
    view = current_app.view_functions.get(request.endpoint)
    if view is None or getattr(view, _NO_CACHE, False):
        return None
    if "Authorization" in request.headers or \
            any(name in request.cookies for name in identity_cookies(current_app)):
        return None
    from .http import current_lang

    extra = tuple(version() for version in getattr(view, _DEPENDS, ()))
    return (request.host, request.script_root, request.path, _query(view), current_lang(),
            *extra)


def identity_cookies(app) -> tuple[str, ...]:
    """Cookies that say who is asking: Flask's session and Flask-Login's "remember me"."""
    return (app.config["SESSION_COOKIE_NAME"],
            app.config.get("REMEMBER_COOKIE_NAME", "remember_token"))


def _query(view) -> tuple:
    args = request.args
    drop = {"lang"}
    for name, value in declared_defaults(view).items():
        given = [v for v in args.getlist(name) if v.strip()]
        if len(given) == 1:
            try:
                default = value() if callable(value) else value
            except Exception:  # noqa: BLE001 - no default resolvable: keep the parameter
                continue
            if given[0].strip() == str(default):
                drop.add(name)
    out = []
    for name in sorted(set(args.keys()) - drop):
        values = tuple(v for v in args.getlist(name) if v.strip())
        if values:
            out.append((name, values))
    return tuple(out)


def _lookup():
    state = get_state()
    if not state.cache.enabled:
        return None
    key = request_key()
    if key is None:
        return None
    version = state.version.current()
    state.cache.sync(version)
    # The version is part of the key too: an answer rendered while a publication lands is
    # stored under the version its request saw, never under the next one.
    key = (version,) + key
    entry = state.cache.get(key)
    if entry is None:
        leader, event = state.cache.claim(key)
        if not leader:
            event.wait(WAIT_SECONDS)
            entry = state.cache.get(key)
        else:
            g.riskmap_cache_claim = key
    if entry is not None:
        g.riskmap_cache_hit = True
        return answer(entry, key)
    g.riskmap_cache_key = key
    return None


def _store(response):
    key = g.pop("riskmap_cache_key", None)
    if key is None or g.get("riskmap_cache_hit"):
        return response
    if not cacheable(response):
        return response
    entry = make_entry(response, g.pop("csp_nonce", None))  # its scripts go by hash now
    get_state().cache.put(key, entry)
    return answer(entry, key)


def _release(_exc=None):
    key = g.pop("riskmap_cache_claim", None)
    if key is not None:
        get_state().cache.release(key)


def cacheable(response) -> bool:
    """Whether a view's answer may be shared with every other client (the rule above)."""
    if response.status_code != 200 or response.is_streamed or response.direct_passthrough:
        return False
    headers = response.headers
    if "Set-Cookie" in headers or "Content-Encoding" in headers or "ETag" in headers:
        return False
    cc = response.cache_control
    if cc.private or cc.no_store:
        return False
    if any(v.strip().lower() not in ("accept-encoding", "") for v in
           headers.get("Vary", "").split(",")):
        return False
    return not _session_used()


def _session_used() -> bool:
    """Whether the view read or wrote the session (a signed-in page, a CSRF token...).

    Read from the request context's own session object: since Flask 3.1 merely touching the
    ``flask.session`` proxy marks the session accessed, which would make this check true.
    """
    ctx = _cv_request.get(None)
    state = vars(ctx) if ctx is not None else {}
    sess = state.get("_session", state.get("session"))
    return bool(sess is not None and (getattr(sess, "accessed", True)
                                      or getattr(sess, "modified", True)))


def make_entry(response, nonce: str | None = None) -> Entry:
    """Freeze a view's answer: its bytes, their gzip (once), ETag and inline-script hashes."""
    from .http import COMPRESSIBLE

    body = response.get_data()
    gzipped = None
    if response.mimetype in COMPRESSIBLE and len(body) >= MIN_GZIP:
        gzipped = gzip.compress(body, compresslevel=6, mtime=0)
        if len(gzipped) >= len(body):
            gzipped = None
    hashes = ()
    if nonce and response.mimetype == "text/html":
        charset = response.mimetype_params.get("charset", "utf-8")
        hashes = tuple(_script_hashes(body.decode(charset, "replace"), nonce))
    headers = tuple((k, v) for k, v in response.headers.items() if k.lower() not in _DROP)
    if gzipped is not None and not any(k.lower() == "vary" for k, _ in headers):
        headers += (("Vary", "Accept-Encoding"),)
    if not any(k.lower() == "cache-control" for k, _ in headers):
        # Browsers keep the page but ask again (a cheap 304) once the data may have changed.
        headers += (("Cache-Control", "no-cache"),)
    etag = hashlib.sha256(body).hexdigest()[:32]
    return Entry(response.status_code, headers, body, gzipped, etag, hashes)


# -- fast path ----------------------------------------------------------------------------------
_SERVED = "riskmap.cache.served"
_LANG_COOKIE = re.compile(r"(?:^|;)\s*lang=([^;]*)")


class FastPath:
    """WSGI middleware answering exact repeats of cached requests without entering Flask.

    Parameters
    ----------
    app : flask.Flask
        The application (its cache state and session cookie name).
    wsgi_app : callable
        The WSGI application it wraps (``app.wsgi_app``).
    """

    def __init__(self, app, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app
        names = "|".join(re.escape(n) for n in identity_cookies(app))
        self._session = re.compile(r"(?:^|;)\s*(?:" + names + ")=")

    def __call__(self, environ, start_response):
        state = self.app.extensions[EXTENSION_KEY]
        raw = self._raw_key(environ) if state.cache.enabled else None
        if raw is None:
            return self.wsgi_app(environ, start_response)
        version = state.version.current()
        state.cache.sync(version)
        raw = (version,) + raw
        found = state.cache.alias(raw)
        if found is not None:
            entry, zipped, status, headers = found
            asked = environ.get("HTTP_IF_NONE_MATCH")
            if asked and _matches(asked, entry):
                keep = {"etag", "cache-control", "vary", "expires", "content-location"}
                start_response("304 NOT MODIFIED", [(k, v) for k, v in headers
                                                    if k.lower() in keep])
                return []
            start_response(status, list(headers))
            if environ["REQUEST_METHOD"] == "HEAD":
                return []
            return [entry.gzipped if zipped else entry.body]

        def remembering(status, headers, exc_info=None):
            served = environ.get(_SERVED)
            if (served is not None and status.startswith("200")
                    and not any(k.lower() == "set-cookie" for k, _ in headers)):
                state.cache.remember(raw, served[0], served[1], status,
                                     [(k, v) for k, v in headers if k.lower() != "date"])
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, remembering)

    def _raw_key(self, environ):
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD") or \
                "HTTP_AUTHORIZATION" in environ:
            return None
        cookies = environ.get("HTTP_COOKIE", "")
        lang = ""
        if cookies:
            if self._session.search(cookies):
                return None
            match = _LANG_COOKIE.search(cookies)
            lang = match.group(1).strip() if match else ""
        return (environ.get("HTTP_HOST", ""), environ.get("SCRIPT_NAME", ""),
                environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""),
                environ.get("HTTP_ACCEPT_LANGUAGE", ""), environ.get("HTTP_ACCEPT_ENCODING", ""),
                lang)


def _matches(header: str, entry: Entry) -> bool:
    asked = {t.strip().removeprefix("W/").strip('"') for t in header.split(",") if t.strip()}
    return bool(asked & {entry.etag, entry.etag + "-gz", "*"})


def _script_hashes(html: str, nonce: str):
    pattern = re.compile(r"<script\b[^>]*\bnonce=\"" + re.escape(nonce) + r"\"[^>]*>(.*?)</script>",
                         re.S | re.I)
    for match in pattern.finditer(html):
        text = match.group(1).replace("\r\n", "\n").replace("\r", "\n")
        yield base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def answer(entry: Entry, key=None) -> Response:
    """The response for ``entry``: ``304`` when the client holds it, gzip when accepted.

    ``key`` (the entry's cache key) lets the fast path remember the request.
    """
    zipped = entry.gzipped is not None and request.accept_encodings["gzip"] > 0
    view = current_app.view_functions.get(request.endpoint)
    if key is not None and not getattr(view, _DEPENDS, ()):
        request.environ[_SERVED] = (key, zipped)
    tag = entry.etag + ("-gz" if zipped else "")
    headers = Headers(list(entry.headers))
    headers["ETag"] = f'"{tag}"'
    g.csp_script_hashes = entry.script_hashes
    if _matches(request.headers.get("If-None-Match", ""), entry):
        keep = {"etag", "cache-control", "vary", "expires", "content-location"}
        return Response(status=304, headers=[(k, v) for k, v in headers.items()
                                             if k.lower() in keep])
    response = Response(entry.gzipped if zipped else entry.body, status=entry.status,
                        headers=headers)
    if zipped:
        response.headers["Content-Encoding"] = "gzip"
    return response


# -- warming ------------------------------------------------------------------------------------
def warm(app, languages=("es", "en")) -> dict:
    """Render the service's main answers once, so the first visitors find them in memory.

    Called by ``gunicorn.conf.py`` in the master process before the workers are forked
    (``preload_app``): every worker then starts with the atlas loaded and these answers
    cached, shared copy-on-write. Asks every GET route without arguments (except files and
    the health check), the latest edition's API summary, one state and one municipality
    (which derive the tables every state and municipality page reuses) and the map geometry
    of every vintage, in each language. The answers are stored under the test client's host
    (``localhost``; the host is part of the key, so that no page rendered for one host name
    is served to another): for requests under the public name, the warm-up's gain is the
    loaded data and derived tables, which keep every first rendering short.

    Returns
    -------
    dict
        ``path -> status`` of what was asked (for the log).
    """
    from .atlas import get_atlas

    paths = []
    for rule in app.url_map.iter_rules():
        # pages and API behind the login are never cached
        private = rule.endpoint.split(".")[0] in ("auth", "outcomes", "outcomes_api", "worklists",
                                                 "worklists_api")
        if ("GET" in rule.methods and not rule.arguments and not private and rule.endpoint
                not in ("static", "salud") and not rule.rule.endswith((".csv", ".xlsx"))):
            paths.append(rule.rule)
    with app.app_context():
        atlas = get_atlas()
        names = atlas.names()
        if names:
            latest = atlas.latest()
            rows = atlas.rows(latest)
            paths += [f"/estado/{rows['cve_ent'].iloc[0]}", f"/municipio/{rows['cvegeo'].iloc[0]}",
                      f"/api/v1/ediciones/{latest}",
                      f"/api/v1/ediciones/{latest}/municipios/{rows['cvegeo'].iloc[0]}"]
            paths += [f"/api/v1/geometria/{v}.topojson" for v in atlas.vintages()]
    client = app.test_client()
    done = {}
    for lang in languages:
        for path in dict.fromkeys(paths):
            response = client.get(path, headers={"Accept-Language": lang,
                                                 "Accept-Encoding": "gzip"})
            done[f"{path} [{lang}]"] = response.status_code
            response.close()
    return done
