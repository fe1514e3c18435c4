"""The demo is built on first start by `riskmap serve` and wsgi.py, never by the app factory;
once across processes (an fcntl lock), and only when the auto_demo setting is on."""

from __future__ import annotations

import threading

import pytest

from riskmap.demo.ensure import ensure_demo
from riskmap.publish.store import DataStore

from webdata import build_fake_atlas


def test_ensure_demo_builds_demo_once_across_workers(tmp_path, monkeypatch):
    import riskmap.demo

    calls = []

    def fake_build(path, seed):
        calls.append(seed)
        build_fake_atlas(path)

    monkeypatch.setattr(riskmap.demo, "build_demo", fake_build, raising=False)
    threads = [threading.Thread(target=ensure_demo, args=(tmp_path, True, 5)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [5]
    assert DataStore(tmp_path).edition_names() == ["2017", "2023"]


def test_ensure_demo_respects_auto_demo_off(tmp_path, monkeypatch):
    import riskmap.demo

    monkeypatch.setattr(riskmap.demo, "build_demo", lambda *a, **k: pytest.fail("built"),
                        raising=False)
    ensure_demo(tmp_path / "empty", False, 1)
    assert not (tmp_path / "empty").exists()


def test_ensure_demo_waits_for_a_running_build(tmp_path, monkeypatch):
    """A worker starting mid-build blocks on the lock instead of serving a partial demo."""
    import fcntl
    import time

    import riskmap.demo

    build_fake_atlas(tmp_path)  # editions already present, as in the middle of a build
    monkeypatch.setattr(riskmap.demo, "build_demo", lambda *a, **k: pytest.fail("rebuilt"),
                        raising=False)
    lock = open(tmp_path / ".demo.lock", "a")
    fcntl.flock(lock, fcntl.LOCK_EX)
    done = threading.Event()
    worker = threading.Thread(target=lambda: (ensure_demo(tmp_path, True, 1), done.set()))
    worker.start()
    time.sleep(0.3)
    assert not done.is_set()  # still waiting for the build's lock
    fcntl.flock(lock, fcntl.LOCK_UN)
    lock.close()
    worker.join(5)
    assert done.is_set()


def _count_builds(monkeypatch) -> list:
    import riskmap.demo

    calls = []

    def fake_build(path, seed):
        calls.append(seed)
        build_fake_atlas(path)

    monkeypatch.setattr(riskmap.demo, "build_demo", fake_build, raising=False)
    return calls


def test_create_app_builds_no_data(tmp_path, monkeypatch):
    from riskmap.web import create_app

    calls = _count_builds(monkeypatch)
    create_app({"data_dir": str(tmp_path / "empty"), "auto_demo": True})
    assert calls == [] and not (tmp_path / "empty").exists()


@pytest.mark.parametrize("auto, built", [("1", True), ("0", False)])
def test_serve_builds_the_demo_when_auto_demo_is_on(tmp_path, monkeypatch, auto, built):
    from click.testing import CliRunner
    from flask import Flask

    from riskmap.cli import cli

    calls = _count_builds(monkeypatch)
    monkeypatch.setattr(Flask, "run", lambda self, **kwargs: None)
    monkeypatch.setenv("RISKMAP_AUTO_DEMO", auto)
    monkeypatch.setenv("RISKMAP_DEMO_SEED", "11")
    result = CliRunner().invoke(cli, ["serve", "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    assert calls == ([11] if built else [])
    assert ("editions 2017, 2023" in result.output) is built


def test_wsgi_builds_the_demo_before_the_app(tmp_path, monkeypatch):
    import importlib.util
    from pathlib import Path

    calls = _count_builds(monkeypatch)
    monkeypatch.setenv("RISKMAP_DATA_DIR", str(tmp_path / "d"))
    path = Path(__file__).resolve().parent.parent / "wsgi.py"
    spec = importlib.util.spec_from_file_location("wsgi_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert len(calls) == 1
    assert module.app.test_client().get("/api/v1/ediciones").status_code == 200


def test_unwritable_empty_data_dir_is_one_line(tmp_path, capsys):
    from riskmap.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--data-dir", str(blocker / "data")])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2
    assert err[-1].startswith(f"riskmap: error: {blocker / 'data'}: cannot build the demo here")
    assert "Traceback" not in "\n".join(err)
