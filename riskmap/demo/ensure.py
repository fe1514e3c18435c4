"""Build the synthetic demo into an empty data directory on first start of the service.

``riskmap serve`` and ``wsgi.py`` call :func:`ensure_demo` before they create the app, so that
a fresh checkout shows a map; the app factory itself never builds data (it is a view over the
data directory). ``gunicorn 'riskmap.web:create_app()'`` therefore serves the data directory
as it is; build the demo with ``riskmap demo`` first, or use ``wsgi.py``.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

from ..errors import InputError
from ..publish.store import DataStore
from .build import DEFAULT_SEED


def ensure_demo(data_dir, auto_demo: bool = True, seed: int = DEFAULT_SEED) -> bool:
    """Build the synthetic demo into ``data_dir`` if it holds no edition, once across processes.

    Several gunicorn workers start together; an exclusive ``fcntl`` lock on
    ``<data_dir>/.demo.lock`` makes the first build and the others wait, then find it built.
    A worker that starts while a build runs also waits, so it never serves half a demo.

    Parameters
    ----------
    data_dir : str or Path
    auto_demo : bool, default True
        The ``auto_demo`` setting; when false nothing is done.
    seed : int
        Seed of the demo (the ``demo_seed`` setting).

    Returns
    -------
    bool
        Whether this call built the demo.

    Raises
    ------
    InputError
        The data directory holds no edition and cannot be written.
    """
    if not auto_demo:
        return False
    store = DataStore(data_dir)
    root = Path(data_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock = open(root / ".demo.lock", "a")
    except OSError as exc:
        if store.edition_names():
            return False  # a read-only directory with published editions needs no demo
        raise InputError(f"cannot build the demo here ({exc.strerror or exc}); choose a "
                         "writable --data-dir, or set RISKMAP_AUTO_DEMO=0", file=root) from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if store.edition_names():
                return False
            from . import build_demo  # looked up at call time (tests replace it)

            build_demo(root, seed=seed)
            return True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_demo_from_settings(settings: dict) -> bool:
    """:func:`ensure_demo` with the ``data_dir``, ``auto_demo`` and ``demo_seed`` settings."""
    return ensure_demo(settings["data_dir"], settings["auto_demo"], settings["demo_seed"])
