"""Packaging: resources resolve in a checkout and in the wheel, ``python -m riskmap`` runs, the
wheel carries templates, model specs, static files, translations and the method document, and
the service serves that document.

The full check (wheel installed with its dependencies in a fresh virtual environment, demo
built and every page requested through gunicorn outside the checkout) is ``.ci/wheel_check.py``,
run by ``.ci/run``.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from riskmap import paths

ROOT = Path(__file__).resolve().parent.parent


def _wheel_check_module():
    spec = importlib.util.spec_from_file_location("wheel_check", ROOT / ".ci" / "wheel_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _can_build_wheel_offline() -> bool:
    """setuptools >= 70.1 has bdist_wheel built in; older ones need the ``wheel`` package."""
    try:
        import setuptools
    except ImportError:
        return False
    major, minor = (int(p) for p in setuptools.__version__.split(".")[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built offline from a clean copy of the sources (``.ci/wheel_check.py``)."""
    if not _can_build_wheel_offline():
        pytest.skip("no offline wheel backend (setuptools >= 70.1 or the wheel package)")
    return _wheel_check_module().build_wheel(tmp_path_factory.mktemp("wheel"))


# -- resources in the checkout -----------------------------------------------------------------
def test_checkout_resources_resolve_through_resource_dir():
    assert paths.is_checkout()
    assert paths.TEMPLATES_DIR == paths.resource_dir("templates") == ROOT / "templates"
    assert paths.MODELS_DIR == ROOT / "models"
    assert paths.DEFAULT_SPEC.is_file() and paths.METHOD_DOC == ROOT / "docs" / "METHOD.md"
    assert (paths.TRANSLATIONS_DIR / "en" / "LC_MESSAGES" / "messages.mo").is_file()
    assert (paths.STATIC_DIR / "css" / "riskmap.css").is_file()

    from riskmap.inegi.mapping import SOURCES_DIR
    from riskmap.spec import load_spec
    from riskmap.web import TRANSLATIONS_DIR, create_app

    assert load_spec().covariates  # the default spec, found through paths.DEFAULT_SPEC
    assert SOURCES_DIR == paths.MODELS_DIR / "sources" and any(SOURCES_DIR.glob("*.toml"))
    app = create_app({"data_dir": str(ROOT / "nonexistent"), "auto_demo": False})
    assert Path(app.template_folder) == paths.TEMPLATES_DIR
    assert Path(app.static_folder) == paths.STATIC_DIR
    assert Path(app.config["BABEL_TRANSLATION_DIRECTORIES"]) == TRANSLATIONS_DIR


def test_resource_dir_prefers_a_checkout_only_when_it_is_one(tmp_path, monkeypatch):
    (tmp_path / "templates").mkdir()
    monkeypatch.setattr(paths, "ROOT", tmp_path)
    package = Path(str(importlib.resources.files("riskmap"))) / "templates"
    # A "templates" folder beside the package that is not a riskmap checkout (site-packages
    # holding some other distribution's folder) is ignored: the package data is used.
    assert paths.resource_dir("templates") == package
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "other"\n', encoding="utf-8")
    assert paths.resource_dir("templates") == package
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "riskmap"\n', encoding="utf-8")
    assert paths.resource_dir("templates") == tmp_path / "templates"
    # Folders inside the package are always the package's.
    assert paths.resource_dir("web/translations") == package.parent / "web" / "translations"


def test_python_m_riskmap(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKMAP_")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, "-m", "riskmap", "--help"], capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    for command in ("demo", "build", "serve", "crosswalk", "harmonise"):
        assert command in done.stdout
    done = subprocess.run([sys.executable, "-m", "riskmap", "show"], capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("riskmap: error:")


# -- the wheel ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_wheel_carries_every_resource(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {"riskmap/__main__.py", "riskmap/docs/METHOD.md",
                "riskmap/web/translations/en/LC_MESSAGES/messages.mo"}
    expected |= {f"riskmap/templates/{p.relative_to(ROOT / 'templates').as_posix()}"
                 for p in (ROOT / "templates").rglob("*.html")}
    expected |= {f"riskmap/models/{p.relative_to(ROOT / 'models').as_posix()}"
                 for p in (ROOT / "models").rglob("*.toml")}
    expected |= {f"riskmap/web/static/{p.relative_to(ROOT / 'riskmap/web/static').as_posix()}"
                 for p in (ROOT / "riskmap" / "web" / "static").rglob("*") if p.is_file()}
    assert len(expected) > 20
    assert expected <= names, sorted(expected - names)
    assert not [n for n in names if n.startswith(("tests/", "bench/", "templates/", "models/"))]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "riskmap = riskmap.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


@pytest.mark.slow
def test_unpacked_wheel_runs_outside_the_checkout(wheel, tmp_path):
    """The wheel's own files suffice: spec, templates, translations, method page (no checkout)."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    work = tmp_path / "work"
    work.mkdir()
    script = """
import json, sys
import riskmap, riskmap.paths as p
from riskmap.spec import load_spec
from riskmap.web import create_app
app = create_app({"data_dir": sys.argv[1], "auto_demo": False, "TESTING": True})
client = app.test_client()
page = client.get("/metodologia/metodo?lang=en")
raw = client.get("/metodologia/METHOD.md")
print(json.dumps({"package": riskmap.__file__, "templates": str(p.TEMPLATES_DIR),
                  "spec": str(p.DEFAULT_SPEC), "translations": str(p.TRANSLATIONS_DIR),
                  "covariates": len(load_spec().covariates), "page": page.status_code,
                  "english": "Back to the edition" in page.get_data(as_text=True),
                  "raw": raw.status_code, "type": raw.mimetype}))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKMAP_")}
    env["PYTHONPATH"] = str(site)
    done = subprocess.run([sys.executable, "-c", script, str(work / "data")],
                          capture_output=True, text=True, cwd=work, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    for key in ("package", "templates", "spec", "translations"):
        assert Path(found[key]).resolve().is_relative_to(site.resolve()), (key, found[key])
    assert found["covariates"] > 0
    assert found["page"] == 200 and found["english"]
    assert (found["raw"], found["type"]) == (200, "text/markdown")


# -- the method document, served ----------------------------------------------------------------
@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from webdata import build_fake_atlas, web_app

    return web_app(build_fake_atlas(tmp_path_factory.mktemp("method-atlas"))).test_client()


def test_method_document_is_served_and_linked(client):
    text = paths.METHOD_DOC.read_text(encoding="utf-8")
    for section in range(13):
        assert f"## §{section} " in text
    r = client.get("/metodologia/METHOD.md")
    assert r.status_code == 200 and r.mimetype == "text/markdown"
    assert r.get_data(as_text=True) == text
    r = client.get("/metodologia/metodo")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and r.mimetype == "text/html"
    assert "<h2>§8 Trend decomposition: composition and behaviour</h2>" in html
    assert "<table>" not in html or "<th>" in html
    assert "Binder, D. A. (1983)" in html
    for lang in ("es", "en"):
        page = client.get(f"/metodologia?lang={lang}").get_data(as_text=True)
        assert f'href="/metodologia/metodo?lang={lang}"' in page


def test_nothing_in_the_repository_points_outside_it():
    """Code, docs, specs and templates cite docs/METHOD.md or docs/DESIGN.md, nothing beside."""
    # The names are joined from pieces so that this file does not match its own pattern.
    names = ["shared" + "/docs", "steer" + "ing", "ARCHITECTURE" + r"\.md",
             "INEGI_MICRODATA" + r"\.md"]
    outside = re.compile("|".join(names) + r"|(?<![/\w\"`])(?<!\]\()METHOD\.md")
    offenders = []
    files = [ROOT / "README.md", ROOT / "setup.py", ROOT / "pyproject.toml", ROOT / "wsgi.py"]
    for folder in ("riskmap", "templates", "models", "docs", "tests", "bench", ".ci"):
        files += [p for p in (ROOT / folder).rglob("*")
                  if p.is_file() and p.suffix in (".py", ".md", ".toml", ".html", ".cfg", "")]
    for path in files:
        if path == Path(__file__):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if outside.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
