"""Headless Chromium over the real app (fake atlas): the maps draw with no network beyond the
service, the console stays clean, and the interactive bits (layer switch, search, synced maps)
update the page and its permalink. Screenshots go to test-artifacts/ for a human look.

Uses the Debian chromium and chromedriver (no browser download); skipped when absent.
"""

from __future__ import annotations

import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from browserkit import ARTIFACTS, chromium, serve
from webdata import EVIL_NAME, build_fake_atlas

pytestmark = [pytest.mark.browser, pytest.mark.slow]

def _serve(data_dir):
    """Serve the app over ``data_dir`` on a free loopback port in a thread; yield its URL."""
    yield from serve(data_dir)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from _serve(build_fake_atlas(tmp_path_factory.mktemp("browser-atlas")))


@pytest.fixture(scope="module")
def demo_server(demo_dir):
    """The service over the full synthetic demo atlas (built once per session)."""
    yield from _serve(demo_dir)


@pytest.fixture(scope="module")
def browser():
    driver = chromium()
    yield driver
    driver.quit()


def _open(driver, url: str, timeout: float = 20.0) -> int:
    """Load ``url`` and wait until the glue script says every map has drawn."""
    driver.get(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.execute_script("return window.riskmapReady === true"):
            return int(driver.execute_script("return window.riskmapFeatures"))
        time.sleep(0.1)
    raise AssertionError(f"maps never finished drawing on {url}")


def _severe(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _painted_pixels(driver) -> int:
    """Non-transparent pixels on the map canvases (proof that polygons were drawn)."""
    return driver.execute_script("""
        let n = 0;
        document.querySelectorAll('.leaflet-container canvas').forEach(c => {
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          for (let i = 3; i < d.length; i += 16) { if (d[i] > 0) { n++; } }
        });
        return n;""")


def _shot(driver, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


@pytest.mark.parametrize("path,features,name", [
    ("/", 42, "nacional"),
    ("/?edicion=2017&capa=probabilidad&lang=en", 40, "nacional_2017_en"),
    ("/comparar?a=2017&b=2023", 42 + 40 + 42, "comparar"),
    ("/focalizacion?visitas=200", 42, "focalizacion"),
    ("/estado/22", 11, "estado"),
    ("/municipio/22006", 42, "municipio"),
])
def test_maps_draw_without_console_errors(server, browser, path, features, name):
    browser.get_log("browser")  # drop what earlier pages logged
    drawn = _open(browser, server + path)
    _shot(browser, name)
    assert drawn == features
    assert _painted_pixels(browser) > 300
    assert _severe(browser) == []


@pytest.mark.parametrize("path,features", [("/estado/07?capa=esperados", 11),
                                           ("/comparar?a=2017&b=2023", 42 + 40 + 42)])
def test_cached_pages_draw_with_hashed_scripts(server, browser, path, features):
    """Served again from the response cache, a page allows its inline map scripts by hash
    (riskmap.web.cache): the maps still draw and no CSP violation is logged."""
    for _ in range(3):  # rendered, then from the cache, then by the fast path
        browser.get_log("browser")
        assert _open(browser, server + path) == features
        assert _painted_pixels(browser) > 300
        assert _severe(browser) == []


def test_layer_switch_updates_legend_and_permalink(server, browser):
    from selenium.webdriver.support.ui import Select

    _open(browser, server + "/")
    Select(browser.find_element("id", "capa")).select_by_value("incertidumbre")
    assert parse_qs(urlsplit(browser.current_url).query)["capa"] == ["incertidumbre"]
    visible = browser.execute_script(
        "return [...document.querySelectorAll('[data-legend]')].filter(e => !e.hidden)"
        ".map(e => e.dataset.legend)")
    assert visible == ["incertidumbre"]
    _shot(browser, "capa_incertidumbre")


def test_search_selects_municipality_without_accents(server, browser):
    _open(browser, server + "/")
    box = browser.find_element("id", "buscar")
    box.send_keys("penon")
    buttons = browser.find_elements("css selector", "#resultados button")
    assert [b.text for b in buttons] == ["Peñón Blanco (Querétaro, 22003)"]
    buttons[0].click()
    assert parse_qs(urlsplit(browser.current_url).query)["sel"] == ["22003"]
    link = browser.find_element("css selector", "#seleccion a")
    assert "/municipio/22003" in link.get_attribute("href")


def test_comparison_maps_move_together(server, browser):
    _open(browser, server + "/comparar?a=2017&b=2023")
    browser.execute_script("""
        const cfg = JSON.parse(document.getElementById('riskmap-config').textContent);
        window.riskmapMaps = cfg.maps.map(m => window[m.var]);
        window.riskmapMaps[1].setView([17.5, -98.5], 8, {animate: false});""")
    time.sleep(0.4)  # longer than a Leaflet zoom animation: nothing may move the maps back
    centres = browser.execute_script(
        "return window.riskmapMaps.map(m => [m.getCenter().lat, m.getCenter().lng, m.getZoom()])")
    assert len(centres) == 3
    for lat, lng, zoom in centres:
        assert zoom == 8
        assert lat == pytest.approx(17.5, abs=1e-6) and lng == pytest.approx(-98.5, abs=1e-6)


def test_hostile_name_never_executes(server, browser):
    browser.execute_script("window.alerted = false; window.alert = () => { window.alerted = true; };")
    _open(browser, server + "/municipio/22006")
    assert browser.execute_script("return window.alerted === true") is False
    assert browser.find_element("tag name", "h1").text.startswith('<script>alert("x")</script>')


def test_no_request_leaves_the_service(server, browser):
    _open(browser, server + "/comparar")
    hosts = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => new URL(e.name).host)")
    assert hosts and set(hosts) == {urlsplit(server).netloc}


def test_municipality_map_stays_on_the_municipality(server, browser):
    _open(browser, server + "/municipio/22006")
    time.sleep(0.4)  # a stray zoom animation ending now would reset the view
    zoom, inside = browser.execute_script("""
        const cfg = JSON.parse(document.getElementById('riskmap-config').textContent);
        const m = window[cfg.maps[0].var];
        return [m.getZoom(), m.getBounds().contains([17.25, -97.25])];""")
    assert zoom >= 7 and inside  # 22006 is the square lon -97.5..-97, lat 17..17.5


def test_tooltip_shows_hostile_name_as_text(server, browser):
    _open(browser, server + "/?lang=es")
    tip = browser.execute_script("""
        const cfg = JSON.parse(document.getElementById('riskmap-config').textContent);
        let lyr = null;
        window[cfg.maps[0].var].eachLayer(l => { if (l.feature && l.feature.properties.cvegeo === '22006') lyr = l; });
        lyr.openTooltip(lyr.getBounds().getCenter());
        const el = document.querySelector('.leaflet-tooltip');
        return [el.textContent, el.querySelectorAll('script').length];""")
    text, scripts = tip
    assert scripts == 0
    assert text.startswith(EVIL_NAME)
    assert "Querétaro · 22006" in text and "Probabilidad:" in text and "[" in text


def test_edition_choice_reloads_as_permalink(server, browser):
    from selenium.webdriver.support.ui import Select

    _open(browser, server + "/?lang=es")
    Select(browser.find_element("css selector", "select[name=edicion]")).select_by_value("2017")
    deadline = time.monotonic() + 10
    while "edicion=2017" not in browser.current_url and time.monotonic() < deadline:
        time.sleep(0.1)
    assert parse_qs(urlsplit(browser.current_url).query)["edicion"] == ["2017"]
    assert _open(browser, browser.current_url) == 40  # the 2015 geography of edition 2017


@pytest.mark.parametrize("path,name", [("/", "demo_nacional"), ("/comparar", "demo_comparar"),
                                       ("/focalizacion", "demo_focalizacion"),
                                       ("/tendencias", "demo_tendencias")])
def test_full_demo_maps_draw_without_console_errors(demo_dir, demo_server, browser, path, name):
    from riskmap.web.atlas import Atlas

    atlas = Atlas(demo_dir)
    a, b = atlas.names()[-2:]
    n_b, n_a = len(atlas.rows(b)), len(atlas.rows(a))
    # The comparison draws the change map and the level map on b's geography, and a's map.
    # The trend map follows the oldest edition's geography (the default pair: oldest-latest).
    expected = {"/": n_b, "/comparar": 2 * n_b + n_a, "/focalizacion": n_b,
                "/tendencias": len(atlas.rows(atlas.names()[0]))}[path]
    browser.get_log("browser")
    drawn = _open(browser, demo_server + path, timeout=60)
    _shot(browser, name)
    assert drawn == expected and n_b > 2000
    assert _painted_pixels(browser) > 5000
    assert _severe(browser) == []


def test_state_filter_zooms_and_counts_the_state(server, browser):
    from selenium.webdriver.support.ui import Select

    _open(browser, server + "/?lang=es")
    assert browser.find_element("id", "conteo-estado").is_displayed() is False
    Select(browser.find_element("id", "estado")).select_by_value("22")
    assert parse_qs(urlsplit(browser.current_url).query)["estado"] == ["22"]
    inside, zoom = browser.execute_script("""
        const cfg = JSON.parse(document.getElementById('riskmap-config').textContent);
        const m = window[cfg.maps[0].var];
        const b = cfg.states['22'].bounds;
        return [m.getBounds().pad(0.05).contains(b), m.getZoom()];""")
    assert inside and zoom >= 6
    box = browser.find_element("id", "conteo-estado")
    assert box.is_displayed() and "Querétaro" in box.text
    shown = {el.get_attribute("data-level"): int(el.text.replace(",", ""))
             for el in box.find_elements("css selector", "[data-level]")}
    assert sum(shown.values()) == 11 and shown["sin_informacion"] == 1  # 22011 has no data
    # The permalink restores the state: reloading keeps the zoom and the counts.
    _open(browser, browser.current_url)
    assert browser.find_element("id", "conteo-estado").is_displayed()
    assert Select(browser.find_element("id", "estado")).first_selected_option.text == "Querétaro"


@pytest.fixture(scope="module")
def imported_server(tmp_path_factory):
    """Fake atlas whose 2023 edition is imported without expected counts or intervals."""
    import numpy as np
    from werkzeug.serving import make_server

    from riskmap.publish.store import DataStore
    from riskmap.web import create_app

    path = build_fake_atlas(tmp_path_factory.mktemp("imported-atlas"), imported_2023=True)
    store = DataStore(path)
    ed = store.load_edition("2023")
    ed.rows[["expected_child_labour", "ci_low", "ci_high"]] = np.nan
    store.publish_edition(ed)
    srv = make_server("127.0.0.1", 0, create_app({"data_dir": str(path), "auto_demo": False}),
                      threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    thread.join(timeout=5)


def test_imported_edition_missing_layers(imported_server, browser):
    from selenium.webdriver.support.ui import Select

    browser.get_log("browser")
    assert _open(browser, imported_server + "/?capa=esperados&lang=es") == 42
    _shot(browser, "importada_capa_sin_datos")
    note = browser.find_element("css selector", "[data-missing-layer]")
    assert note.is_displayed()
    select = Select(browser.find_element("id", "capa"))
    disabled = {o.get_attribute("value") for o in select.options if not o.is_enabled()}
    # the current (empty) layer stays selectable; an imported list has no level certainty
    assert disabled == {"incertidumbre", "certeza"}
    select.select_by_value("nivel")
    assert not note.is_displayed()
    assert _severe(browser) == []


def test_certainty_layer_colours_and_tooltip(server, browser):
    """The certeza layer colours each municipality by its fixed certainty class and the
    tooltip gives the certainty, flagged below 80 %."""
    _open(browser, server + "/?capa=certeza&lang=es")
    got = browser.execute_script("""
        const cfg = JSON.parse(document.getElementById('riskmap-config').textContent);
        const spec = cfg.maps[0];
        const out = [];
        window[spec.var].eachLayer(l => {
          if (!l.feature) return;
          const v = spec.values[l.feature.properties.cvegeo];
          if (!v || v[9] < 0) return;
          if (out.some(o => (o[3] < 0.8) === (v[10] < 0.8))) return;  // one of each kind
          l.openTooltip(l.getBounds().getCenter());
          const tip = l.getTooltip().getElement().textContent;
          out.push([l.options.fillColor, spec.classColours.certeza[v[9]], tip, v[10]]);
          l.closeTooltip();
        });
        return out;""")
    assert len(got) == 2  # one certain and one uncertain municipality
    for fill, colour, tip, certainty in got:
        assert fill == colour
        assert "Certeza del nivel:" in tip
        assert ("(incierto)" in tip) == (certainty < 0.8)
    _shot(browser, "capa_certeza")


def test_outcomes_page_after_login_draws_the_visited_map(tmp_path_factory, browser):
    """Sign in through the form (CSRF token included), upload nothing, see the field page."""
    from outcome_helpers import csv_bytes, visit_rows
    from riskmap.outcomes import db, users, visits

    data = build_fake_atlas(tmp_path_factory.mktemp("browser-outcomes"))
    engine = db.get_engine(db.database_url({"data_dir": str(data)}))
    users.add_user(engine, "ana", "inspector", "browser password 1")
    visits.import_bytes(engine, csv_bytes(visit_rows(120, codes=("22001", "07001", "12003"))),
                        "v.csv", "ana")
    for url in _serve(data):
        browser.get(url + "/resultados")
        assert "/login" in browser.current_url
        browser.find_element("name", "usuario").send_keys("ana")
        browser.find_element("name", "contrasena").send_keys("browser password 1")
        browser.find_element("css selector", "form button[type=submit]").click()
        browser.get_log("browser")
        drawn = _open(browser, url + "/resultados?edicion=2023")
        _shot(browser, "resultados")
        assert drawn == 42 and _painted_pixels(browser) > 300
        assert _severe(browser) == []
        assert "λ" in browser.page_source
    db.dispose_all()
