"""Translations: the English catalogue covers every string of the templates and views, the
compiled catalogue matches its source, placeholders survive, English pages carry no Spanish
interface text, and Spanish is the default."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po


ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "riskmap" / "web" / "translations"
EN_PO = TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po"
EN_MO = TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.mo"


def _source_messages() -> set[str]:
    """Every translatable string in the code and templates, extracted as babel.cfg says."""
    from babel.messages.frontend import parse_mapping_cfg

    with open(ROOT / "babel.cfg", encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f)
    keywords = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=keywords):
        found.add(message if isinstance(message, str) else message[0])
    return found


@pytest.fixture(scope="module")
def catalogue():
    with open(EN_PO, "rb") as f:
        return read_po(f, locale="en")


def test_every_string_has_an_english_translation(catalogue):
    missing = [m for m in _source_messages()
               if m not in catalogue or not catalogue[m].string]
    assert missing == [], f"untranslated (run the extraction and translate): {missing}"


def test_compiled_catalogue_matches_source(catalogue):
    with open(EN_MO, "rb") as f:
        compiled = read_mo(f)
    po = {m.id: m.string for m in catalogue if m.id}
    mo = {m.id: m.string for m in compiled if m.id}
    assert mo == po


def test_placeholders_survive_translation(catalogue):
    for message in catalogue:
        if not message.id:
            continue
        wanted = sorted(re.findall(r"%\((\w+)\)s", message.id))
        assert sorted(re.findall(r"%\((\w+)\)s", message.string)) == wanted, message.id


SPANISH_UI = ("Mapa nacional", "Metodología", "Descargas", "Comparar ediciones",
              "Saltar al contenido", "Nivel de riesgo", "Edición", "Municipios por nivel",
              "Sin información", "Factores asociados", "Limitaciones")


@pytest.mark.parametrize("path", ["/", "/estado/22", "/municipio/22001", "/metodologia",
                                  "/comparar", "/focalizacion", "/descargas"])
def test_english_pages_have_no_spanish_interface_text(client, path):
    html = client.get(path, query_string={"lang": "en"}).get_data(as_text=True)
    text = re.sub(r"<script.*?</script>", "", html, flags=re.S)
    # Data (names, edition card texts) stay as published; the interface must be English.
    leftovers = [s for s in SPANISH_UI if s in text]
    assert leftovers == []
    assert "National map" in text and "Methodology" in text


def test_spanish_is_the_default(client):
    client.delete_cookie("lang")
    html = client.get("/", headers={"Accept-Language": "fr-FR"}).get_data(as_text=True)
    assert '<html lang="es">' in html and "Mapa nacional" in html


def test_tooltip_labels_follow_the_language(client):
    import json

    for lang, word in (("es", "Sin información"), ("en", "No information")):
        html = client.get("/", query_string={"lang": lang}).get_data(as_text=True)
        config = json.loads(re.search(r'id="riskmap-config">(.*?)</script>', html, re.S).group(1))
        assert config["labels"]["sin_informacion"] == word
        assert config["locale"] == ("es-MX" if lang == "es" else "en-US")
