#!/usr/bin/env python3
"""Check that an installed wheel runs outside the checkout.

1. copy the files the wheel is built from into a temporary folder (so no stale ``build/``
   in the checkout can leak into the wheel) and build the wheel there, offline, with this
   interpreter's setuptools (``pip wheel --no-build-isolation --no-deps``);
2. install it, with its dependencies, in a fresh virtual environment;
3. from a temporary directory outside the checkout: ``python -m riskmap --help``, then
   ``riskmap demo --data-dir ...``;
4. start ``gunicorn 'riskmap.web:create_app()'`` on a free local port and request every page,
   the OpenAPI document, the method document and one download: all must answer 200.

Usage: ``python .ci/wheel_check.py [--keep]`` (``--keep`` leaves the temporary folder).
Prints one line per step with its time; exits 1 on the first failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: What the wheel is built from (setup.py maps templates/, models/ and docs/ into the package).
SOURCES = ("pyproject.toml", "setup.py", "README.md", "riskmap", "templates", "models", "docs")


def fail(message: str) -> None:
    print(f"wheel-check: FAILED: {message}", flush=True)
    sys.exit(1)


def run(cmd: list, cwd: Path, env: dict | None = None, timeout: float = 900) -> str:
    """Run a command; on failure print its output and stop."""
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode != 0:
        fail(f"{' '.join(map(str, cmd))} exited {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done.stdout


def step(name: str, started: float) -> float:
    now = time.perf_counter()
    print(f"wheel-check: {name}: {now - started:.1f} s", flush=True)
    return now


def clean_env(data_dir: Path) -> dict:
    """The environment without the checkout on PYTHONPATH and without stray RISKMAP_* values."""
    env = {k: v for k, v in os.environ.items()
           if k != "PYTHONPATH" and not k.startswith("RISKMAP_")}
    env.update(RISKMAP_DATA_DIR=str(data_dir), RISKMAP_AUTO_DEMO="0")
    return env


def build_wheel(tmp: Path) -> Path:
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-q",
         "-w", tmp / "dist", src], cwd=tmp)
    wheels = list((tmp / "dist").glob("riskmap-*.whl"))
    if len(wheels) != 1:
        fail(f"expected one wheel, found {wheels}")
    return wheels[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(base: str, path: str, timeout: float = 120) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(base + path, timeout=timeout) as r:
            return r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("Content-Type", "")


def wait_until_up(base: str, server: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            fail(f"gunicorn exited with {server.returncode} before answering")
        try:
            if get(base, "/api/v1/openapi.json", timeout=5)[0] == 200:
                return
        except OSError:
            time.sleep(0.3)
    fail(f"gunicorn did not answer within {seconds:.0f} s")


def check_pages(base: str) -> int:
    status, body, _ = get(base, "/api/v1/ediciones")
    if status != 200:
        fail(f"/api/v1/ediciones answered {status}")
    listing = json.loads(body)
    names = [e["name"] for e in listing["data"]]
    latest = listing["latest"]
    status, body, _ = get(base, f"/api/v1/ediciones/{latest}/municipios.json?per_page=1")
    cvegeo = json.loads(body)["data"][0]["cvegeo"]
    pages = ["/", f"/estado/{cvegeo[:2]}", f"/municipio/{cvegeo}",
             f"/comparar?a={names[0]}&b={latest}", "/focalizacion", "/metodologia",
             "/metodologia/metodo", "/metodologia/METHOD.md", "/descargas",
             "/api/v1/openapi.json", f"/descargas/{latest}.csv", "/metodologia?lang=en",
             f"/tendencias?a={names[0]}&b={latest}", "/salud", "/login", "/api/v1/",
             f"/estado/{cvegeo[:2]}/ficha.html", f"/descargas/{latest}.xlsx"]
    try:  # the PDF ficha needs the Pango library, a system package (.ci/run installs it)
        import ctypes.util
        if ctypes.util.find_library("pango-1.0"):
            pages.append(f"/estado/{cvegeo[:2]}/ficha.pdf")
    except ImportError:
        pass
    for path in pages:
        started = time.perf_counter()
        status, body, ctype = get(base, path)
        print(f"wheel-check:   {status} {path} ({len(body):,} bytes, {ctype.split(';')[0]}, "
              f"{time.perf_counter() - started:.2f} s)", flush=True)
        if status != 200:
            fail(f"{path} answered {status}: {body[:300]!r}")
    return len(pages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="riskmap-wheel-")).resolve()
    server = None
    try:
        t0 = t = time.perf_counter()
        wheel = build_wheel(tmp)
        t = step(f"built {wheel.name} ({wheel.stat().st_size / 1024:.0f} KiB)", t)

        venv = tmp / "venv"
        run([sys.executable, "-m", "venv", venv], cwd=tmp)
        run([venv / "bin" / "python", "-m", "pip", "install", "-q", wheel], cwd=tmp)
        t = step("fresh virtual environment with the wheel and its dependencies", t)

        work = tmp / "work"  # outside the checkout: nothing can be imported from it
        work.mkdir()
        data = work / "data"
        env = clean_env(data)
        python = venv / "bin" / "python"
        run([python, "-m", "riskmap", "--help"], cwd=work, env=env)
        where = json.loads(run([python, "-c", (
            "import json, riskmap, riskmap.paths as p; print(json.dumps({'package': "
            "riskmap.__file__, 'templates': str(p.TEMPLATES_DIR), 'spec': str(p.DEFAULT_SPEC),"
            " 'translations': str(p.TRANSLATIONS_DIR), 'method': str(p.METHOD_DOC)}))")],
            cwd=work, env=env))
        for what, path in where.items():
            if not Path(path).resolve().is_relative_to(venv) or not Path(path).exists():
                fail(f"{what} resolves to {path}, not to the installed wheel")
        run([venv / "bin" / "riskmap", "demo", "--data-dir", data], cwd=work, env=env)
        t = step("python -m riskmap --help; riskmap demo from outside the checkout", t)

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [venv / "bin" / "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
             "--timeout", "120", "riskmap.web:create_app()"],
            cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        wait_until_up(base, server)
        count = check_pages(base)
        t = step(f"gunicorn 'riskmap.web:create_app()': {count} pages answered 200", t)
        print(f"wheel-check: OK in {time.perf_counter() - t0:.1f} s", flush=True)
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        if args.keep:
            print(f"wheel-check: kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
