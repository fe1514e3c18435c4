"""Attribution and provenance texts (Spanish and English) for exports, the API and web pages.

Real Mexican data come under INEGI's "Términos de Libre Uso de la Información": credit INEGI as
the source, say the data were transformed, and never suggest INEGI endorses the product.
Synthetic demo data carry a banner that they represent no real country, so a screenshot or a
downloaded file cannot be mistaken for official figures.
"""

from __future__ import annotations

import json

SYNTHETIC_ES = "DATOS SINTÉTICOS DE DEMOSTRACIÓN — no representan a ningún país real"
SYNTHETIC_EN = "SYNTHETIC DEMONSTRATION DATA — they do not represent any real country"
#: The one wording of INEGI's credit (every page, export and card that shows INEGI data).
INEGI_CREDIT = {"es": "Datos transformados por riskmap; INEGI no avala este producto.",
                "en": "Data transformed by riskmap; INEGI does not endorse this product."}


def _sources(card: dict, lang: str = "es") -> list[str]:
    """The sources of a card as readable texts (never a raw dict or list repr).

    Sources are texts, or dicts as the pipeline and the demo store them: ``name`` (and
    ``kind``, ``note_es`` / ``note_en``, ``url``...). A dict without a name is described by
    its note (in ``lang`` when available), else its title, kind or URL.
    """
    sources = card.get("sources") or []
    if isinstance(sources, (str, dict)):
        sources = [sources]
    out = []
    for s in sources:
        if isinstance(s, dict):
            keys = ("name", "title", f"note_{lang}", "note", "notes", "note_es", "note_en",
                    "description", "kind", "url")
            text = next((str(s[k]).strip() for k in keys
                         if isinstance(s.get(k), (str, int, float)) and str(s[k]).strip()), "")
        else:
            text = "" if s is None else str(s).strip()
        if text:
            out.append(text)
    return out


def attribution(card: dict, lang: str = "es") -> str:
    """The attribution line an edition's outputs must carry.

    Parameters
    ----------
    card : dict
        The edition's model card (uses ``attribution`` {es, en} when the card stores one,
        else ``synthetic`` and ``sources``).
    lang : {"es", "en"}

    Returns
    -------
    str
        For synthetic editions the demonstration banner (followed by the INEGI credit when
        a source names INEGI, e.g. real boundaries under simulated records); for imported
        lists :func:`imported_attribution`; otherwise
        ``"Fuente: INEGI (<sources>). Datos transformados por riskmap; INEGI no avala este
        producto."`` (or its English version).
    """
    if card.get("kind") == "imported" and not card.get("synthetic"):
        # Recomputed, not read: cards written before the list's own source was credited
        # stored "Fuente: INEGI (<the list>)".
        return imported_attribution(card, lang)
    stored = card.get("attribution")
    if isinstance(stored, dict) and isinstance(stored.get(lang), str) and stored[lang].strip():
        # Written by the producer that knows which parts are real (e.g. `riskmap simulate`:
        # INEGI geography and shares, simulated records); it takes precedence.
        return stored[lang]
    en = lang == "en"
    sources = _sources(card, lang)
    if card.get("synthetic"):
        banner = SYNTHETIC_EN if en else SYNTHETIC_ES
        # Semi-synthetic editions (simulated records on INEGI's real geography) still owe
        # INEGI the credit for the part that is real.
        real = [s for s in sources if "INEGI" in s.upper()]
        if not real:
            return banner
        return f"{banner}. {inegi_attribution(real, lang)}"
    return inegi_attribution([s for s in sources if s.strip().upper() != "INEGI"], lang)


def imported_attribution(card: dict, lang: str = "es") -> str:
    """Attribution of an imported (published) list: its publisher, then its boundaries.

    The list's sources are quoted verbatim after "Fuente:" ("Source:"), which is not
    repeated when a source already starts with it; INEGI is credited, with the one wording
    of this module, only for boundaries that name INEGI as their producer (the source with
    ``role = "boundaries"``; cards without one sit on INEGI's Marco Geoestadístico)::

        Fuente: STPS, MIRTI 2017. Límites municipales: INEGI, Marco Geoestadístico.
        Datos transformados por riskmap; INEGI no avala este producto.
    """
    en = lang == "en"
    raw = card.get("sources") or []
    raw = [raw] if isinstance(raw, (str, dict)) else list(raw)
    boundaries = next((s for s in raw if isinstance(s, dict) and s.get("role") == "boundaries"),
                      None)
    listed = _sources({"sources": [s for s in raw if s is not boundaries]}, lang)
    label = "Source" if en else "Fuente"
    parts = []
    if listed:
        text = "; ".join(listed)
        prefixed = text.split(":", 1)[0].strip().lower() in ("fuente", "fuentes", "source",
                                                             "sources")
        parts.append(text.rstrip(".") if prefixed else f"{label}: {text.rstrip('.')}")
    producer = str(boundaries.get("name", "")).strip() if boundaries else "INEGI"
    if producer:
        word = "Municipal boundaries" if en else "Límites municipales"
        parts.append(f"{word}: {producer.rstrip('.')}")
    if "INEGI" in producer.upper():
        parts.append(INEGI_CREDIT["en" if en else "es"].rstrip("."))
    return ". ".join(parts) + "."


def inegi_attribution(sources=(), lang: str = "es") -> str:
    """``"Fuente: INEGI (<sources>). <credit>"``: the attribution INEGI's terms of use ask for.

    Parameters
    ----------
    sources : sequence of str
        The INEGI products used (shown in parentheses; none = just "INEGI").
    lang : {"es", "en"}
    """
    detail = f" ({'; '.join(sources)})" if sources else ""
    if lang == "en":
        return f"Source: INEGI{detail}. {INEGI_CREDIT['en']}"
    return f"Fuente: INEGI{detail}. {INEGI_CREDIT['es']}"


def source_text(card: dict, lang: str = "es") -> str:
    """Attribution followed by the data sources it does not already name.

    The one-cell provenance of a flat table (the ``source`` column of CSV and XLSX exports):
    for synthetic editions the banner alone would not say which files the figures come from.
    """
    text = attribution(card, lang)
    missing = [s for s in _sources(card, lang) if s not in text]
    if not missing:
        return text
    label = "Sources" if lang == "en" else "Fuentes"
    return f"{text}. {label}: {'; '.join(missing)}"


def rule_text(rule, lang: str = "es") -> str:
    """One-line description of the classification rule stored in a card.

    Accepts the rule as stored by the pipeline (``classify.describe_rule``: a dict with
    ``text`` {es, en}), a dict with ``description_es`` / ``description_en``, or a string.
    """
    if rule is None:
        return ""
    if isinstance(rule, str):
        return rule
    if isinstance(rule, dict):
        text = rule.get("text")
        if isinstance(text, dict) and text.get(lang):
            return str(text[lang])
        for key in (f"description_{lang}", "description", "description_es", "text"):
            value = rule.get(key)
            if isinstance(value, str) and value:
                extra = rule.get("min_records")
                if extra is not None and str(extra) not in value:
                    word = "minimum records" if lang == "en" else "mínimo de registros"
                    value = f"{value} ({word}: {extra})"
                return value
        if rule.get("name"):
            return str(rule["name"])
    return json.dumps(rule, ensure_ascii=False, default=str)


def provenance(card: dict) -> dict:
    """The provenance block shown with every output of an edition.

    Parameters
    ----------
    card : dict
        The edition's model card.

    Returns
    -------
    dict
        ``edition``, ``kind``, ``year``, ``vintage``, ``sources`` (list of source names),
        ``synthetic`` (bool), ``semi_synthetic`` (bool: simulated records on real
        geography), ``rule`` (as stored), ``rule_text`` {es, en}, ``attribution`` {es, en},
        ``created`` (UTC ISO string or None).
    """
    return {
        "edition": str(card.get("edition", "")),
        "kind": card.get("kind", "modelled"),
        "year": card.get("year"),
        "vintage": card.get("vintage"),
        "sources": _sources(card),
        "synthetic": bool(card.get("synthetic", False)),
        "semi_synthetic": bool(card.get("synthetic", False) and card.get("semi_synthetic", False)),
        "rule": card.get("rule"),
        "rule_text": {"es": rule_text(card.get("rule"), "es"),
                      "en": rule_text(card.get("rule"), "en")},
        "attribution": {"es": attribution(card, "es"), "en": attribution(card, "en")},
        "created": card.get("created"),
    }


def provenance_text(card: dict, lang: str = "es") -> str:
    """Provenance as plain text lines (for LEEME.txt and spreadsheet metadata)."""
    info = provenance(card)
    en = lang == "en"
    labels = (("Edition", "Sources", "Synthetic data", "Classification rule", "Created",
               "Attribution") if en else
              ("Edición", "Fuentes", "Datos sintéticos", "Regla de clasificación", "Creado",
               "Atribución"))
    yes, no = ("yes", "no") if en else ("sí", "no")
    values = (info["edition"], "; ".join(info["sources"]) or "-",
              yes if info["synthetic"] else no, info["rule_text"][lang] or "-",
              info["created"] or "-", info["attribution"][lang])
    return "\n".join(f"{k}: {v}" for k, v in zip(labels, values))
