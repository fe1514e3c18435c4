"""Accounts on the web: login and logout, sessions, CSRF, bearer tokens, role checks.

Public pages and downloads need no login and never touch the session, so they stay
cacheable. Anything that reads the session or an ``Authorization`` header is answered with
``Cache-Control: private, no-store``. Forms carry a CSRF token (Flask-WTF); the JSON API
authenticates writes with ``Authorization: Bearer <token>`` only (no cookies, so no CSRF).
Passwords and tokens are never logged.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from flask import (Blueprint, current_app, g, redirect, render_template, request, session,
                   url_for)
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFProtect

from ..errors import RiskmapError
from ..outcomes import db, users

bp = Blueprint("auth", __name__)
csrf = CSRFProtect()
#: Endpoints that accept POST (the rest of the service is read-only).
WRITE_ENDPOINTS = {"auth.login", "auth.logout", "auth.desactivar", "outcomes.resultados",
                   "outcomes.establecimientos", "outcomes_api.importar", "auth.usuarios",
                   "auth.token", "worklists.guardar", "worklists.borrar",
                   "worklists_api.focalizaciones"}
SESSION_HOURS = 8


class Unauthorized(RiskmapError):
    status = 401
    exit_code = 2


class Forbidden(RiskmapError):
    status = 403
    exit_code = 2


def engine():
    """The outcomes database engine of this app (created and migrated on first use)."""
    return db.get_engine(db.database_url(current_app.config["RISKMAP"]))


def _secret_key(settings: dict) -> str:
    """The ``secret_key`` setting, else a random key kept in the data directory (mode 600),
    shared by every worker and kept across restarts."""
    if settings.get("secret_key"):
        return settings["secret_key"]
    path = Path(settings["data_dir"]) / ".riskmap_secret_key"
    if not path.parent.is_dir():
        # A missing data directory is not created by a read-only service starting up (the
        # health check reports it); with no data there is nothing to sign in to.
        return secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    except OSError:  # a read-only data directory: a per-process key (sessions per worker)
        return secrets.token_hex(32)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secrets.token_hex(32))
    return path.read_text(encoding="ascii").strip()


def init_app(app) -> None:
    """Sessions, CSRF and the private-response rule; register the login blueprint."""
    settings = app.config["RISKMAP"]
    app.config["SECRET_KEY"] = _secret_key(settings)
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=bool(settings["https"]),
                      SESSION_COOKIE_NAME="riskmap_session",
                      PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=SESSION_HOURS),
                      WTF_CSRF_TIME_LIMIT=SESSION_HOURS * 3600,
                      WTF_CSRF_SSL_STRICT=bool(settings["https"]),
                      MAX_CONTENT_LENGTH=10 * 1024 * 1024 + 256 * 1024)
    csrf.init_app(app)
    app.register_blueprint(bp)
    app.after_request(_private)


def _private(response):
    # Views that read the session or credentials set g.private (asking ``session.accessed``
    # would itself count as an access in Flask >= 3.1).
    if g.get("private"):
        response.headers["Cache-Control"] = "private, no-store"
        response.vary.add("Cookie")
        response.vary.add("Authorization")
        if response.status_code == 401 and request.path.startswith("/api/"):
            response.headers.setdefault("WWW-Authenticate", 'Bearer realm="riskmap"')
    return response


def current_user(bearer_only: bool = False) -> users.User | None:
    """The user of this request: a bearer token, else the session (``None`` if anonymous).

    Only requests that present credentials touch the session or the database. With
    ``bearer_only`` (the JSON API) a session cookie does not count: API writes carry no CSRF
    token, so a cookie alone must never authorise them.
    """
    if bearer_only:
        g.pop("user", None)
    elif "user" in g:
        return g.user
    user = None
    header = request.headers.get("Authorization", "")
    cookie = None if bearer_only else request.cookies.get(
        current_app.config["SESSION_COOKIE_NAME"])
    if header:
        g.private = True
        scheme, _sep, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            user = users.user_by_token(engine(), token.strip())
    elif cookie:
        g.private = True
        uid = session.get("uid")
        user = users.user_by_id(engine(), uid) if uid is not None else None
        if user is None and uid is not None:
            session.clear()
    g.user = user
    return user


def require(*roles: str, api: bool = False):
    """View decorator: a signed-in user with one of ``roles`` (any role when none given).

    Pages send anonymous visitors to the login form; the API answers 401 (with
    ``WWW-Authenticate: Bearer``) and a wrong role gets 403 on both.
    """
    def wrap(view):
        @functools.wraps(view)
        def inner(*args, **kwargs):
            g.private = True
            user = current_user(bearer_only=api)
            if user is None:
                if api:
                    raise Unauthorized("authentication required: send 'Authorization: Bearer "
                                       "<token>' (riskmap users token NAME)")
                return redirect(url_for("auth.login", siguiente=request.full_path))
            if roles and user.role not in roles:
                raise Forbidden(f"role {user.role!r} may not do this; needed: "
                                + " or ".join(roles))
            return view(*args, **kwargs)
        return inner
    return wrap


def _safe_next(target: str | None) -> str:
    """A local path to go to after login (never another host)."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") \
                and not target.startswith("//"):
            return target
    return url_for("outcomes.resultados")


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Sign in with a user name and password (10 failures in 15 minutes lock for 15)."""
    g.private = True
    message, status = None, 200
    if request.method == "POST":
        name = (request.form.get("usuario") or "").strip()[:64]
        password = request.form.get("contrasena") or ""
        keys = [f"user:{name.lower()}", f"ip:{request.remote_addr or '-'}"]
        until = users.throttled(engine(), keys)
        if until is not None:
            wait = max(1, int((until - users.now()).total_seconds()) + 1)
            from .errors import respond

            return respond(429, _("Demasiados intentos fallidos; espere %(m)s minutos.",
                                  m=(wait + 59) // 60), [f"retry_after: {wait} s"],
                           {"Retry-After": str(wait)})
        user = users.authenticate(engine(), name, password)
        if user is None:
            users.record_failure(engine(), keys)
            current_app.logger.warning("failed login for a user name from %s",
                                       request.remote_addr)
            message, status = _("Usuario o contraseña incorrectos."), 401
        else:
            session.clear()
            session.permanent = True
            session["uid"] = user.id
            current_app.logger.info("login: user id %s", user.id)
            return redirect(_safe_next(request.args.get("siguiente")))
    return render_template("login.html", message=message,
                           siguiente=request.args.get("siguiente", "")), status


@bp.post("/logout")
def logout():
    """End the session."""
    g.private = True
    session.clear()
    return redirect(url_for("pages.index"))


@bp.route("/usuarios", methods=["GET", "POST"])
@require("admin")
def usuarios():
    """Accounts (admins only): names, roles, state; the form adds an account."""
    errors, added, status = [], None, 200
    if request.method == "POST":
        name = (request.form.get("usuario") or "").strip()
        password = request.form.get("contrasena") or ""
        if password != (request.form.get("contrasena2") or ""):
            errors, status = [_("Las dos contraseñas no coinciden.")], 400
        else:
            try:
                added = users.add_user(engine(), name, request.form.get("rol") or "",
                                       password, actor=current_user().name).name
            except RiskmapError as exc:
                errors, status = [exc.message], exc.status
    return _accounts_page(errors=errors, added=added), status


def _accounts_page(**extra):
    return render_template("usuarios.html", accounts=users.list_users(engine()),
                           user=current_user(), roles=users.ROLES,
                           min_password=users.MIN_PASSWORD, **extra)


@bp.post("/usuarios/<name>/token")
@require("admin")
def token(name: str):
    """Issue a new API token for an account (revoking its earlier one); shown this once."""
    issued = users.issue_token(engine(), name, actor=current_user().name)
    return _accounts_page(token={"name": name, "value": issued})


@bp.post("/usuarios/<name>/desactivar")
@require("admin")
def desactivar(name: str):
    """Disable an account and revoke its tokens (admins only)."""
    users.disable_user(engine(), name, actor=current_user().name)
    return redirect(url_for("auth.usuarios"))
