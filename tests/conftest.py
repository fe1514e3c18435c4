"""Shared fixtures: the real-data folder (skipped when absent) and one synthetic demo atlas.

The demo atlas is built once per test session (it takes well under a minute) into a temporary
folder; tests must treat it as read-only. Tests that need to write build their own data.
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
