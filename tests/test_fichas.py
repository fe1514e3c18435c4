"""Printable fichas (PDF): content read back with poppler, caching, the CLI and bad input."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess

import pytest

from cli_inputs import run
from webdata import EVIL_NAME, STATES, build_fake_atlas, web_app

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("weasyprint") is None,
                       reason="WeasyPrint is not installed"),
    pytest.mark.skipif(shutil.which("pdftotext") is None,
                       reason="pdftotext (Debian poppler-utils) is not installed"),
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return build_fake_atlas(tmp_path_factory.mktemp("fichas"))


@pytest.fixture(scope="module")
def app(data_dir):
    return web_app(data_dir)


def pdf_text(body: bytes, tmp_path) -> str:
    path = tmp_path / "f.pdf"
    path.write_bytes(body)
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                         check=True, text=True)
    return " ".join(out.stdout.split())


def test_state_ficha_holds_name_counts_list_and_attribution(app, tmp_path):
    from riskmap.provenance import attribution
    from riskmap.publish.store import DataStore

    client = app.test_client()
    res = client.get("/estado/07/ficha.pdf?edicion=2023")
    assert res.status_code == 200 and res.mimetype == "application/pdf"
    assert res.data.startswith(b"%PDF")
    text = pdf_text(res.data, tmp_path)
    edition = DataStore(app.config["RISKMAP"]["data_dir"]).load_edition("2023")
    rows = edition.rows[edition.rows["cve_ent"] == "07"]
    counts = rows["level"].value_counts()
    assert STATES["07"] in text
    # the counts row of the state, in level order, then its total
    expected = " ".join(str(int(counts.get(lv, 0))) for lv in
                        ("alto", "medio", "bajo", "sin_informacion"))
    assert f"{STATES['07']} {expected} {len(rows)}" in text
    assert " ".join(attribution(edition.card, "es").split()) in text
    # every municipality of the state is listed by name (the hostile one escaped, not dropped)
    for name in rows["nom_mun"]:
        if name != EVIL_NAME:
            assert name in text
    assert "Principales factores asociados" in text


def test_municipal_ficha_in_english_names_rule_and_factors_in_words(app, tmp_path):
    client = app.test_client()
    res = client.get("/municipio/07001/ficha.pdf?edicion=2023&lang=en")
    assert res.status_code == 200
    text = pdf_text(res.data, tmp_path)
    assert "Municipal child labour risk fact sheet" in text
    assert "national average" in text          # factor direction in words
    assert "Classification rule" in text
    assert "Ficha" not in text                 # no Spanish title leaks into the English file


def test_ficha_is_cached_and_not_rebuilt(app, monkeypatch):
    from riskmap.web import fichas

    client = app.test_client()
    first = client.get("/estado/12/ficha.pdf?edicion=2023").data
    calls = []
    monkeypatch.setattr(fichas, "ficha_html", lambda *a: calls.append(a) or "<p>x</p>")
    again = client.get("/estado/12/ficha.pdf?edicion=2023").data
    assert again == first and calls == []
    other = client.get("/estado/12/ficha.pdf?edicion=2023&lang=en")
    assert other.status_code == 200 and calls  # another language is another entry


@pytest.mark.parametrize("url, status", [
    ("/estado/99/ficha.pdf", 404),
    ("/municipio/99999/ficha.pdf", 404),
    ("/estado/07/ficha.pdf?edicion=1999", 400),
])
def test_ficha_bad_requests_use_the_error_shape(app, url, status):
    res = app.test_client().get(url, headers={"Accept": "application/json"})
    assert res.status_code == status


def test_ficha_html_escapes_user_values(app):
    res = app.test_client().get("/estado/22/ficha.html?edicion=2023")
    assert res.status_code == 200
    assert b"<script>alert" not in res.data
    assert b"&lt;script&gt;" in res.data


def test_cli_ficha_writes_pdf_and_rejects_bad_input(data_dir, tmp_path, capsys):
    out = tmp_path / "ficha.pdf"
    code, _, err = run(["ficha", "--edition", "2023", "--state", "7", "-o", out,
                        "--data-dir", data_dir], capsys)
    assert code == 0, err
    assert STATES["07"] in pdf_text(out.read_bytes(), tmp_path)
    for args, message in ((["--state", "99"], "state '99'"),
                          ([], "exactly one of"),
                          (["--state", "07", "--municipality", "07001"], "exactly one of")):
        code, _, err = run(["ficha", "--edition", "2023", *args, "-o", tmp_path / "x.pdf",
                            "--data-dir", data_dir], capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    code, _, err = run(["ficha", "--edition", "1999", "--state", "07", "-o", tmp_path / "x.pdf",
                        "--data-dir", data_dir], capsys)
    assert code == 2 and "1999" in err
    assert not (tmp_path / "x.pdf").exists()


def test_missing_pdf_library_is_a_clear_503(app, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_weasyprint(name, *args, **kwargs):
        if name == "weasyprint":
            raise OSError("cannot load library 'libpango-1.0-0'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_weasyprint)
    res = app.test_client().get("/estado/30/ficha.pdf?edicion=2017&lang=en",
                                headers={"Accept": "application/json"})
    assert res.status_code == 503
    assert "libpango" in res.get_data(as_text=True)  # says what to install


def test_state_ficha_on_the_demo_carries_the_trend_decomposition(demo_dir, tmp_path):
    """With two modelled editions and their census records, the state ficha explains the
    change: composition and behaviour with intervals, and the sentences of /tendencias."""
    client = web_app(demo_dir).test_client()
    text = pdf_text(client.get("/estado/07/ficha.pdf?lang=es").data, tmp_path)
    assert "Por qué cambió entre 2017 y 2023" in text
    assert "Composición" in text and "Comportamiento" in text and "IC 95 %" in text
    text = pdf_text(client.get("/municipio/07001/ficha.pdf?lang=en").data, tmp_path)
    assert "Why it changed between 2017 and 2023" in text and "Dominant driver" in text
