"""Response cache: rendered once per key, ETag/304, gzip once, key normalisation, LRU by bytes,
invalidation on publish across workers, and the answers that must never be cached."""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import re
import shutil

import pytest
from flask import Response, session

from riskmap.publish.store import DataStore
from riskmap.web import cache as cache_mod
from riskmap.web.cache import Entry, ResponseCache

from webdata import build_fake_atlas, web_app

GZ = {"Accept-Encoding": "gzip"}


@pytest.fixture(scope="module")
def fake_dir(tmp_path_factory):
    return build_fake_atlas(tmp_path_factory.mktemp("cache-atlas"))


@pytest.fixture()
def app(fake_dir):
    return web_app(fake_dir, cache_check_seconds=0)


def count_calls(app, endpoint: str) -> list:
    """Wrap a view so the test sees how often it really runs (attributes are kept)."""
    calls = []
    view = app.view_functions[endpoint]

    @functools.wraps(view)
    def spy(*args, **kwargs):
        calls.append(1)
        return view(*args, **kwargs)

    app.view_functions[endpoint] = spy
    return calls


def stats(app) -> dict:
    return cache_mod.get_state(app).cache.stats()


# -- rendered once, ETag, 304, gzip ------------------------------------------------------------
def test_page_rendered_once_then_served_from_memory(app):
    calls = count_calls(app, "pages.index")
    client = app.test_client()
    first, second = client.get("/"), client.get("/")
    assert first.status_code == second.status_code == 200
    assert len(calls) == 1
    assert first.data == second.data and b"riskmap" in first.data
    assert first.headers["ETag"] == second.headers["ETag"]
    assert stats(app)["hits"] == 1 and stats(app)["stores"] == 1
    # Per-request headers are still added to a cached answer.
    assert "default-src 'self'" in second.headers["Content-Security-Policy"]


def test_api_answer_rendered_once(app):
    calls = count_calls(app, "api.municipio")
    client = app.test_client()
    bodies = [client.get("/api/v1/ediciones/2023/municipios/22001").get_json() for _ in range(3)]
    assert len(calls) == 1
    assert bodies[0] == bodies[2] and bodies[0]["data"]["cvegeo"] == "22001"


def test_etag_and_conditional_get(app):
    client = app.test_client()
    first = client.get("/api/v1/ediciones")
    etag = first.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)  # strong
    assert etag.strip('"') == hashlib.sha256(first.data).hexdigest()[:32]
    not_modified = client.get("/api/v1/ediciones", headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.data == b""
    assert not_modified.headers["ETag"] == etag
    weak = client.get("/api/v1/ediciones", headers={"If-None-Match": "W/" + etag})
    assert weak.status_code == 304
    other = client.get("/api/v1/ediciones", headers={"If-None-Match": '"0000", "1111"'})
    assert other.status_code == 200 and other.data == first.data
    # The gzip representation has its own strong tag, and it validates too.
    zipped = client.get("/api/v1/ediciones", headers=GZ)
    assert zipped.headers["ETag"] != etag
    again = client.get("/api/v1/ediciones", headers={**GZ, "If-None-Match": zipped.headers["ETag"]})
    assert again.status_code == 304


def test_gzip_compressed_once(app, monkeypatch):
    calls = []
    real = gzip.compress

    def counting(data, *args, **kwargs):
        calls.append(len(data))
        return real(data, *args, **kwargs)

    monkeypatch.setattr(gzip, "compress", counting)
    client = app.test_client()
    plain = client.get("/comparar?a=2017&b=2023")
    zipped = [client.get("/comparar?a=2017&b=2023", headers=GZ) for _ in range(3)]
    assert len(calls) == 1  # once, when stored; never per request
    for r in zipped:
        assert r.headers["Content-Encoding"] == "gzip"
        assert r.headers["Vary"] == "Accept-Encoding"
        assert gzip.decompress(r.data) == plain.data
    assert "Content-Encoding" not in plain.headers
    assert len(zipped[0].data) < len(plain.data) / 3


def test_head_served_from_cache_without_body(app):
    calls = count_calls(app, "pages.metodologia")
    client = app.test_client()
    client.get("/metodologia")
    head = client.head("/metodologia")
    assert head.status_code == 200 and head.data == b"" and len(calls) == 1


def test_exact_repeats_answered_by_the_fast_path(app):
    calls = count_calls(app, "pages.estado")
    client = app.test_client()
    client.get("/estado/07?lang=es", headers=GZ)  # rendered and stored
    second = client.get("/estado/07", headers=GZ)  # the same entry, through Flask
    assert stats(app)["fast_hits"] == 0 and stats(app)["hits"] == 1
    third = client.get("/estado/07", headers=GZ)  # the same request again: fast path
    assert stats(app)["fast_hits"] == 1 and len(calls) == 1
    assert third.data == second.data and dict(third.headers) == dict(second.headers)
    assert third.headers["Content-Encoding"] == "gzip"
    assert "'sha256-" in third.headers["Content-Security-Policy"]
    cond = client.get("/estado/07", headers={**GZ, "If-None-Match": third.headers["ETag"]})
    assert cond.status_code == 304 and cond.data == b"" and stats(app)["fast_hits"] == 2
    assert client.head("/estado/07", headers=GZ).data == b""
    # Another language or encoding is another request: not answered with these bytes.
    plain = client.get("/estado/07")
    assert "Content-Encoding" not in plain.headers
    assert gzip.decompress(third.data) == plain.data


def test_cached_page_allows_its_inline_scripts_by_hash(app):
    client = app.test_client()
    client.get("/estado/07")
    cached = client.get("/estado/07")
    html = cached.get_data(as_text=True)
    scripts = re.findall(r"<script nonce=\"[^\"]+\">(.*?)</script>", html, re.S)
    assert scripts
    csp = cached.headers["Content-Security-Policy"]
    for text in scripts:
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp


# -- key normalisation --------------------------------------------------------------------------
def test_parameter_order_blank_values_and_defaults_share_one_entry(app):
    calls = count_calls(app, "pages.index")
    client = app.test_client()
    urls = ["/", "/?capa=nivel", "/?edicion=2023&capa=nivel", "/?capa=nivel&edicion=2023",
            "/?estado=&capa=nivel", "/?capa=nivel&estado="]
    bodies = {client.get(u).data for u in urls}
    assert len(calls) == 1 and len(bodies) == 1
    client.get("/?capa=probabilidad")
    client.get("/?edicion=2017")
    assert len(calls) == 3


def test_language_is_part_of_the_key(app):
    calls = count_calls(app, "pages.metodologia")
    client = app.test_client()
    es = client.get("/metodologia?lang=es").get_data(as_text=True)
    en = client.get("/metodologia?lang=en").get_data(as_text=True)
    assert len(calls) == 2 and '<html lang="es">' in es and '<html lang="en">' in en
    # The same language asked another way (header, cookie) is the same entry.
    fresh = app.test_client()
    by_header = fresh.get("/metodologia", headers={"Accept-Language": "en"})
    assert by_header.get_data(as_text=True) == en
    fresh.set_cookie("lang", "es")
    assert fresh.get("/metodologia").get_data(as_text=True) == es
    assert len(calls) == 2


def _without_request_echo(html: bytes) -> str:
    text = html.decode()
    text = re.sub(r'nonce="[^"]+"', "", text)
    # the language links repeat the query as typed
    return re.sub(r'<a lang="\w+" hreflang="\w+" href="[^"]*">', "", text)


def test_declared_defaults_are_what_the_views_do(fake_dir):
    """Every default a view declares for the cache key renders the same page as leaving the
    parameter out (caught if a view's default changes and its declaration does not)."""
    app = web_app(fake_dir, cache_bytes=0)
    client = app.test_client()
    checked = 0
    with app.test_request_context("/"):
        for rule in app.url_map.iter_rules():
            view = app.view_functions[rule.endpoint]
            declared = cache_mod.declared_defaults(view)
            if not declared or "GET" not in rule.methods:
                continue
            path = rule.rule.replace("<cve_ent>", "07")
            assert "<" not in path, f"give {rule.rule} an example argument in this test"
            values = {k: (v() if callable(v) else v) for k, v in declared.items()}
            query = "&".join(f"{k}={v}" for k, v in values.items())
            bare, full = client.get(path), client.get(f"{path}?{query}")
            assert bare.status_code == full.status_code == 200, path
            assert _without_request_echo(bare.data) == _without_request_echo(full.data), path
            checked += 1
    assert checked >= 5


# -- LRU by bytes --------------------------------------------------------------------------------
def _entry(n: int) -> Entry:
    return Entry(200, (), b"x" * n, None, "e")


def test_lru_evicts_least_recently_used_by_bytes():
    size = _entry(1000).size
    lru = ResponseCache(max_bytes=2 * size + 10)
    lru.sync("v1")
    lru.put("a", _entry(1000))
    lru.put("b", _entry(1000))
    assert lru.get("a") is not None  # a is now the most recently used
    lru.put("c", _entry(1000))
    assert lru.get("b") is None and lru.get("a") is not None and lru.get("c") is not None
    s = lru.stats()
    assert s["entries"] == 2 and s["bytes"] == 2 * size and s["evictions"] == 1
    assert not lru.put("huge", _entry(10 * size))  # larger than the whole cache
    assert lru.stats()["entries"] == 2


def test_new_data_version_empties_the_cache():
    lru = ResponseCache(max_bytes=10**6)
    lru.sync("v1")
    lru.put("a", _entry(10))
    lru.sync("v1")
    assert lru.get("a") is not None
    lru.sync("v2")
    assert lru.get("a") is None and lru.stats()["resets"] == 1 and lru.stats()["bytes"] == 0


def test_zero_bytes_disables_the_cache(fake_dir):
    app = web_app(fake_dir, cache_bytes=0)
    calls = count_calls(app, "pages.metodologia")
    client = app.test_client()
    client.get("/metodologia")
    client.get("/metodologia")
    assert len(calls) == 2 and stats(app)["enabled"] is False and stats(app)["entries"] == 0


# -- what is never cached -----------------------------------------------------------------------
def test_session_cookie_private_and_errors_are_never_cached(fake_dir):
    app = web_app(fake_dir, cache_check_seconds=0)
    app.secret_key = "test"
    calls = []

    def route(name, make):
        def view():
            calls.append(name)
            return make()
        view.__name__ = name
        app.add_url_rule(f"/x/{name}", name, view)

    def with_cookie():
        r = Response("x" * 2000)
        r.set_cookie("who", "me")
        return r

    def private():
        r = Response("x" * 2000)
        r.headers["Cache-Control"] = "private, max-age=60"
        return r

    def no_store():
        r = Response("x" * 2000)
        r.headers["Cache-Control"] = "no-store"
        return r

    def signed_in():
        session["user"] = "inspector"
        return "hello inspector"

    def reads_session():
        return f"hello {session.get('user', 'nobody')}"

    def varies():
        return Response("x", headers={"Vary": "Cookie"})

    route("cookie", with_cookie)
    route("private", private)
    route("nostore", no_store)
    route("login", signed_in)
    route("reads", reads_session)
    route("varies", varies)
    route("missing", lambda: Response("gone", status=404))
    route("optout", lambda: "x" * 2000)
    cache_mod.no_cache(app.view_functions["optout"])
    route("plain", lambda: "same for everyone")
    for name in ("cookie", "private", "nostore", "login", "reads", "varies", "missing",
                 "optout", "plain"):
        client = app.test_client()  # anonymous: no session cookie yet
        for _ in range(2):
            client.get(f"/x/{name}")
    counts = {n: calls.count(n) for n in set(calls)}
    assert counts.pop("plain") == 1
    assert counts == {n: 2 for n in counts} and len(counts) == 8
    # A signed-in client (session cookie) is never served from, nor stored into, the cache.
    signed = app.test_client()
    signed.get("/x/login")
    before = calls.count("plain")
    assert signed.get("/x/plain").data == b"same for everyone"
    assert calls.count("plain") == before + 1
    # Nor is a client with Flask-Login's "remember me" cookie (even by the fast path).
    remembered = app.test_client()
    remembered.set_cookie("remember_token", "1|abc")
    for _ in range(2):
        remembered.get("/x/plain")
    assert calls.count("plain") == before + 3
    # ...and writes never are.
    assert client.post("/x/plain").status_code == 405


def test_views_with_their_own_etag_keep_their_answers(app):
    """The geometry endpoint keeps its layer in memory and answers If-None-Match with its own
    tag for both encodings: the cache must not replace that tag by another one."""
    client = app.test_client()
    plain = client.get("/api/v1/geometria/2020.topojson")
    zipped = client.get("/api/v1/geometria/2020.topojson", headers=GZ)
    assert plain.headers["ETag"] == zipped.headers["ETag"]
    assert stats(app)["stores"] == 0


def test_error_answers_are_not_cached(app):
    calls = count_calls(app, "api.municipio")
    client = app.test_client()
    for _ in range(2):
        assert client.get("/api/v1/ediciones/2023/municipios/99999").status_code == 404
    assert len(calls) == 2


# -- invalidation on publish, across workers ------------------------------------------------------
def _publish_2029(root):
    store = DataStore(root)
    edition = store.load_edition("2023")
    edition.name = "2029"
    edition.rows["edition"] = "2029"
    edition.card = dict(edition.card, edition="2029", year=2029)
    store.publish_edition(edition)


def test_new_edition_reaches_every_worker_without_restart(tmp_path):
    root = build_fake_atlas(tmp_path)
    workers = [web_app(root, cache_check_seconds=0) for _ in range(2)]  # one data directory
    clients = [w.test_client() for w in workers]
    for c in clients:
        for _ in range(3):  # stored, served from memory, then by the fast path
            assert "2029" not in c.get("/").get_data(as_text=True)
            assert c.get("/api/v1/ediciones").get_json()["latest"] == "2023"
    assert all(stats(w)["fast_hits"] >= 2 for w in workers)
    version = clients[0].get("/salud").get_json()["data_version"]
    _publish_2029(root)
    for c in clients:
        assert c.get("/api/v1/ediciones").get_json()["latest"] == "2029"
        assert 'value="2029"' in c.get("/").get_data(as_text=True)
    assert clients[1].get("/salud").get_json()["data_version"] != version
    assert all(stats(w)["resets"] == 1 for w in workers)


def test_data_version_ignores_the_services_own_files(tmp_path):
    root = build_fake_atlas(tmp_path)
    version = cache_mod.DataVersion(root, interval=0)
    before = version.current()
    (root / "geography" / "2020.web.topojson.gz").write_bytes(b"x")
    (root / "outcomes.sqlite").write_bytes(b"x")
    (root / ".demo.lock").write_bytes(b"")
    assert version.current() == before
    (root / "crosswalks" / "2020__2015.csv").write_text("cvegeo_from,cvegeo_to,share\n")
    assert version.current() != before


# -- /salud ---------------------------------------------------------------------------------------
def test_salud_reports_health_and_cache(app):
    client = app.test_client()
    client.get("/")
    client.get("/")
    response = client.get("/salud")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["status"] == "ok" and body["errors"] == []
    assert body["data_dir_readable"] is True
    assert body["editions"]["published"] == ["2017", "2023"]
    assert body["editions"]["latest"] == "2023" and "2023" in body["editions"]["loaded"]
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", body["version"])
    assert body["cache"]["hits"] >= 1 and body["cache"]["misses"] >= 1
    assert set(body["cache"]) >= {"hits", "misses", "entries", "bytes", "max_bytes", "evictions"}
    assert client.get("/salud").get_json()["cache"]["hits"] == body["cache"]["hits"]


def test_salud_503_without_editions_or_data(tmp_path):
    empty = web_app(tmp_path / "empty")
    response = empty.test_client().get("/salud")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "error" and body["data_dir_readable"] is False
    root = build_fake_atlas(tmp_path / "data")
    app = web_app(root)
    client = app.test_client()
    assert client.get("/salud").status_code == 200
    shutil.rmtree(root / "editions")
    body = client.get("/salud").get_json()
    assert body["status"] == "error" and "no edition" in body["errors"][0]
    assert client.get("/salud").status_code == 503


# -- warming before fork ------------------------------------------------------------------------
def test_warm_renders_the_main_answers_into_the_cache(fake_dir):
    app = web_app(fake_dir)
    done = cache_mod.warm(app)
    # the fake atlas keeps no census records, so the trend API honestly answers 400 there
    failed = {k: v for k, v in done.items() if v != 200}
    assert done and set(failed) <= {"/api/v1/tendencias [es]", "/api/v1/tendencias [en]"}, done
    for path in ("/", "/comparar", "/focalizacion", "/metodologia", "/descargas",
                 "/api/v1/ediciones", "/api/v1/geometria/2015.topojson"):
        assert f"{path} [es]" in done and f"{path} [en]" in done
    assert any(k.startswith("/municipio/") for k in done)
    calls = count_calls(app, "pages.comparar")
    hits = stats(app)["hits"]
    english = app.test_client().get("/comparar", headers={"Accept-Language": "en"})
    assert english.status_code == 200 and '<html lang="en">' in english.get_data(as_text=True)
    assert calls == [] and stats(app)["hits"] == hits + 1


def test_gunicorn_conf_warms_the_preloaded_app_before_forking(fake_dir):
    """gunicorn.conf.py's when_ready hook renders into the preloaded app and freezes it."""
    import gc
    import runpy
    from pathlib import Path
    from types import SimpleNamespace

    conf = runpy.run_path(str(Path(__file__).resolve().parent.parent / "gunicorn.conf.py"))
    assert conf["preload_app"] is True and conf["workers"] >= 2 and conf["threads"] >= 2
    assert "%(U)s" in conf["access_log_format"] and "%(r)s" not in conf["access_log_format"]
    app = web_app(fake_dir)
    logged = []
    server = SimpleNamespace(cfg=SimpleNamespace(preload_app=True),
                             app=SimpleNamespace(wsgi=lambda: app),
                             log=SimpleNamespace(info=lambda *a: logged.append(a)))
    try:
        conf["when_ready"](server)
    finally:
        gc.unfreeze()
    assert stats(app)["entries"] > 10
    assert logged and "server errors" not in logged[0][0] % logged[0][1:]


# -- concurrency ----------------------------------------------------------------------------------
def test_data_version_is_throttled(tmp_path):
    root = build_fake_atlas(tmp_path)
    slow = cache_mod.DataVersion(root, interval=3600)
    eager = cache_mod.DataVersion(root, interval=0)
    assert slow.current() == eager.current()
    (root / "crosswalks" / "2020__2015.csv").write_text("cvegeo_from,cvegeo_to,share\n")
    assert slow.current() != eager.current()  # the slow one has not looked again yet


def test_lru_accounting_under_threads():
    import threading

    lru = ResponseCache(max_bytes=50 * _entry(100).size)
    lru.sync("v")

    def work(k):
        for i in range(300):
            lru.put((k, i % 40), _entry(100 + i % 7))
            lru.get((k, (i * 7) % 40))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = lru.stats()
    assert s["bytes"] == sum(e.size for e in lru._entries.values()) <= lru.max_bytes
    assert s["hits"] + s["misses"] == 8 * 300 and s["stores"] == 8 * 300


def test_concurrent_misses_render_once(fake_dir):
    """Requests arriving while the same answer is being rendered wait for it."""
    import threading

    app = web_app(fake_dir, cache_check_seconds=0)
    started, go, calls = threading.Event(), threading.Event(), []

    def slow():
        calls.append(1)
        started.set()
        go.wait(30)
        return "x" * 5000

    app.add_url_rule("/x/slow", "slow", slow)
    results = []

    def ask():
        results.append(app.test_client().get("/x/slow").data)

    first = threading.Thread(target=ask)
    first.start()
    assert started.wait(30)
    others = [threading.Thread(target=ask) for _ in range(3)]
    for t in others:
        t.start()
    for _ in range(3000):  # until the three have missed and wait on the first rendering
        if stats(app)["misses"] == 4:
            break
        threading.Event().wait(0.01)
    go.set()
    for t in [first, *others]:
        t.join(30)
    assert len(calls) == 1 and results == [b"x" * 5000] * 4
