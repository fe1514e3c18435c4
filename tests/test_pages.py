"""HTML pages over the small fake atlas: every route in Spanish and English, escaping of a
hostile municipality name, no request to another host, permalinks, bad parameters, exports."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import re

import numpy as np
import pandas as pd
import pytest

from webdata import EVIL_NAME, build_fake_atlas, web_app

ESCAPED_EVIL = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; O&#39;Brien &#34;Q&#34;"


@pytest.fixture(scope="module")
def data_dir(fake_dir):
    """The session's fake atlas (conftest ``fake_dir``) under this module's former name."""
    return fake_dir


#: (path, Spanish text, English text) that each page must show.
PAGES = [
    ("/", "Riesgo de trabajo infantil por municipio", "Child labour risk by municipality"),
    ("/?edicion=2017&capa=probabilidad", "edición 2017", "edition 2017"),
    ("/estado/22", "Querétaro", "Download this state"),
    ("/municipio/22001", "Factores asociados", "Associated factors"),
    ("/municipio/22011", "Historia entre ediciones", "History across editions"),
    ("/metodologia", "Cómo se asigna el nivel de riesgo", "How the risk level is assigned"),
    ("/focalizacion", "Focalización de inspecciones", "Inspection targeting"),
    ("/comparar?a=2017&b=2023", "Comparar ediciones", "Compare editions"),
]


@pytest.mark.parametrize("path,text_es,text_en", PAGES)
@pytest.mark.parametrize("lang", ["es", "en"])
def test_page_renders(client, path, text_es, text_en, lang):
    sep = "&" if "?" in path else "?"
    r = client.get(f"{path}{sep}lang={lang}")
    assert r.status_code == 200
    assert r.content_type == "text/html; charset=utf-8"
    html = r.get_data(as_text=True)
    assert f'<html lang="{lang}">' in html
    assert (text_es if lang == "es" else text_en) in html
    assert "Demostración con datos sintéticos" in html if lang == "es" else \
        "Synthetic demonstration data" in html


def _pages_with_map():
    return ["/", "/estado/22", "/municipio/22006"]


@pytest.mark.parametrize("path", ["/estado/22", "/municipio/22006", "/municipio/22005",
                                  "/?q=brien", "/?sel=22006"])
def test_hostile_name_is_escaped(client, path):
    html = client.get(path).get_data(as_text=True)
    assert EVIL_NAME not in html
    assert '<script>alert("x")' not in html
    assert ESCAPED_EVIL in html


@pytest.mark.parametrize("path", _pages_with_map())
def test_embedded_json_cannot_break_out(client, path):
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'<script type="application/json" id="riskmap-config">(.*?)</script>',
                      html, re.S)
    assert match, "page carries its map configuration"
    body = match.group(1)
    assert "<" not in body and ">" not in body  # |tojson escapes them as \u003c
    config = json.loads(body)
    assert config["maps"][0]["geometry"].startswith("/api/v1/geometria/")
    # The geometry itself is fetched once from the cached endpoint, never embedded.
    assert "coordinates" not in html


EXTERNAL = re.compile(r'''(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//''', re.I)
CDN_HOSTS = ("cdn.jsdelivr.net", "code.jquery.com", "cdnjs.cloudflare.com", "bootstrapcdn",
             "unpkg.com", "openstreetmap", "googleapis")


@pytest.mark.parametrize("path", ["/", "/estado/22", "/municipio/22006", "/metodologia",
                                  "/municipio/99999", "/?capa=nope"])
def test_pages_reference_no_other_host(client, path):
    html = client.get(path).get_data(as_text=True)
    assert not EXTERNAL.search(html), EXTERNAL.search(html)
    for host in CDN_HOSTS:
        assert host not in html


def test_own_assets_reference_no_host(client):
    for path in ("/static/js/riskmap.js", "/static/css/riskmap.css", "/static/favicon.svg"):
        r = client.get(path)
        assert r.status_code == 200
        text = r.get_data(as_text=True)
        urls = [u for u in re.findall(r"https?://[^\s'\")]+", text)
                if u != "http://www.w3.org/2000/svg"]  # an XML namespace, not a request
        assert urls == [], path


def test_leaflet_served_locally(client):
    r = client.get("/assets/leaflet/leaflet.js", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["Content-Encoding"] == "gzip"
    js = gzip.decompress(r.data).decode()
    assert "Leaflet 1.9.4" in js[:400] or '"1.9.4"' in js
    # Leaflet only names hosts in its attribution link and the SVG namespace; it fetches none.
    assert set(re.findall(r"https?://[^\s'\")]+", js)) <= {"http://www.w3.org/2000/svg",
                                                          "https://leafletjs.com"}
    assert client.get("/assets/leaflet/leaflet.css").status_code == 200
    assert client.get("/assets/leaflet/images/layers.png").status_code == 200
    assert client.get("/assets/leaflet/leaflet-src.js.map").status_code == 404
    assert client.get("/assets/leaflet/../../__init__.py").status_code == 404


def test_folium_map_without_cdn(client):
    html = client.get("/").get_data(as_text=True)
    assert "L.map(" in html and '"preferCanvas": true' in html
    assert "leaflet@1.9.3" not in html and "bootstrap" not in html.lower()
    assert "/assets/leaflet/leaflet.js" in html


def test_security_headers_and_nonce(client):
    r = client.get("/")
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "http" not in csp
    nonce = re.search(r"'nonce-([^']+)'", csp)
    hashes = set(re.findall(r"'sha256-([^']+)'", csp))
    html = r.get_data(as_text=True)
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>(.*?)</script>", html, re.S)
    assert any("nonce=" in attrs for attrs, _ in inline)
    # Every inline script is either data (application/json) or allowed by the policy: by its
    # nonce, or by its hash (a page stored by the response cache is the same for everyone).
    for attrs, text in inline:
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        assert ('type="application/json"' in attrs or digest in hashes
                or (nonce and f'nonce="{nonce.group(1)}"' in attrs))
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_tile_url_enables_tiles_and_csp_host(fake_dir):
    app = web_app(fake_dir, tile_url="https://tiles.example.org/{z}/{x}/{y}.png",
                  tile_attribution="Tiles: example")
    r = app.test_client().get("/")
    assert "https://tiles.example.org" in r.headers["Content-Security-Policy"]
    assert "tiles.example.org/{z}/{x}/{y}.png" in r.get_data(as_text=True)


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
def test_read_only(client, method):
    r = getattr(client, method)("/")
    assert r.status_code == 405


def test_language_choice_order(app):
    c = app.test_client()
    assert '<html lang="es">' in c.get("/metodologia").get_data(as_text=True)
    assert '<html lang="en">' in c.get("/metodologia",
                                       headers={"Accept-Language": "en-GB,en;q=0.8"}).get_data(as_text=True)
    r = c.get("/metodologia?lang=en")
    assert "lang=en" in r.headers["Set-Cookie"]
    # The cookie now carries the choice; ?lang still wins over it.
    assert '<html lang="en">' in c.get("/metodologia").get_data(as_text=True)
    assert '<html lang="es">' in c.get("/metodologia?lang=es").get_data(as_text=True)


@pytest.mark.parametrize("path,needle", [
    ("/?capa=altura", "nivel, probabilidad, esperados, incertidumbre"),
    ("/?edicion=1999", "2017, 2023"),
    ("/?estado=99", "07, 12, 22, 30"),
    ("/?sel=abc", "sel"),
    ("/estado/22?capa=x", "nivel, probabilidad"),
    ("/metodologia?edicion=x", "2017, 2023"),
])
def test_bad_parameter_is_400_listing_allowed(client, path, needle):
    r = client.get(path)
    assert r.status_code == 400
    assert needle in r.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/estado/99", "/municipio/99999", "/municipio/abc"])
def test_unknown_code_is_helpful_404(client, path):
    r = client.get(path)
    assert r.status_code == 404
    html = r.get_data(as_text=True)
    assert 'type="search"' in html  # the 404 page offers a search box


def test_permalink_state_is_restored(client):
    html = client.get("/?edicion=2017&capa=probabilidad&estado=22&sel=22006").get_data(as_text=True)
    assert '<option value="probabilidad" selected>' in html
    assert '<option value="22" selected>' in html
    assert '<option value="2017" selected>' in html
    config = json.loads(re.search(r'id="riskmap-config">(.*?)</script>', html, re.S).group(1))
    spec = config["maps"][0]
    assert spec["layer"] == "probabilidad" and spec["selected"] == "22006"
    assert spec["geometry"].endswith("/2015.topojson")  # edition 2017 is on vintage 2015
    assert ESCAPED_EVIL in html  # the selected municipality's card


def test_level_counts_match_the_edition(client, fake_dir):
    from riskmap.publish.store import DataStore

    rows = DataStore(fake_dir).load_edition("2023").rows
    html = client.get("/?lang=es").get_data(as_text=True)
    for level, label in (("alto", "Alto"), ("bajo", "Bajo"), ("sin_informacion", "Sin información")):
        n = int((rows["level"] == level).sum())
        assert f'<div class="count {level}"><b>{n}</b>{label}</div>' in html


def test_search_is_accent_insensitive(client):
    html = client.get("/?q=penon").get_data(as_text=True)
    assert "Peñón Blanco" in html and "22003" in html
    html = client.get("/?q=zzzz").get_data(as_text=True)
    assert "Ningún municipio coincide" in html


def test_municipality_card_content(client, fake_dir):
    from riskmap.publish.store import DataStore

    row = DataStore(fake_dir).load_edition("2023").rows.set_index("cvegeo").loc["22001"]
    html = client.get("/municipio/22001?lang=es").get_data(as_text=True)
    assert f"{row['probability'] * 100:.1f} %" in html
    assert f"{row['ci_low'] * 100:.1f} %" in html and f"{row['ci_high'] * 100:.1f} %" in html
    assert f"{int(row['children']):,}" in html
    assert "<svg" in html and "<rect" in html  # factor bars, server-side SVG
    # Neighbours of the grid square 22001: 22002 (east, after the split: 22011) and rows around.
    assert "/municipio/22011" in html


def test_municipality_history_badge_names_the_change(app, client):
    from riskmap.web.atlas import get_atlas

    with app.app_context():
        change = get_atlas().history("22006")[1]["change"]
    labels = {"aumento": "Aumento significativo", "disminucion": "Disminución significativa",
              "sin_cambio": "Sin cambio significativo"}
    html = client.get("/municipio/22006?lang=es").get_data(as_text=True)
    assert f'<span class="badge {change["change"]}">{labels[change["change"]]}</span>' in html
    html = client.get("/municipio/22006?lang=en").get_data(as_text=True)
    assert f'<span class="badge {change["change"]}">' in html


def test_new_municipality_history_uses_parent(client):
    html = client.get("/municipio/22011?lang=es").get_data(as_text=True)
    assert "22001" in html and "aún no existía" in html


def test_methodology_shows_model_card(client, fake_dir):
    from riskmap.publish.store import DataStore

    card = DataStore(fake_dir).load_card("2023")
    html = client.get("/metodologia?lang=es").get_data(as_text=True)
    male = next(c for c in card["coefficients"] if c["name"] == "male")
    assert f"{male['odds_ratio']:.3f}" in html and f"{male['se']:.3f}" in html
    assert "0.780" in html and "0.760" in html  # AUC, CV AUC
    assert html.count("<circle") == len(card["diagnostics"]["calibration"])
    assert "Limitaciones" in html


def test_imported_edition_pages(imported_app):
    c = imported_app.test_client()
    assert c.get("/metodologia?lang=es").status_code == 200
    html = c.get("/municipio/22001?lang=es").get_data(as_text=True)
    assert "no incluye factores asociados" in html


def test_comparison_flags_municipalities_created_or_divided(client):
    forward = client.get("/comparar?a=2017&b=2023&lang=es").get_data(as_text=True)
    assert "Municipios creados entre ediciones (2)" in forward
    assert "valor de 2017 tomado de 22001" in forward and "data-split" not in forward
    # Reversed, on the older geography: the municipalities the newer one divides are flagged
    # (only the 2015 -> 2020 crosswalk is stored: it is inverted).
    reverse = client.get("/comparar?a=2023&b=2017&lang=es").get_data(as_text=True)
    assert "data-split" in reverse and "Municipios creados entre ediciones (2)" in reverse
    assert "dividido en 22001, 22011" in reverse and "dividido en 07003, 07011" in reverse
    same = client.get("/comparar?a=2023&b=2023&lang=es").get_data(as_text=True)
    assert "data-split" not in same and "Municipios creados entre ediciones (0)" in same


def test_division_flags_ignore_slivers_and_forward_comparisons(tmp_path):
    import pandas as pd

    from riskmap.publish.store import DataStore

    path = build_fake_atlas(tmp_path / "d")
    store = DataStore(path)
    forward = store.load_crosswalk("2015", "2020")
    sliver = pd.DataFrame({"cvegeo_from": ["22002"], "cvegeo_to": ["22003"], "share": [0.002]})
    store.save_crosswalk("2015", "2020", pd.concat([forward, sliver], ignore_index=True))
    backward = forward.rename(columns={"cvegeo_from": "cvegeo_to", "cvegeo_to": "cvegeo_from"})
    # A 2020 municipality drawn from two 2015 ones: only a reversed comparison may flag it.
    moved = pd.DataFrame({"cvegeo_from": ["22003"], "cvegeo_to": ["22002"], "share": [0.3]})
    store.save_crosswalk("2020", "2015", pd.concat(
        [backward.assign(share=1.0)[["cvegeo_from", "cvegeo_to", "share"]], moved],
        ignore_index=True))
    client = web_app(path).test_client()
    reverse = client.get("/comparar?a=2023&b=2017&lang=es").get_data(as_text=True)
    assert "dividido en 22001, 22011" in reverse and "22002 (" not in reverse.split(
        "data-split")[1].split("</ul>")[0]
    ahead = client.get("/comparar?a=2017&b=2023&lang=es").get_data(as_text=True)
    assert "data-split" not in ahead and "valor de 2017 tomado de 22001" in ahead


def _republish(path, name: str, **card_changes) -> None:
    """Publish edition ``name`` again with its model card changed."""
    from riskmap.publish.store import DataStore

    store = DataStore(path)
    ed = store.load_edition(name)
    ed.card.update(card_changes)
    store.publish_edition(ed)


DEMO_BANNER = "Demostración con datos sintéticos."
SEMI_BANNER = "Datos semisintéticos:"
INEGI_CREDIT = "INEGI no avala este producto"
DATA_PAGES = ("/", "/estado/22", "/municipio/22001", "/focalizacion", "/metodologia",
              "/descargas", "/comparar?a=2017&b=2023")


@pytest.fixture(scope="module")
def kinds_dir(tmp_path_factory):
    """Edition 2017 semi-synthetic (as ``riskmap simulate`` labels it), 2023 real."""
    path = build_fake_atlas(tmp_path_factory.mktemp("kinds"))
    _republish(path, "2017", semi_synthetic=True,
               sources=["INEGI boundaries and municipal shares; simulated records",
                        "INEGI, Marco Geoestadístico (2020)"],
               attribution={"es": "DATOS SEMISINTÉTICOS: geografía real del INEGI. Fuente: "
                                  "INEGI. " + "Datos transformados por riskmap; INEGI no avala "
                                  "este producto.",
                            "en": "SEMI-SYNTHETIC DATA: real INEGI geography. Source: INEGI. "
                                  "Data transformed by riskmap; INEGI does not endorse this "
                                  "product."})
    _republish(path, "2023", synthetic=False, sources=["ENTI 2022 (INEGI)", "Censo 2020"])
    return path


def test_semi_synthetic_edition_banner_and_inegi_credit(kinds_dir):
    c = web_app(kinds_dir).test_client()
    for url in ("/?edicion=2017", "/estado/22?edicion=2017", "/municipio/22001?edicion=2017",
                "/focalizacion?edicion=2017", "/metodologia?edicion=2017"):
        html = c.get(url + "&lang=es").get_data(as_text=True)
        assert SEMI_BANNER in html and DEMO_BANNER not in html, url
        assert "no representan a ningún país real" not in html, url
        assert "DATOS SEMISINTÉTICOS: geografía real del INEGI" in html, url
        assert INEGI_CREDIT in html, url
    html = c.get("/?edicion=2017&lang=en").get_data(as_text=True)
    assert "Semi-synthetic data:" in html and "INEGI does not endorse" in html
    assert "(semisintética)" in c.get("/?lang=es").get_data(as_text=True)
    api = c.get("/api/v1/ediciones").get_json()
    flags = {e["name"]: (e["synthetic"], e["semi_synthetic"]) for e in api["data"]}
    assert flags == {"2017": (True, True), "2023": (False, False)}
    assert "DATOS SEMISINTÉTICOS" in c.get("/api/v1/ediciones/2017").get_json()[
        "meta"]["attribution"]["es"]


def test_real_edition_credits_inegi_without_banner(kinds_dir):
    c = web_app(kinds_dir).test_client()
    for url in ("/", "/estado/22", "/municipio/22001", "/focalizacion", "/metodologia"):
        html = c.get(url + "?edicion=2023&lang=es").get_data(as_text=True)
        assert 'data-banner="' not in html, url
        assert "Fuente: INEGI" in html and INEGI_CREDIT in html, url
    # A comparison with the semi-synthetic edition carries its banner and both credits.
    html = c.get("/comparar?a=2017&b=2023&lang=es").get_data(as_text=True)
    assert SEMI_BANNER in html and "Fuente: INEGI (ENTI 2022" in html
    assert "DATOS SEMISINTÉTICOS: geografía real" in html


IMPORTED_NOTE = "Edición importada 2023:"


def test_imported_edition_marked_on_every_page(imported_app):
    c = imported_app.test_client()
    for url in DATA_PAGES[:5]:
        html = c.get(url + "?lang=es").get_data(as_text=True)
        assert IMPORTED_NOTE in html, url
        assert "No incluye factores asociados ni ficha del modelo" in html, url
    html = c.get("/comparar?a=2017&b=2023&lang=es").get_data(as_text=True)
    assert IMPORTED_NOTE in html and 'data-missing="se"' in html
    assert IMPORTED_NOTE not in c.get("/?edicion=2017&lang=es").get_data(as_text=True)
    html = c.get("/metodologia?lang=es").get_data(as_text=True)
    assert "data-imported-card" in html and "Coeficientes del modelo" not in html
    html = c.get("/municipio/22001?lang=es").get_data(as_text=True)
    assert 'data-missing="factors"' in html
    html = c.get("/?lang=en").get_data(as_text=True)
    assert "Imported edition 2023:" in html and "(imported)" in html


def _real_import(tmp_path):
    """The fake atlas plus edition mirti2023 published by ``riskmap import-edition``."""
    from riskmap.cli import main
    from riskmap.publish.store import DataStore

    path = build_fake_atlas(tmp_path / "d")
    store = DataStore(path)
    store.load_vintage("2020").to_file(tmp_path / "municipios_2020.gpkg", driver="GPKG")
    rows = store.load_edition("2023").rows
    levels = tmp_path / "mirti2023.csv"
    rows[["cvegeo", "level", "probability"]].iloc[:-3].to_csv(levels, index=False)
    with pytest.raises(SystemExit) as exc:
        main(["import-edition", "--edition", "mirti2023", "--year", "2024", "--levels",
              str(levels), "--boundaries", str(tmp_path / "municipios_2020.gpkg"),
              "--vintage", "2020", "--data-dir", str(path), "--source", "STPS/OIT (publicado)",
              "--allow-missing"])
    assert exc.value.code == 0
    return path


def test_real_imported_edition_pages(tmp_path):
    path = _real_import(tmp_path)
    c = web_app(path).test_client()
    q = "edicion=mirti2023&lang=es"
    html = c.get(f"/?{q}").get_data(as_text=True)
    assert "Edición importada mirti2023:" in html and "Sin casos esperados" in html
    assert "tal como fue publicado" in html and "intervalo de confianza de 95 %" not in html
    # Credited to its publisher, verbatim; INEGI only for the boundaries it sits on.
    assert "Fuente: STPS/OIT (publicado). Límites municipales: INEGI, Marco Geoestadístico. " \
        "Datos transformados por riskmap; INEGI no avala este producto." in html
    assert "Fuente: INEGI (" not in html and 'data-banner="synthetic"' not in html
    # Layers without data are marked and cannot be picked.
    assert re.search(r'value="esperados"\s+disabled>[^<]*no disponible', html)
    assert re.search(r'value="incertidumbre"\s+disabled>', html)
    assert not re.search(r'value="probabilidad"\s+disabled', html)
    html = c.get(f"/?{q}&capa=esperados").get_data(as_text=True)
    assert 'data-missing-layer="esperados"' in html
    html = c.get(f"/municipio/22001?{q}").get_data(as_text=True)
    assert re.search(r'value="mirti2023"\s+selected>mirti2023 \(importada\)</option>', html)
    assert "no publicado" in html and "– – –" not in html and "[–" not in html
    assert "Registros censales" not in html
    # Targeting needs expected counts: explained, with a way out to a modelled edition.
    html = c.get(f"/focalizacion?{q}").get_data(as_text=True)
    assert 'data-missing="expected"' in html
    assert "Ningún municipio cumple los filtros" not in html
    assert "/focalizacion?edicion=2023" in html
    html = c.get(f"/metodologia?{q}").get_data(as_text=True)
    assert "Municipios en la lista publicada" in html and "Covariables" not in html
    html = c.get("/comparar?a=2023&b=mirti2023&lang=es").get_data(as_text=True)
    assert 'data-missing="se"' in html


# -- helpers: formatting, map tables, charts ---------------------------------------------------
def test_number_formats(app):
    from riskmap.web.pages import num, pct

    with app.test_request_context("/?lang=es"):
        assert pct(0.1234) == "12.3 %" and num(1234567) == "1,234,567"
        assert pct(None) == "–" and pct(float("nan")) == "–"
    with app.test_request_context("/?lang=en"):
        assert pct(0.1234) == "12.3%" and num(1234.56, 1) == "1,234.6"


def test_layer_table_classes_and_legend():
    from riskmap.web import maps

    rows = pd.DataFrame({
        "cvegeo": [f"01{i:03d}" for i in range(10)],
        "level": ["alto"] * 3 + ["medio"] * 3 + ["bajo"] * 3 + ["sin_informacion"],
        "probability": [0.3, 0.25, 0.2, 0.15, 0.12, 0.1, 0.05, 0.04, 0.03, np.nan],
        "ci_low": [0.2] * 9 + [np.nan], "ci_high": [0.35] * 9 + [np.nan],
        "children": [100] * 10,
        "expected_child_labour": [30, 25, 20, 15, 12, 10, 5, 4, 3, np.nan]})
    values, legends = maps.layer_table(rows)
    assert values["01009"][0] == "sin_informacion" and values["01009"][6] == -1
    assert values["01009"][1] is None
    assert values["01000"][6] == len(legends["probabilidad"]) - 2  # highest class
    assert values["01008"][6] == 0
    for layer in ("probabilidad", "esperados"):
        counts = [i["count"] for i in legends[layer]]
        assert sum(counts) == 10 and legends[layer][-1]["count"] == 1
    assert [i["count"] for i in legends["nivel"]] == [3, 3, 3, 1]
    assert legends["nivel"][-1]["colour"] == maps.NO_DATA_COLOUR


def test_classify_by_upper_bounds():
    from riskmap.web.maps import class_breaks, classify

    np.testing.assert_array_equal(classify([0.1, 0.2, 0.3, np.nan], [0.15, 0.3]), [0, 1, 1, -1])
    assert class_breaks([np.nan, np.nan]) == []
    np.testing.assert_allclose(class_breaks(np.arange(1, 11), k=5), [2.8, 4.6, 6.4, 8.2, 10.0])


def test_build_map_has_no_cdn_and_optional_tiles():
    from riskmap.web.maps import build_map

    parts = build_map("x1")
    assert parts.name == "map_x1" and 'id="map_x1"' in parts.html
    assert "https://" not in parts.script + parts.html and "tileLayer" not in parts.script
    tiled = build_map("x2", tile_url="https://t.example/{z}/{x}/{y}.png", tile_attribution="T")
    assert "tileLayer" in tiled.script and "t.example" in tiled.script


def test_factor_bars_geometry():
    from riskmap.web.charts import factor_bars

    bars = factor_bars([{"covariate": "a", "label_es": "A", "domain": "trabajo", "contribution": 0.5},
                        {"covariate": "b", "label_es": "B", "domain": "educacion", "contribution": -0.25}],
                       "es", {"trabajo": "Trabajo"})
    right, left = bars["bars"]
    assert right["positive"] and right["x"] == bars["zero"]
    assert not left["positive"] and left["x"] + left["w"] == pytest.approx(bars["zero"], abs=0.2)
    assert right["w"] == pytest.approx(2 * left["w"], rel=0.01)
    assert right["domain"] == "Trabajo" and left["domain"] == "educacion"
    # The negative bar's value is printed left of the bar: it must not reach the labels.
    assert left["x"] - bars["label_w"] >= 40
    assert right["x"] + right["w"] + 40 <= bars["width"]


def test_calibration_plot_geometry():
    from riskmap.web.charts import calibration_plot

    plot = calibration_plot([{"predicted": 0.0, "observed": 0.0}, {"predicted": 0.2, "observed": 0.1}])
    assert plot["max"] == pytest.approx(0.2)
    first, second = plot["points"]
    assert (first["x"], first["y"]) == (plot["pad"], plot["size"] - plot["pad"])
    assert second["x"] == plot["size"] - plot["pad"]  # at the axis maximum
    assert second["y"] == pytest.approx((plot["size"] - plot["pad"] + plot["pad"]) / 2, abs=0.1)
    assert calibration_plot([]) is None


# -- targeting ---------------------------------------------------------------------------------
def test_targeting_exports_match_the_table(client):
    query = "edicion=2023&visitas=50&criterio=conteo&niveles=alto&niveles=medio&enviado=1"
    html = client.get(f"/focalizacion?{query}&lang=es").get_data(as_text=True)
    n_rows = html.count("<tr>") - 1  # minus the header row
    csv = client.get(f"/focalizacion.csv?{query}&lang=es")
    assert csv.status_code == 200 and csv.content_type.startswith("text/csv")
    text = csv.get_data(as_text=True).lstrip("\ufeff")
    assert text.startswith("# ") and "un establecimiento inspeccionado" in text  # units first
    table = pd.read_csv(io.StringIO(text), dtype=str, comment="#")
    assert len(table) == n_rows > 0
    assert table["Visitas"].astype(int).sum() == 50
    xlsx = client.get(f"/focalizacion.xlsx?{query}&lang=es")
    sheet = pd.read_excel(io.BytesIO(xlsx.data), sheet_name="focalizacion", dtype=str)
    assert list(sheet.columns) == list(table.columns) and len(sheet) == n_rows
    first = pd.read_excel(io.BytesIO(xlsx.data), sheet_name=0, header=None, dtype=str)
    text = " ".join(first[0].dropna())  # the first sheet states units and assumptions
    assert first[0].iloc[0] == "Unidades y supuestos" and "λ = 0.5" in text
    assert "supuesto por defecto" in text and "0.2 ×" in text


@pytest.mark.parametrize("query", ["visitas=0", "visitas=abc", "visitas=100001", "criterio=x",
                                   "niveles=rojo", "estados=99", "enfriamiento=-1",
                                   "recientes=2"])
def test_targeting_rejects_bad_form_values(client, query):
    assert client.get(f"/focalizacion?{query}").status_code == 400


# -- command line ------------------------------------------------------------------------------
def test_serve_command_builds_the_app_on_the_data_dir(fake_dir, monkeypatch):
    from click.testing import CliRunner
    from flask import Flask

    from riskmap.cli import cli

    calls = {}

    def fake_run(self, host=None, port=None, **kwargs):
        calls.update(host=host, port=port, data_dir=self.config["RISKMAP"]["data_dir"])

    monkeypatch.setattr(Flask, "run", fake_run)
    result = CliRunner().invoke(cli, ["serve", "--data-dir", str(fake_dir), "--host", "0.0.0.0",
                                      "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert calls == {"host": "0.0.0.0", "port": 8123, "data_dir": str(fake_dir)}
    assert "2017, 2023" in result.output


# -- end to end over the synthetic demo ---------------------------------------------------------
@pytest.mark.slow
def test_demo_atlas_pages_smoke(demo_dir):
    """Every page over the full demo (several editions, vintages, thousands of municipalities)."""
    from riskmap.publish.store import DataStore

    store = DataStore(demo_dir)
    names = store.edition_names()
    latest = store.load_edition(names[-1]).rows
    code = str(latest.sort_values("cvegeo")["cvegeo"].iloc[0])
    client = web_app(demo_dir).test_client()
    paths = ["/", f"/estado/{code[:2]}", f"/municipio/{code}", "/metodologia",
             f"/comparar?a={names[0]}&b={names[-1]}", "/focalizacion", "/descargas"]
    for lang in ("es", "en"):
        for path in paths:
            sep = "&" if "?" in path else "?"
            r = client.get(f"{path}{sep}lang={lang}", headers={"Accept-Encoding": "gzip"})
            assert r.status_code == 200, path
            html = gzip.decompress(r.data).decode() if r.headers.get("Content-Encoding") else \
                r.get_data(as_text=True)
            assert "Demostración con datos sintéticos" in html or "Synthetic demonstration" in html
            assert not EXTERNAL.search(html), path
    r = client.get("/", headers={"Accept-Encoding": "gzip"})
    # The national page itself stays small: the geometry comes from the cached endpoint.
    assert r.headers["Content-Encoding"] == "gzip" and len(r.data) < 200_000


def test_change_tooltips_flag_only_created_municipalities(app):
    from riskmap.web.atlas import get_atlas
    from riskmap.web.pages import _change_values

    with app.test_request_context("/?lang=es"):
        changes = get_atlas().comparison("2017", "2023").changes
        values = _change_values(changes, "2017", "2023")
    flagged = {code for code, v in values.items() if v[3]}
    assert flagged == {"22011", "07011"}  # the two splits, not every NaN "derived_from"
    assert "22001" in values["22011"][3] and "nan" not in " ".join(
        " ".join(v) for v in values.values())
    assert values["22001"][1].startswith("2017: ") and values["22001"][1].endswith(" %)")


def test_layers_map_too_few_records_as_no_information():
    """Below the minimum of census records the estimate exists but is not classified: every
    layer shows it as 'sin información', so the legends agree with the level counts."""
    from riskmap.web import maps

    rows = pd.DataFrame({
        "cvegeo": ["01001", "01002", "01003"], "level": ["alto", "bajo", "sin_informacion"],
        "probability": [0.3, 0.05, 0.4], "ci_low": [0.2, 0.03, 0.1], "ci_high": [0.35, 0.07, 0.8],
        "children": [100, 100, 10], "expected_child_labour": [30, 5, 4],
        "level_certainty": [0.9, 0.6, 0.99]})
    values, legends = maps.layer_table(rows)
    assert values["01003"][6:] == [-1, -1, -1, -1, None]
    for layer in ("probabilidad", "esperados", "incertidumbre", "certeza"):
        assert legends[layer][-1]["count"] == 1
    # certainty classes have fixed edges at 0.5, 0.8, 0.95: 0.9 -> class 2, 0.6 -> class 1
    assert values["01001"][9:] == [2, 0.9] and values["01002"][9:] == [1, 0.6]
    assert [i["high"] for i in legends["certeza"][:-1]] == [0.5, 0.8, 0.95, 1.0]
