"""Shared fixtures: the real-data folder (skipped when absent), one synthetic demo atlas and
one small fake atlas (tests/webdata.py) with its Atlas, web app and client.

The demo and fake atlases are built once per test session into temporary folders; tests must
treat them, and the session's ``atlas`` and ``app``, as read-only. Tests that need to write
build their own data; a module that needs other settings overrides ``app`` with
``webdata.web_app(fake_dir, ...)``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MX_DIR = Path(os.environ.get("RISKMAP_MX_DIR", ROOT.parent / "shared" / "data" / "mx"))
DEMO_SEED = 20240601


@pytest.fixture(scope="session")
def mx_dir() -> Path:
    """The real Mexican reference data (../shared/data/mx); skip when the folder is absent."""
    if not (MX_DIR / "municipios_2020.geojson").exists():
        pytest.skip(f"real reference data not available ({MX_DIR.name} folder absent)")
    return MX_DIR


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """A data directory holding the full synthetic demo atlas (read-only for tests)."""
    from riskmap.demo import build_demo

    path = tmp_path_factory.mktemp("demo-atlas")
    build_demo(path, seed=DEMO_SEED)
    return path


@pytest.fixture(scope="session")
def demo_store(demo_dir):
    from riskmap.publish.store import DataStore

    return DataStore(demo_dir)


@pytest.fixture(scope="session")
def fake_dir(tmp_path_factory) -> Path:
    """The small web-test data directory of :func:`webdata.build_fake_atlas` (read-only)."""
    from webdata import build_fake_atlas

    return build_fake_atlas(tmp_path_factory.mktemp("fake-atlas"))


@pytest.fixture(scope="session")
def atlas(fake_dir):
    """An :class:`~riskmap.web.atlas.Atlas` over :func:`fake_dir`."""
    from riskmap.web.atlas import Atlas

    return Atlas(fake_dir)


@pytest.fixture(scope="session")
def app(fake_dir):
    """The web application over :func:`fake_dir` (testing mode, no demo build)."""
    from webdata import web_app

    return web_app(fake_dir)


@pytest.fixture()
def client(app):
    """A test client of ``app`` (a fresh one per test: cookies do not leak)."""
    return app.test_client()


@pytest.fixture(scope="session")
def imported_dir(tmp_path_factory) -> Path:
    """The fake atlas with edition 2023 imported (no factors, no standard errors; read-only)."""
    from webdata import build_fake_atlas

    return build_fake_atlas(tmp_path_factory.mktemp("imported-atlas"), imported_2023=True)


@pytest.fixture(scope="session")
def imported_app(imported_dir):
    """The web application over :func:`imported_dir`."""
    from webdata import web_app

    return web_app(imported_dir)


# -- inspection outcomes: every database test runs on SQLite and on PostgreSQL ------------------
# Read once and removed from the environment: it is a test variable, not a riskmap setting
# (the settings table refuses unknown RISKMAP_* names).
_POSTGRES_URL = os.environ.pop("RISKMAP_TEST_DATABASE_URL", "") or None


def _postgres_url() -> str | None:
    return _POSTGRES_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """An empty outcomes database: SQLite in tmp_path, or the PostgreSQL server named by
    RISKMAP_TEST_DATABASE_URL (skipped when unset; .ci/postgres.sh starts one)."""
    from outcome_helpers import reset_database

    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'riskmap.sqlite'}"
    url = _postgres_url()
    if not url:
        pytest.skip("no PostgreSQL server (set RISKMAP_TEST_DATABASE_URL; see .ci/postgres.sh)")
    reset_database(url)
    return url
