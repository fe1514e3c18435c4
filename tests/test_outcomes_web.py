"""Outcomes on the web (SQLite and PostgreSQL): login, roles, CSRF, throttling, bearer
tokens, uploads, escaping, private caching, and the λ the targeting page uses."""

from __future__ import annotations

import io
import logging
import re

import pytest

from outcome_helpers import csv_bytes, visit_rows, xlsx_bytes
from riskmap.outcomes import db, users, visits
from webdata import build_fake_atlas, web_app

PASSWORD = "inspector password 1"
ADMIN_PASSWORD = "admin password 12345"
SHAPE = {"ok", "status", "error", "errors"}
CODES = ("22001", "22002", "07001", "12003")


@pytest.fixture(scope="module")
def atlas_dir(tmp_path_factory):
    return build_fake_atlas(tmp_path_factory.mktemp("outcomes-web"))


@pytest.fixture
def app(atlas_dir, db_url, tmp_path):
    app = web_app(atlas_dir, database_url=db_url, secret_key="test-secret-key")
    engine = db.get_engine(db_url)
    users.add_user(engine, "ana", "inspector", PASSWORD)
    users.add_user(engine, "root", "admin", ADMIN_PASSWORD)
    app.config["ENGINE"] = engine
    yield app
    db.dispose_all()


@pytest.fixture
def client(app):
    return app.test_client()


def csrf_of(client, path="/login") -> str:
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def login(client, name="ana", password=PASSWORD):
    token = csrf_of(client)
    return client.post("/login", data={"usuario": name, "contrasena": password,
                                       "csrf_token": token})


def rows(n=40, **kw):
    return visit_rows(n, codes=CODES, **kw)


def check_shape(response, status):
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert set(body) == SHAPE and body["status"] == status
    return body


def test_public_pages_stay_public_and_cacheable(client):
    for path in ("/", "/focalizacion", "/metodologia", "/api/v1/focalizacion"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert "no-store" not in r.headers.get("Cache-Control", ""), path
        assert "Set-Cookie" not in r.headers, path


def test_login_required_pages_redirect_and_are_private(client):
    r = client.get("/resultados")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert login(client).status_code == 302
    r = client.get("/resultados")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "private, no-store"
    cookie = client.get_cookie("riskmap_session")
    assert cookie.http_only and cookie.same_site == "Lax" and not cookie.secure
    # Signed in, the targeting page depends on the session: private too.
    assert client.get("/focalizacion").headers["Cache-Control"] == "private, no-store"


def test_secure_cookie_when_https(atlas_dir, db_url):
    app = web_app(atlas_dir, database_url=db_url, secret_key="k", https=True)
    users.add_user(db.get_engine(db_url), "ana", "inspector", PASSWORD)
    client = app.test_client()
    login(client)
    assert client.get_cookie("riskmap_session").secure


def test_wrong_password_then_throttled(client, caplog):
    with caplog.at_level(logging.DEBUG):
        for _ in range(10):
            r = login(client, password="wrong password here")
            assert r.status_code == 401
        r = login(client)  # even the right password now waits
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 800
    assert "wrong password here" not in caplog.text and PASSWORD not in caplog.text


def test_throttle_per_ip_across_accounts(client):
    for i in range(10):
        assert login(client, name=f"user{i}", password="nope nope nope").status_code == 401
    assert login(client).status_code == 429


def test_form_without_csrf_is_refused(client):
    r = client.post("/login", data={"usuario": "ana", "contrasena": PASSWORD})
    assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)
    login(client)
    r = client.post("/resultados", data={"archivo": (io.BytesIO(csv_bytes(rows())), "a.csv")},
                    content_type="multipart/form-data")
    assert r.status_code == 400
    assert visits.count(client.application.config["ENGINE"]) == 0
    r = client.post("/logout")
    assert r.status_code == 400


def test_upload_form_imports_and_lists_bad_rows(client, app):
    login(client)
    token = csrf_of(client, "/resultados")
    r = client.post("/resultados", data={"csrf_token": token,
                                         "archivo": (io.BytesIO(xlsx_bytes(rows())), "a.xlsx")},
                    content_type="multipart/form-data")
    assert r.status_code == 200 and 'data-import="ok"' in r.get_data(as_text=True)
    assert visits.count(app.config["ENGINE"]) == 40
    bad = rows(5, start=100)
    bad.loc[1, "cvegeo"] = "99999"
    r = client.post("/resultados", data={"csrf_token": token,
                                         "archivo": (io.BytesIO(csv_bytes(bad)), "b.csv")},
                    content_type="multipart/form-data")
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and "b.csv, row 3, column &#39;cvegeo&#39;" in html
    assert visits.count(app.config["ENGINE"]) == 40


def test_hostile_strings_are_rendered_escaped(client, app):
    hostile = rows(3)
    hostile.loc[0, "folio"] = "<script>alert('f')</script>"
    hostile.loc[1, "notas"] = "=cmd|' /C calc'!A0 <img src=x onerror=alert(1)>"
    visits.import_bytes(app.config["ENGINE"], csv_bytes(hostile), "h.csv", "ana")
    login(client)
    token = csrf_of(client, "/resultados")
    bad = hostile.copy()
    bad["nna_encontrados"] = "<b>x</b>"
    r = client.post("/resultados", data={"csrf_token": token,
                                         "archivo": (io.BytesIO(csv_bytes(bad)), "<i>.csv")},
                    content_type="multipart/form-data")
    html = r.get_data(as_text=True)
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "<i>.csv" not in html
    exported = client.get("/resultados.csv").get_data(as_text=True)
    assert "'=cmd|' /C calc'!A0" in exported
    assert "<script>alert('f')</script>" in exported  # CSV is data, served as text/csv


# -- API -------------------------------------------------------------------------------------
WRITES = [("post", "/api/v1/resultados"), ("post", "/resultados"), ("post", "/logout"),
          ("post", "/usuarios/ana/desactivar")]


@pytest.mark.parametrize("method, path", WRITES)
def test_every_write_route_refuses_anonymous_callers(client, app, method, path):
    r = getattr(client, method)(path, data=csv_bytes(rows()), content_type="text/csv")
    assert r.status_code in (302, 400, 401)  # login redirect, CSRF refusal, or 401
    assert visits.count(app.config["ENGINE"]) == 0
    assert all(not u["disabled"] for u in users.list_users(app.config["ENGINE"]))


def test_api_write_needs_a_bearer_token(client, app):
    body = check_shape(client.post("/api/v1/resultados", data=csv_bytes(rows()),
                                   content_type="text/csv"), 401)
    assert "Bearer" in body["error"]
    check_shape(client.post("/api/v1/resultados", data=csv_bytes(rows()),
                            headers={"Authorization": "Bearer rmk_not_a_token"},
                            content_type="text/csv"), 401)
    login(client)  # a browser session is not enough for the API (no CSRF on the API)
    check_shape(client.post("/api/v1/resultados", data=csv_bytes(rows()),
                            content_type="text/csv"), 401)
    assert visits.count(app.config["ENGINE"]) == 0


def test_api_import_with_token(client, app):
    token = users.issue_token(app.config["ENGINE"], "ana")
    auth = {"Authorization": f"Bearer {token}"}
    r = client.post("/api/v1/resultados?nombre=v.csv", data=csv_bytes(rows()), headers=auth,
                    content_type="text/csv")
    assert r.status_code == 201 and r.get_json()["data"]["inserted"] == 40
    assert r.headers["Cache-Control"] == "private, no-store"
    r = client.post("/api/v1/resultados", data={"archivo": (io.BytesIO(xlsx_bytes(rows())),
                                                            "v.xlsx")},
                    headers=auth, content_type="multipart/form-data")
    assert r.status_code == 200 and r.get_json()["data"]["unchanged"] == 40
    changed = rows()
    changed.loc[3, "nna_peligroso"] = 0
    body = check_shape(client.post("/api/v1/resultados", data=csv_bytes(changed),
                                   headers=auth, content_type="text/csv"), 400)
    assert "conflicting folio" in body["error"] and "F0000003" in body["errors"][0]
    big = client.post("/api/v1/resultados", data=b"x" * (11 * 1024 * 1024), headers=auth,
                      content_type="text/csv")
    check_shape(big, 413)
    summary = client.get("/api/v1/resultados/resumen?edicion=2023", headers=auth)
    assert summary.status_code == 200 and summary.get_json()["data"]["n_visits"] == 40


def test_wrong_role_is_403(client, app):
    token = users.issue_token(app.config["ENGINE"], "ana")
    login(client)
    r = client.get("/usuarios")
    assert r.status_code == 403
    token_form = {"csrf_token": csrf_of(client, "/resultados")}
    r = client.post("/usuarios/root/desactivar", data=token_form)
    assert r.status_code == 403
    assert all(not u["disabled"] for u in users.list_users(app.config["ENGINE"]))
    admin = app.test_client()
    login(admin, "root", ADMIN_PASSWORD)
    r = admin.post("/usuarios/ana/desactivar", data={"csrf_token": csrf_of(admin, "/usuarios")})
    assert r.status_code == 302
    # A disabled account: its session and its token stop working at the next request.
    assert client.get("/resultados").status_code == 302
    check_shape(client.post("/api/v1/resultados", data=b"x",
                            headers={"Authorization": f"Bearer {token}"}), 401)


def test_summary_requires_login(client):
    check_shape(client.get("/api/v1/resultados/resumen"), 401)


def test_targeting_uses_estimated_lambda_and_cooldown(client, app):
    before = client.get("/api/v1/focalizacion?visitas=10").get_json()["units"]
    assert before["lambda"] == {"value": 0.5, "source": "default"}
    html = client.get("/focalizacion").get_data(as_text=True)
    assert 'data-lambda-source="default"' in html and "supuesto por defecto" in html
    import datetime as dt
    recent = rows(60, when=dt.date.today())
    recent["fecha"] = dt.date.today().isoformat()
    visits.import_bytes(app.config["ENGINE"], csv_bytes(recent), "r.csv", "ana")
    after = client.get("/api/v1/focalizacion?visitas=10").get_json()["units"]
    assert after["lambda"]["source"] == "estimated" and after["cooldown_applied"] is False
    assert 'data-lambda-source="estimated"' in client.get("/focalizacion").get_data(as_text=True)
    token = users.issue_token(app.config["ENGINE"], "ana")
    auth = {"Authorization": f"Bearer {token}"}
    body = client.get("/api/v1/focalizacion?visitas=200&niveles=alto,medio,bajo",
                      headers=auth).get_json()
    assert body["units"]["cooldown_applied"] and body["units"]["excluded_recently_visited"] == 4
    assert not set(CODES) & {r["cvegeo"] for r in body["data"]}
    body = client.get("/api/v1/focalizacion?visitas=200&niveles=alto,medio,bajo&recientes=1",
                      headers=auth).get_json()
    assert not body["units"]["cooldown_applied"]


def test_resultados_page_shows_validation(client, app):
    visits.import_bytes(app.config["ENGINE"], csv_bytes(rows(200)), "v.csv", "ana")
    login(client)
    html = client.get("/resultados?edicion=2023").get_data(as_text=True)
    assert "data-lambda" in html and "<svg" in html and "AUC" in html
    assert client.get("/resultados?edicion=2023&lang=en").status_code == 200


def test_public_targeting_works_without_a_usable_database(atlas_dir):
    app = web_app(atlas_dir, database_url="postgresql+psycopg://nobody@127.0.0.1:1/none",
                  secret_key="k")
    body = app.test_client().get("/api/v1/focalizacion?visitas=20").get_json()
    assert body["ok"] and body["units"]["lambda"] == {"value": 0.5, "source": "default"}


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "javascript:x"])
def test_login_never_redirects_to_another_host(client, target):
    token = csrf_of(client)
    r = client.post("/login", query_string={"siguiente": target},
                    data={"usuario": "ana", "contrasena": PASSWORD, "csrf_token": token})
    assert r.status_code == 302 and r.headers["Location"].endswith("/resultados")


def test_admin_uploads_the_workplace_table_targeting_uses(client, app, atlas_dir):
    from riskmap.publish.store import DataStore

    codes = DataStore(atlas_dir).load_edition("2023").rows["cvegeo"].astype(str)
    table = ("cvegeo,count\n" + "".join(f"{c},2\n" for c in codes)).encode()
    login(client)  # an inspector may not
    token = csrf_of(client, "/resultados")
    r = client.post("/resultados/establecimientos",
                    data={"csrf_token": token, "archivo": (io.BytesIO(table), "k.csv")},
                    content_type="multipart/form-data")
    assert r.status_code == 403 and visits.stored_workplaces(app.config["ENGINE"]) is None
    admin = app.test_client()
    login(admin, "root", ADMIN_PASSWORD)
    token = csrf_of(admin, "/resultados")
    r = admin.post("/resultados/establecimientos", content_type="multipart/form-data",
                   data={"csrf_token": token, "archivo": (io.BytesIO(table), "k.csv")})
    assert r.status_code == 302
    body = client.get("/api/v1/focalizacion?visitas=100&niveles=alto,medio,bajo").get_json()
    assert body["units"]["workplaces"] == "table"
    # Two workplaces everywhere: no municipality gets a third visit.
    assert body["data"] and all(r["workplaces"] == 2 and r["visits"] <= 2 for r in body["data"])
    assert sum(r["visits"] for r in body["data"]) < 100
    bad = admin.post("/resultados/establecimientos", content_type="multipart/form-data",
                     data={"csrf_token": token,
                           "archivo": (io.BytesIO(b"cvegeo,count\n22001,x\n"), "bad.csv")})
    assert bad.status_code == 400 and "bad.csv" in bad.get_data(as_text=True)
