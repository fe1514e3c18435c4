"""Integrity under concurrency and crashes (SQLite and PostgreSQL), and the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from outcome_helpers import IMPORT_CHILD, csv_bytes, visit_rows
from riskmap.outcomes import db, users, visits

ROOT = Path(__file__).resolve().parent.parent


def child(db_url, path, actor="t", **kw):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("RISKMAP_TEST_DATABASE_URL", None)
    return subprocess.Popen([sys.executable, "-c", IMPORT_CHILD, db_url, str(path), actor],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=ROOT, **kw)


@pytest.mark.slow
def test_eight_concurrent_overlapping_imports(db_url, tmp_path):
    db.get_engine(db_url)  # migrate once before the race
    paths = []
    for i in range(8):
        path = tmp_path / f"part{i}.csv"
        path.write_bytes(csv_bytes(visit_rows(2000, start=i * 500)))
        paths.append(path)
    procs = [child(db_url, p, f"user{i}") for i, p in enumerate(paths)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
    inserted = sum(int(o[0].split()[-2]) for o in outs)
    engine = db.get_engine(db_url)
    stored = visits.frame(engine)
    assert len(stored) == inserted == 2000 + 7 * 500  # nothing lost, nothing twice
    assert stored["folio"].is_unique
    expected = visit_rows(5500)
    merged = stored.merge(expected.astype({"establecimientos": "int64"}), on="folio",
                          suffixes=("", "_want"))
    assert len(merged) == 5500
    assert (merged["nna_encontrados"] == merged["nna_encontrados_want"]).all()


@pytest.mark.slow
def test_kill_during_a_100k_import_leaves_all_or_none(db_url, tmp_path):
    db.get_engine(db_url)
    path = tmp_path / "big.csv"
    path.write_bytes(csv_bytes(visit_rows(100_000)))
    proc = child(db_url, path)
    line = proc.stdout.readline()
    assert line.startswith("importing"), proc.stderr.read()[-500:]
    time.sleep(0.5)  # well inside the insert (which takes seconds)
    still_running = proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    db.dispose_all()
    n = visits.count(db.get_engine(db_url))
    assert n in (0, 100_000)
    if still_running:
        assert n == 0  # killed mid-transaction: nothing of it
    # The database is healthy afterwards: the same file imports whole.
    result = visits.import_bytes(db.get_engine(db_url), path.read_bytes(), "big.csv", "t")
    assert result.inserted + result.unchanged == 100_000
    assert visits.count(db.get_engine(db_url)) == 100_000


# -- command line ----------------------------------------------------------------------------
def run(argv, capsys, stdin=None, monkeypatch=None):
    from riskmap.cli import main

    if stdin is not None:
        import io
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def test_cli_users_and_outcomes(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    code, out, err = run(["users", "add", "ana", "--role", "inspector", "--password-stdin",
                          "--data-dir", data], capsys, "a long password\n", monkeypatch)
    assert code == 0 and "a long password" not in out + err
    code, out, err = run(["users", "add", "bo", "--role", "boss", "--password-stdin",
                          "--data-dir", data], capsys, "a long password\n", monkeypatch)
    assert code == 2 and "inspector" in err
    code, out, _ = run(["users", "token", "ana", "--data-dir", data], capsys)
    token = out.strip()
    assert code == 0 and token.startswith("rmk_")
    engine = db.get_engine(db.database_url({"data_dir": str(data)}))
    assert users.user_by_token(engine, token).name == "ana"
    assert (data / "riskmap.sqlite").exists()
    path = tmp_path / "v.csv"
    path.write_bytes(csv_bytes(visit_rows(30)))
    code, out, _ = run(["outcomes", "import", "--file", path, "--user", "ana",
                        "--data-dir", data], capsys)
    assert code == 0 and "30 visits imported" in out
    bad = visit_rows(5)
    bad.loc[2, "fecha"] = "ayer"
    path.write_bytes(csv_bytes(bad))
    code, out, err = run(["outcomes", "import", "--file", path, "--data-dir", data], capsys)
    assert code == 2 and "v.csv, row 4, column 'fecha'" in err and "Traceback" not in err
    code, out, err = run(["outcomes", "export", "-o", tmp_path / "out.xlsx",
                          "--data-dir", data], capsys)
    assert code == 0 and len(pd.read_excel(tmp_path / "out.xlsx")) == 30
    code, out, _ = run(["users", "list", "--data-dir", data], capsys)
    assert "ana" in out and "active" in out
    code, out, _ = run(["users", "disable", "ana", "--data-dir", data], capsys)
    assert code == 0 and users.user_by_token(engine, token) is None
    code, out, err = run(["users", "disable", "nobody", "--data-dir", data], capsys)
    assert code == 2 and "no user named 'nobody'" in err
    db.dispose_all()


def test_serve_takes_a_workplace_table(tmp_path, monkeypatch):
    from click.testing import CliRunner
    from flask import Flask

    from riskmap.cli import cli
    from webdata import build_fake_atlas

    data = build_fake_atlas(tmp_path / "atlas")
    seen = {}
    monkeypatch.setattr(Flask, "run", lambda self, **kw: seen.update(
        file=self.config["RISKMAP"]["establishments_file"]))
    table = tmp_path / "k.csv"
    table.write_text("cvegeo,count\n22001,0\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["serve", "--data-dir", str(data), "--establishments",
                                      str(table)])
    assert result.exit_code != 0 and "expected an integer >= 1" in str(result.exception)
    table.write_text("cvegeo,count\n22001,3\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["serve", "--data-dir", str(data), "--establishments",
                                      str(table)])
    assert result.exit_code == 0 and seen["file"] == str(table)
    from webdata import web_app
    body = web_app(data, establishments_file=str(table), secret_key="k").test_client().get(
        "/api/v1/focalizacion?visitas=50&niveles=alto,medio,bajo").get_json()
    assert body["units"]["workplaces"] == "table"
    rows = {r["cvegeo"]: r for r in body["data"]}
    if "22001" in rows:
        assert rows["22001"]["workplaces"] == 3 and rows["22001"]["visits"] <= 3


@pytest.mark.slow
def test_demo_account_and_outcomes(demo_dir, tmp_path, capsys):
    """'riskmap demo' imports the synthetic visits and creates the inspector account once."""
    import shutil

    from riskmap.cli.outcomes import DEMO_USER, print_demo_account, setup_demo_outcomes
    from riskmap.demo.outcomes import FILE_NAME, N_VISITS

    data = tmp_path / "data"
    (data / "demo").mkdir(parents=True)
    shutil.copy(demo_dir / "demo" / FILE_NAME, data / "demo" / FILE_NAME)
    password = setup_demo_outcomes(data)
    print_demo_account(password)
    out = capsys.readouterr().out
    assert password and f"password '{password}'" in out
    engine = db.get_engine(db.database_url({"data_dir": str(data)}))
    assert users.authenticate(engine, DEMO_USER, password).role == "inspector"
    assert visits.count(engine) == N_VISITS
    with engine.connect() as conn:  # the password is stored nowhere in clear
        dump = "\n".join(str(r) for t in ("users", "audit") for r in
                         conn.exec_driver_sql(f"SELECT * FROM {t}"))
    assert password not in dump
    assert setup_demo_outcomes(data) is None  # a second run: no new password, no new rows
    assert visits.count(engine) == N_VISITS
    db.dispose_all()
