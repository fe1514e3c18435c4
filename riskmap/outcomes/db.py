"""Database of inspection outcomes and users: tables, engine and migrations.

SQLite at ``<data dir>/riskmap.sqlite`` by default (nothing to set up); PostgreSQL (or any
SQLAlchemy URL) when the ``database_url`` setting (``RISKMAP_DATABASE_URL``) names one. The
schema is created and upgraded by the Alembic migrations shipped in
``riskmap/outcomes/migrations`` the first time a process opens the database.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from ..errors import ConfigError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_NAME = "riskmap.sqlite"

metadata = sa.MetaData()

users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
)

tokens = sa.Table(
    "api_tokens", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
)

visits = sa.Table(
    "visits", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("folio", sa.String(100), nullable=False, unique=True),
    sa.Column("cvegeo", sa.String(5), nullable=False, index=True),
    sa.Column("fecha", sa.Date, nullable=False, index=True),
    sa.Column("establecimientos", sa.Integer, nullable=False),
    sa.Column("nna_encontrados", sa.Integer, nullable=False),
    sa.Column("nna_peligroso", sa.Integer, nullable=False),
    sa.Column("sector", sa.String(2), nullable=True),
    sa.Column("notas", sa.Text, nullable=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("import_id", sa.Integer, sa.ForeignKey("audit.id"), nullable=True),
    sa.CheckConstraint("establecimientos >= 1", name="ck_visits_establecimientos"),
    sa.CheckConstraint("nna_encontrados >= 0", name="ck_visits_encontrados"),
    sa.CheckConstraint("nna_peligroso >= 0 AND nna_peligroso <= nna_encontrados",
                       name="ck_visits_peligroso"),
)

audit = sa.Table(
    "audit", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)

workplaces = sa.Table(
    "workplaces", metadata,
    sa.Column("cvegeo", sa.String(5), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    sa.CheckConstraint("count >= 1", name="ck_workplaces_count"),
)

login_failures = sa.Table(
    "login_failures", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_login_failures_key_at", "key", "at"),
)

worklists = sa.Table(
    "worklists", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("name", sa.String(80), nullable=False),
    sa.Column("query", sa.Text, nullable=False),
    sa.Column("edition", sa.String(64), nullable=False),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("user_id", "name", name="uq_worklists_user_name"),
)

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def database_url(settings: dict) -> str:
    """The database URL: the ``database_url`` setting, else SQLite in the data directory."""
    url = (settings.get("database_url") or "").strip()
    if url:
        return url
    path = Path(settings.get("data_dir") or "data").resolve() / SQLITE_NAME
    return f"sqlite:///{path}"


def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the one writer
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.close()


def _sqlite_begin(conn):
    # Writers take the lock at BEGIN, so concurrent imports queue instead of failing half-way
    # with "database is locked"; readers (WAL) never wait for them.
    immediate = conn.get_execution_options().get("riskmap_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def writing(engine: Engine) -> Engine:
    """``engine`` for a write transaction (on SQLite it locks at BEGIN)."""
    return engine.execution_options(riskmap_write=True)


def get_engine(url: str) -> Engine:
    """An engine for ``url`` whose schema is at the latest migration (one engine per URL).

    Raises
    ------
    ConfigError
        If the URL cannot be parsed or the database cannot be reached.
    """
    with _lock:
        engine = _engines.get(url)
        if engine is not None:
            return engine
        try:
            parsed = sa.engine.make_url(url)
        except sa.exc.ArgumentError as exc:
            raise ConfigError(f"database_url: not a database URL ({exc})") from None
        sqlite = parsed.get_backend_name() == "sqlite"
        if sqlite and parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs = {"connect_args": {"timeout": 60}} if sqlite else {"pool_pre_ping": True}
        engine = sa.create_engine(url, **kwargs)
        if sqlite:
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "connect",
                         lambda c, r: setattr(c, "isolation_level", None))
            event.listen(engine, "begin", _sqlite_begin)
        try:
            upgrade(engine)
        except sa.exc.OperationalError as exc:
            engine.dispose()
            raise ConfigError(f"database {parsed.render_as_string(hide_password=True)}: "
                              f"cannot be opened ({exc.orig})") from None
        _engines[url] = engine
        return engine


def upgrade(engine: Engine) -> None:
    """Run the Alembic migrations up to ``head`` (serialised across processes)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with writing(engine).begin() as conn, _migration_lock(engine, conn):
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@contextlib.contextmanager
def _migration_lock(engine: Engine, conn):
    if engine.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(804211)")
    # SQLite: BEGIN IMMEDIATE already holds the database's write lock.
    yield


def dispose_all() -> None:
    """Close every engine (tests, forks)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
