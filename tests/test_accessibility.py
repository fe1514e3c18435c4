"""Pages for every reader: WCAG 2.1 AA by axe-core, phones without sideways scrolling,
printing without navigation, and a level palette whose neighbours differ by 3:1.

The browser checks run headless Chromium (Debian) with axe-core (npm) over every page, at
desktop width and at phone widths; screenshots at 390 px go to test-artifacts/.
"""

from __future__ import annotations

import re
import time

import pytest

from browserkit import ROOT, axe_source, chromium, open_page, serve, shot
from webdata import build_fake_atlas

PAGES = {
    "nacional": "/",
    "estado": "/estado/22",
    "municipio": "/municipio/22006",
    "comparar": "/comparar?a=2017&b=2023",
    "focalizacion": "/focalizacion?visitas=200",
    "metodologia": "/metodologia",
    "descargas": "/descargas",
    "nacional_en": "/?lang=en&capa=probabilidad",
    "ficha_estado": "/estado/22/ficha.html",
    "ficha_municipio": "/municipio/22006/ficha.html",
    "tendencias": "/tendencias?a=2017&b=2023",
    "login": "/login",
    "metodo": "/metodologia/metodo",
}
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


# -- pure checks (no browser) -------------------------------------------------------------------
def _luminance(hex_colour: str) -> float:
    h = hex_colour.lstrip("#")
    rgb = [int(h[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    rgb = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_contrast_formula_against_known_values():
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)


def test_level_palette_neighbours_differ_by_three_to_one():
    from riskmap.web.maps import LEVEL_COLOURS

    order = ["alto", "medio", "bajo"]
    for a, b in zip(order, order[1:]):
        assert contrast(LEVEL_COLOURS[a], LEVEL_COLOURS[b]) >= 3.0, (a, b)


def test_stylesheet_repeats_the_map_palette_and_badges_are_readable():
    from riskmap.web.maps import LEVEL_COLOURS

    css = (ROOT / "riskmap" / "web" / "static" / "css" / "riskmap.css").read_text()
    for level in ("alto", "medio", "bajo"):
        match = re.search(rf"--{level}:\s*(#[0-9a-fA-F]{{6}})", css)
        assert match and match.group(1).lower() == LEVEL_COLOURS[level], level
    # badge text colours as the stylesheet sets them
    assert contrast("#ffffff", LEVEL_COLOURS["alto"]) >= 4.5
    assert contrast("#000000", LEVEL_COLOURS["medio"]) >= 4.5
    assert contrast("#1f2328", LEVEL_COLOURS["bajo"]) >= 4.5


def test_pages_set_their_language(tmp_path):
    from webdata import web_app

    client = web_app(build_fake_atlas(tmp_path)).test_client()
    for lang in ("es", "en"):
        html = client.get(f"/?lang={lang}").get_data(as_text=True)
        assert f'<html lang="{lang}">' in html


# -- the browser --------------------------------------------------------------------------------
pytestmark_browser = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from serve(build_fake_atlas(tmp_path_factory.mktemp("a11y-atlas")))


@pytest.fixture(scope="module")
def browser():
    driver = chromium()
    yield driver
    driver.quit()


def _axe(driver, source: str) -> list[dict]:
    driver.execute_script(source)
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}})"
        ".then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))))"
        ".catch(e => done([{id: 'axe-error', impact: String(e), nodes: []}]));", AXE_TAGS)


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("name", list(PAGES))
@pytest.mark.parametrize("width", [1280, 390])
def test_axe_finds_no_violation(server, browser, name, width):
    source = axe_source()
    browser.set_window_size(width, 900)
    open_page(browser, server + PAGES[name])
    violations = _axe(browser, source)
    assert violations == [], violations


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("width", [360, 390, 414])
@pytest.mark.parametrize("name", list(PAGES))
def test_no_page_scrolls_sideways_on_a_phone(server, browser, name, width):
    browser.set_window_size(width, 844)
    open_page(browser, server + PAGES[name])
    scroll, client = browser.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    if width == 390:
        shot(browser, f"phone_{name}")
    assert scroll <= client, f"{name} is {scroll}px wide in a {client}px viewport"


@pytest.mark.browser
@pytest.mark.slow
def test_national_page_on_a_phone_shows_the_map_first(server, browser):
    browser.set_window_size(390, 844)
    open_page(browser, server + "/")
    top_map, panel_open, top_form = browser.execute_script(
        "const m = document.querySelector('.mapbox').getBoundingClientRect().top;"
        "const d = document.querySelector('details.controls-panel');"
        "return [m, d.open, d.getBoundingClientRect().top];")
    assert top_map < 844 * 0.5          # the map starts in the upper half of the first screen
    assert not panel_open and top_form > top_map


@pytest.mark.browser
@pytest.mark.slow
def test_touch_targets_are_large_enough_on_a_phone(server, browser):
    browser.set_window_size(390, 844)
    open_page(browser, server + "/estado/22")
    small = browser.execute_script(
        "return Array.from(document.querySelectorAll('nav a, button, select, input'))"
        ".filter(e => e.offsetParent !== null && e.type !== 'hidden')"
        ".map(e => [e.outerHTML.slice(0, 60), e.getBoundingClientRect().height])"
        ".filter(p => p[1] < 44);")
    assert small == []


@pytest.mark.browser
@pytest.mark.slow
def test_print_hides_navigation_and_keeps_edition_and_attribution(server, browser):
    open_page(browser, server + "/estado/22?lang=es")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        nav, form, footer = browser.execute_script(
            "const vis = s => { const e = document.querySelector(s);"
            " return !!e && getComputedStyle(e).display !== 'none'; };"
            "return [vis('.top nav'), vis('form.controls'), "
            "document.querySelector('.print-only').innerText];")
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    assert not nav and not form
    assert "2023" in footer and "Regla de clasificación" in footer


@pytest.mark.browser
@pytest.mark.slow
def test_every_municipality_is_reachable_from_the_keyboard(server, browser):
    """The national page's text alternative links each state, and each state page lists
    every municipality as a link: no polygon has to be clicked."""
    open_page(browser, server + "/")
    states = browser.execute_script(
        "return Array.from(document.querySelectorAll('details.textalt a')).map(a => a.href)")
    assert len(states) == 4
    found = set()
    for url in states:
        open_page(browser, url)
        found |= set(browser.execute_script(
            "return Array.from(document.querySelectorAll('table.sortable a'))"
            ".map(a => a.pathname.split('/').pop())"))
    assert len(found) == 42


@pytest.mark.browser
@pytest.mark.slow
def test_outcome_pages_behind_the_login_pass_axe(tmp_path_factory, browser):
    """/resultados, the signed-in targeting page, saved worklists and /usuarios (after signing
    in through the form) have no violation, on a phone too."""
    from outcome_helpers import csv_bytes, visit_rows
    from riskmap.outcomes import db, users, visits, worklists

    source = axe_source()
    data = build_fake_atlas(tmp_path_factory.mktemp("a11y-outcomes"))
    engine = db.get_engine(db.database_url({"data_dir": str(data)}))
    ana = users.add_user(engine, "ana", "inspector", "a11y password 1")
    users.add_user(engine, "root", "admin", "a11y password 2")
    visits.import_bytes(engine, csv_bytes(visit_rows(120, codes=("22001", "07001", "12003"))),
                        "v.csv", "ana")
    worklists.save(engine, ana, "Chiapas <alto>", "edicion=2023&visitas=50&estados=07", "2023")
    pages = {"ana": ("/resultados?edicion=2023", "/focalizacion?visitas=50",
                     "/focalizacion/guardadas"),
             "root": ("/usuarios",)}
    for url in serve(data):
        for name, paths in pages.items():
            browser.set_window_size(1280, 900)
            browser.get(url + "/login?lang=es")
            browser.find_element("name", "usuario").send_keys(name)
            browser.find_element("name", "contrasena").send_keys(
                "a11y password 1" if name == "ana" else "a11y password 2")
            browser.find_element("css selector", "form button[type=submit]").click()
            deadline = time.monotonic() + 20
            while "/login" in browser.current_url and time.monotonic() < deadline:
                time.sleep(0.1)  # the sign-in answers with a redirect
            for width in (1280, 390):
                browser.set_window_size(width, 900)
                for path in paths:
                    open_page(browser, url + path)
                    assert path.split("?")[0] in browser.current_url  # not sent to /login
                    assert _axe(browser, source) == [], path
                    scroll, client = browser.execute_script(
                        "return [document.documentElement.scrollWidth,"
                        " document.documentElement.clientWidth]")
                    assert scroll <= client, path
            if name == "ana":
                shot(browser, "phone_resultados")
            browser.delete_all_cookies()
    db.dispose_all()
