"""User accounts, roles, API tokens and login throttling.

Passwords are hashed with Argon2id (``argon2-cffi``, memory-hard); API tokens are random
(32 bytes) and only their SHA-256 is stored, so a stolen database yields neither. Failed logins
are counted per account and per client address in the database, so every worker of the
service sees the same counts: :data:`MAX_FAILURES` within :data:`WINDOW` locks that key until
the window passes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..errors import BadParameter, InputError, NotFound
from .db import audit, login_failures, tokens, users, writing

ROLES = ("inspector", "admin")
MAX_FAILURES = 10
WINDOW = dt.timedelta(minutes=15)
MIN_PASSWORD = 10
_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
_hasher = PasswordHasher()
_DUMMY = _hasher.hash("riskmap-dummy-password")  # equal work for unknown names


@dataclass(frozen=True)
class User:
    """An active account as the service sees it (never the hash)."""

    id: int
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def record_audit(conn, actor: str, action: str, **detail) -> int:
    """Append one audit row (who, what, when) in the caller's transaction; return its id."""
    result = conn.execute(audit.insert().values(
        at=now(), actor=actor, action=action,
        detail=json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)))
    return int(result.inserted_primary_key[0])


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise BadParameter("name", name, message=f"invalid user name {name!r}: 1-64 letters, "
                           "digits or . _ @ -")
    return name


def add_user(engine, name: str, role: str, password: str, actor: str = "cli") -> User:
    """Create an account.

    Raises
    ------
    BadParameter
        Bad name or role, or a password shorter than :data:`MIN_PASSWORD` characters.
    InputError
        The name is taken.
    """
    check_name(name)
    if role not in ROLES:
        raise BadParameter("role", role, ROLES)
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise BadParameter("password", "***", message=f"the password needs at least "
                           f"{MIN_PASSWORD} characters")
    digest = _hasher.hash(password)
    with writing(engine).begin() as conn:
        if conn.execute(sa.select(users.c.id).where(users.c.name == name)).first():
            raise InputError(f"user {name!r} already exists")
        uid = conn.execute(users.insert().values(
            name=name, role=role, password_hash=digest, disabled=False, created=now())
        ).inserted_primary_key[0]
        record_audit(conn, actor, "user_add", user=name, role=role)
    return User(int(uid), name, role)


def list_users(engine) -> list[dict]:
    """Every account: name, role, disabled, created (no hashes)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(users.c.name, users.c.role, users.c.disabled,
                                      users.c.created).order_by(users.c.name)).mappings()
        return [dict(r) for r in rows]


def disable_user(engine, name: str, actor: str = "cli") -> None:
    """Disable an account and revoke its API tokens (sessions stop at their next request)."""
    with writing(engine).begin() as conn:
        uid = _user_id(conn, name)
        conn.execute(users.update().where(users.c.id == uid).values(disabled=True))
        conn.execute(tokens.delete().where(tokens.c.user_id == uid))
        record_audit(conn, actor, "user_disable", user=name)


def issue_token(engine, name: str, actor: str = "cli") -> str:
    """Create a new API token for ``name`` (revoking earlier ones); return it once."""
    token = "rmk_" + secrets.token_urlsafe(32)
    with writing(engine).begin() as conn:
        uid = _user_id(conn, name)
        conn.execute(tokens.delete().where(tokens.c.user_id == uid))
        conn.execute(tokens.insert().values(user_id=uid, token_hash=_token_hash(token),
                                            created=now()))
        record_audit(conn, actor, "token_issue", user=name)
    return token


def _user_id(conn, name: str) -> int:
    row = conn.execute(sa.select(users.c.id).where(users.c.name == name)).first()
    if row is None:
        raise NotFound(f"no user named {name!r}")
    return int(row[0])


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def authenticate(engine, name: str, password: str) -> User | None:
    """The active user whose password matches, else ``None`` (same work either way)."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(users).where(users.c.name == str(name)[:64])).first()
    stored = row.password_hash if row is not None else _DUMMY
    try:
        ok = _hasher.verify(stored, str(password))
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or row is None or row.disabled:
        return None
    if _hasher.check_needs_rehash(stored):
        with writing(engine).begin() as conn:
            conn.execute(users.update().where(users.c.id == row.id)
                         .values(password_hash=_hasher.hash(str(password))))
    return User(int(row.id), row.name, row.role)


def user_by_id(engine, uid) -> User | None:
    """The active user with this id, else ``None`` (a disabled account is logged out)."""
    try:
        uid = int(uid)
    except (TypeError, ValueError):
        return None
    with engine.connect() as conn:
        row = conn.execute(sa.select(users).where(users.c.id == uid)).first()
    if row is None or row.disabled:
        return None
    return User(int(row.id), row.name, row.role)


def user_by_token(engine, token: str) -> User | None:
    """The active user holding API token ``token``, else ``None``."""
    if not token:
        return None
    with engine.connect() as conn:
        row = conn.execute(sa.select(users).join(tokens, tokens.c.user_id == users.c.id)
                           .where(tokens.c.token_hash == _token_hash(token))).first()
    if row is None or row.disabled:
        return None
    return User(int(row.id), row.name, row.role)


# -- login throttling ----------------------------------------------------------------------
def throttled(engine, keys, at: dt.datetime | None = None) -> dt.datetime | None:
    """When the first of ``keys`` locked by too many failures unlocks, or ``None``.

    Parameters
    ----------
    keys : iterable of str
        E.g. ``["user:ana", "ip:10.0.0.7"]``.
    """
    at = at or now()
    since = at - WINDOW
    with engine.connect() as conn:
        for key in keys:
            times = [t for (t,) in conn.execute(
                sa.select(login_failures.c.at).where(login_failures.c.key == key,
                                                     login_failures.c.at > since)
                .order_by(login_failures.c.at.desc()).limit(MAX_FAILURES))]
            if len(times) >= MAX_FAILURES:
                oldest = min(_aware(t) for t in times)
                return oldest + WINDOW
    return None


def record_failure(engine, keys, at: dt.datetime | None = None) -> None:
    """Count one failed login against each key (and forget failures older than the window)."""
    at = at or now()
    with writing(engine).begin() as conn:
        conn.execute(login_failures.insert(), [{"key": k[:200], "at": at} for k in keys])
        conn.execute(login_failures.delete().where(login_failures.c.at < at - 2 * WINDOW))


def _aware(t: dt.datetime) -> dt.datetime:
    # SQLite returns naive datetimes (stored as UTC).
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)
