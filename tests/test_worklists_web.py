"""Named worklists and account management on the web (SQLite and PostgreSQL): save, list,
reopen and delete one's own targeting plans; the worklist API; admins adding accounts and
issuing tokens. Login, CSRF, roles, escaping and private caching are checked on each."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from riskmap.outcomes import db, users
from riskmap.outcomes import worklists as store
from webdata import build_fake_atlas, web_app

PASSWORD = "inspector password 1"
ADMIN_PASSWORD = "admin password 12345"
SHAPE = {"ok", "status", "error", "errors"}
PLAN = "edicion=2023&visitas=50&estados=07&niveles=alto&niveles=medio&enviado=1"


@pytest.fixture(scope="module")
def atlas_dir(tmp_path_factory):
    return build_fake_atlas(tmp_path_factory.mktemp("worklists-web"))


@pytest.fixture
def app(atlas_dir, db_url):
    app = web_app(atlas_dir, database_url=db_url, secret_key="test-secret-key")
    engine = db.get_engine(db_url)
    users.add_user(engine, "ana", "inspector", PASSWORD)
    users.add_user(engine, "beto", "inspector", PASSWORD)
    users.add_user(engine, "root", "admin", ADMIN_PASSWORD)
    app.config["ENGINE"] = engine
    yield app
    db.dispose_all()


def csrf_of(client, path="/login") -> str:
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def signed_in(app, name="ana", password=PASSWORD):
    client = app.test_client()
    r = client.post("/login", data={"usuario": name, "contrasena": password,
                                    "csrf_token": csrf_of(client)})
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    return client


def save(client, name, query=PLAN):
    return client.post(f"/focalizacion/guardar?{query}",
                       data={"nombre": name, "csrf_token": csrf_of(client, "/focalizacion")})


def audit_actions(engine) -> list[str]:
    with engine.connect() as conn:
        return [a for (a,) in conn.execute(sa.select(db.audit.c.action)
                                           .order_by(db.audit.c.id))]


def check_shape(response, status):
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert set(body) == SHAPE and body["status"] == status
    return body


# -- the page ------------------------------------------------------------------------------
def test_the_save_form_shows_only_when_signed_in(app):
    anonymous = app.test_client().get(f"/focalizacion?{PLAN}")
    html = anonymous.get_data(as_text=True)
    assert anonymous.status_code == 200 and "data-save-worklist" not in html
    assert "csrf_token" not in html and "no-store" not in anonymous.headers.get(
        "Cache-Control", "") and "Set-Cookie" not in anonymous.headers
    client = signed_in(app)
    r = client.get(f"/focalizacion?{PLAN}")
    assert "data-save-worklist" in r.get_data(as_text=True)
    assert r.headers["Cache-Control"] == "private, no-store"


def test_anonymous_targeting_stays_in_the_response_cache(atlas_dir, db_url):
    """Anonymous repeats of /focalizacion are answered from the response cache; a signed-in
    user's page (with its form and CSRF token) is rendered each time and never stored."""
    import functools

    app = web_app(atlas_dir, database_url=db_url, secret_key="k", cache_check_seconds=0)
    users.add_user(db.get_engine(db_url), "ana", "inspector", PASSWORD)
    calls = []
    view = app.view_functions["pages.focalizacion"]

    @functools.wraps(view)
    def spy(*args, **kwargs):
        calls.append(1)
        return view(*args, **kwargs)

    app.view_functions["pages.focalizacion"] = spy
    anonymous = app.test_client()
    first, second = (anonymous.get(f"/focalizacion?{PLAN}") for _ in range(2))
    assert first.data == second.data and len(calls) == 1
    client = signed_in(app)
    pages = [client.get(f"/focalizacion?{PLAN}") for _ in range(2)]
    assert len(calls) == 3 and all("data-save-worklist" in p.get_data(as_text=True)
                                   for p in pages)
    assert "data-save-worklist" not in anonymous.get(f"/focalizacion?{PLAN}").get_data(
        as_text=True) and len(calls) == 3
    db.dispose_all()


def test_save_list_reopen_and_delete(app):
    engine = app.config["ENGINE"]
    client = signed_in(app)
    r = save(client, "  Chiapas alto y medio ")
    assert r.status_code == 302 and r.headers["Location"].endswith("/focalizacion/guardadas")
    page = client.get("/focalizacion/guardadas")
    assert page.headers["Cache-Control"] == "private, no-store"
    html = page.get_data(as_text=True)
    link = re.search(r'<a href="(/focalizacion\?[^"]+)">Chiapas alto y medio</a>', html)
    assert link, html
    # The link is the normalised permalink of the plan: same values, fixed order.
    href = link.group(1).replace("&amp;", "&")
    q = parse_qs(urlsplit(href).query)
    assert q["edicion"] == ["2023"] and q["visitas"] == ["50"] and q["estados"] == ["07"]
    assert q["niveles"] == ["alto", "medio"] and q["enviado"] == ["1"]
    assert q["criterio"] == ["conteo"] and q["enfriamiento"] == ["180"]
    # Reopening shows the same plan as the original query.
    anonymous = app.test_client()
    assert _worklist_rows(anonymous.get(href)) == _worklist_rows(anonymous.get(
        f"/focalizacion?{PLAN}")) != []
    (item,) = store.list_for(engine, users.authenticate(engine, "ana", PASSWORD))
    assert item["edition"] == "2023" and item["name"] == "Chiapas alto y medio"
    # The same name twice is refused (400, nothing stored twice).
    again = save(client, "Chiapas alto y medio")
    assert again.status_code == 400
    assert len(store.list_for(engine, users.authenticate(engine, "ana", PASSWORD))) == 1
    token = csrf_of(client, "/focalizacion/guardadas")
    r = client.post(f"/focalizacion/guardadas/{item['id']}/borrar", data={"csrf_token": token})
    assert r.status_code == 302
    assert "Chiapas alto y medio" not in client.get("/focalizacion/guardadas").get_data(
        as_text=True)
    assert audit_actions(engine)[-3:] == ["user_add", "worklist_save", "worklist_delete"]


def _worklist_rows(response) -> list[str]:
    assert response.status_code == 200
    return re.findall(r'/municipio/(\d{5})', response.get_data(as_text=True))


def test_bad_plans_and_names_are_refused(app):
    client = signed_in(app)
    for name in ("", "   ", "x" * 81, "a\x00b"):
        assert save(client, name).status_code == 400, repr(name)
    assert save(client, "ok", "visitas=0").status_code == 400
    assert save(client, "x" * 80).status_code == 302
    engine = app.config["ENGINE"]
    assert [w["name"] for w in store.list_for(
        engine, users.authenticate(engine, "ana", PASSWORD))] == ["x" * 80]


def test_csrf_and_anonymous_are_refused(app):
    engine = app.config["ENGINE"]
    anonymous = app.test_client()
    r = anonymous.post(f"/focalizacion/guardar?{PLAN}", data={"nombre": "a"})
    assert r.status_code in (302, 400)
    assert anonymous.get("/focalizacion/guardadas").status_code == 302
    client = signed_in(app)
    assert client.post(f"/focalizacion/guardar?{PLAN}", data={"nombre": "a"}).status_code == 400
    assert client.post(f"/focalizacion/guardar?{PLAN}",
                       data={"nombre": "a", "csrf_token": "forged"}).status_code == 400
    ana = users.authenticate(engine, "ana", PASSWORD)
    assert store.list_for(engine, ana) == []
    assert save(client, "a").status_code == 302
    (item,) = store.list_for(engine, ana)
    assert client.post(f"/focalizacion/guardadas/{item['id']}/borrar").status_code == 400
    assert len(store.list_for(engine, ana)) == 1


def test_another_users_worklist_is_neither_visible_nor_deletable(app):
    engine = app.config["ENGINE"]
    ana = signed_in(app)
    assert save(ana, "plan de ana").status_code == 302
    (item,) = store.list_for(engine, users.authenticate(engine, "ana", PASSWORD))
    beto = signed_in(app, "beto")
    assert "plan de ana" not in beto.get("/focalizacion/guardadas").get_data(as_text=True)
    token = csrf_of(beto, "/focalizacion")
    r = beto.post(f"/focalizacion/guardadas/{item['id']}/borrar", data={"csrf_token": token})
    assert r.status_code == 404
    assert len(store.list_for(engine, users.authenticate(engine, "ana", PASSWORD))) == 1
    # Both may use the same name: unique per user only.
    assert save(beto, "plan de ana").status_code == 302


def test_names_are_escaped(app):
    client = signed_in(app)
    evil = '<script>alert("x")</script>&'
    assert save(client, evil).status_code == 302
    html = client.get("/focalizacion/guardadas").get_data(as_text=True)
    assert evil not in html and "&lt;script&gt;alert(" in html


# -- the API -------------------------------------------------------------------------------
def test_api_saves_and_lists_with_a_bearer_token(app):
    engine = app.config["ENGINE"]
    client = app.test_client()
    auth = {"Authorization": "Bearer " + users.issue_token(engine, "ana")}
    r = client.post("/api/v1/focalizaciones", json={"nombre": "api", "consulta": "?" + PLAN},
                    headers=auth)
    assert r.status_code == 201, r.get_data(as_text=True)
    data = r.get_json()["data"]
    assert data["nombre"] == "api" and data["edicion"] == "2023"
    assert data["enlace"].startswith("/focalizacion?") and "visitas=50" in data["consulta"]
    assert r.headers["Cache-Control"] == "private, no-store"
    listed = client.get("/api/v1/focalizaciones", headers=auth)
    assert listed.headers["Cache-Control"] == "private, no-store"
    assert [w["id"] for w in listed.get_json()["data"]] == [data["id"]]
    other = {"Authorization": "Bearer " + users.issue_token(engine, "beto")}
    assert client.get("/api/v1/focalizaciones", headers=other).get_json()["data"] == []
    # Same name again, bad plans, bad bodies: 400 in the one error shape.
    for body in ({"nombre": "api", "consulta": PLAN}, {"nombre": "b", "consulta": "visitas=-1"},
                 {"nombre": "", "consulta": PLAN}, {"nombre": "b", "consulta": 3}, [1]):
        check_shape(client.post("/api/v1/focalizaciones", json=body, headers=auth), 400)
    check_shape(client.post("/api/v1/focalizaciones", data="no json", headers=auth), 400)


def test_api_refuses_anonymous_and_wrong_credentials(app):
    engine = app.config["ENGINE"]
    client = app.test_client()
    for method in ("get", "post"):
        r = getattr(client, method)("/api/v1/focalizaciones", json={"nombre": "a",
                                                                    "consulta": PLAN})
        check_shape(r, 401)
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        r = getattr(client, method)("/api/v1/focalizaciones", headers={
            "Authorization": "Bearer rmk_wrong"}, json={"nombre": "a", "consulta": PLAN})
        check_shape(r, 401)
    # A session cookie alone does not authorise the API.
    session_client = signed_in(app)
    check_shape(session_client.post("/api/v1/focalizaciones",
                                    json={"nombre": "a", "consulta": PLAN}), 401)
    assert store.list_for(engine, users.authenticate(engine, "ana", PASSWORD)) == []


def test_api_refuses_a_role_outside_inspector_and_admin(app):
    engine = app.config["ENGINE"]
    with db.writing(engine).begin() as conn:  # a role a later version might add
        conn.execute(db.users.update().where(db.users.c.name == "beto").values(role="lector"))
    auth = {"Authorization": "Bearer " + users.issue_token(engine, "beto")}
    client = app.test_client()
    check_shape(client.get("/api/v1/focalizaciones", headers=auth), 403)
    check_shape(client.post("/api/v1/focalizaciones", headers=auth,
                            json={"nombre": "a", "consulta": PLAN}), 403)


# -- accounts ------------------------------------------------------------------------------
def add_form(client, **fields):
    data = {"usuario": "carla", "rol": "inspector", "contrasena": "carla password 1",
            "contrasena2": "carla password 1", "csrf_token": csrf_of(client, "/usuarios")}
    data.update(fields)
    return client.post("/usuarios", data=data)


def test_admin_adds_an_account_that_can_sign_in(app):
    engine = app.config["ENGINE"]
    admin = signed_in(app, "root", ADMIN_PASSWORD)
    r = add_form(admin)
    assert r.status_code == 200 and "data-added" in r.get_data(as_text=True)
    assert r.headers["Cache-Control"] == "private, no-store"
    carla = users.authenticate(engine, "carla", "carla password 1")
    assert carla is not None and carla.role == "inspector"
    with engine.connect() as conn:
        stored = conn.execute(sa.select(db.users.c.password_hash)
                              .where(db.users.c.name == "carla")).scalar()
    assert stored.startswith("$argon2id$") and "carla password 1" not in stored
    assert audit_actions(engine)[-1] == "user_add"
    signed_in(app, "carla", "carla password 1")
    # Mismatch, short password, bad name, bad role, taken name: 400 and nothing added.
    for fields in ({"usuario": "d1", "contrasena2": "other password 1"},
                   {"usuario": "d2", "contrasena": "short", "contrasena2": "short"},
                   {"usuario": "<b>x</b>"}, {"usuario": "d3", "rol": "root"}, {}):
        r = add_form(admin, **fields)
        assert r.status_code == 400 and "data-errors" in r.get_data(as_text=True), fields
        assert "<b>x</b>" not in r.get_data(as_text=True)
    assert [u["name"] for u in users.list_users(engine)] == ["ana", "beto", "carla", "root"]


def test_admin_issues_a_token_shown_once(app):
    engine = app.config["ENGINE"]
    admin = signed_in(app, "root", ADMIN_PASSWORD)
    r = admin.post("/usuarios/ana/token", data={"csrf_token": csrf_of(admin, "/usuarios")})
    assert r.status_code == 200 and r.headers["Cache-Control"] == "private, no-store"
    token = re.search(r"<code>(rmk_[A-Za-z0-9_-]+)</code>", r.get_data(as_text=True)).group(1)
    assert users.user_by_token(engine, token).name == "ana"
    assert token not in admin.get("/usuarios").get_data(as_text=True)
    listed = app.test_client().get("/api/v1/focalizaciones",
                                   headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200
    # A second token revokes the first.
    admin.post("/usuarios/ana/token", data={"csrf_token": csrf_of(admin, "/usuarios")})
    assert users.user_by_token(engine, token) is None


def test_account_forms_refuse_inspectors_anonymous_and_missing_csrf(app):
    engine = app.config["ENGINE"]
    anonymous = app.test_client()
    r = anonymous.post("/usuarios", data={"usuario": "eva", "rol": "admin",
                                          "contrasena": "x" * 12, "contrasena2": "x" * 12})
    assert r.status_code in (302, 400)
    assert anonymous.post("/usuarios/ana/token").status_code in (302, 400)
    inspector = signed_in(app)
    token = csrf_of(inspector, "/focalizacion")
    r = inspector.post("/usuarios", data={"usuario": "eva", "rol": "admin",
                                          "contrasena": "x" * 12, "contrasena2": "x" * 12,
                                          "csrf_token": token})
    assert r.status_code == 403
    assert inspector.post("/usuarios/ana/token", data={"csrf_token": token}).status_code == 403
    admin = signed_in(app, "root", ADMIN_PASSWORD)
    assert admin.post("/usuarios", data={"usuario": "eva", "rol": "admin",
                                         "contrasena": "x" * 12,
                                         "contrasena2": "x" * 12}).status_code == 400
    assert admin.post("/usuarios/ana/token").status_code == 400
    assert "eva" not in [u["name"] for u in users.list_users(engine)]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.tokens)).scalar() == 0
