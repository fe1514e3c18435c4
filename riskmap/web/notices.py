"""What the pages must say about the data they show: synthetic, semi-synthetic or real, and
what an imported edition lacks.

Three kinds of data reach the pages: the fully synthetic demo (a banner that it describes no
real country), semi-synthetic editions (simulated records on INEGI's real geography and
municipal shares: their own banner, plus INEGI's credit) and real editions (INEGI's credit,
no banner). Imported editions (published levels, ``kind = "imported"``) carry no model: every
page that shows one says so and names what is missing.
"""

from __future__ import annotations

import pandas as pd

from .http import current_lang


def capabilities(atlas, name: str) -> dict:
    """What edition ``name`` can show.

    Parameters
    ----------
    atlas : riskmap.web.atlas.Atlas
    name : str

    Returns
    -------
    dict
        ``name``, ``imported`` (bool) and, as booleans, whether the edition has
        ``probability``, ``interval`` (95 % limits), ``se`` (standard errors, needed to test
        changes), ``expected`` (expected children in child labour, needed to target
        inspections by count), ``children``, ``factors``, ``certainty`` (level certainty)
        and ``model`` (coefficients).
    """
    def build():
        card = atlas.card(name)
        rows = atlas.rows(name)

        def has(col: str) -> bool:
            return col in rows.columns and bool(pd.to_numeric(rows[col], errors="coerce")
                                                .notna().any())

        return {"name": name, "imported": card.get("kind") == "imported",
                "probability": has("probability"),
                "interval": has("ci_low") and has("ci_high"), "se": has("se"),
                "expected": has("expected_child_labour"), "children": has("children"),
                "factors": len(atlas.edition(name).factors) > 0,
                "certainty": has("level_certainty"),
                "model": bool(card.get("coefficients"))}

    # Scanned once per edition file, not on every page (the targeting fallback and the
    # downloads page ask for every edition).
    return dict(atlas.derived(name, "capabilities", build))


def page_context(atlas, *names: str) -> dict:
    """Banner, attribution and imported-edition notes for a page showing ``names``.

    Returns
    -------
    dict
        ``synthetic`` (fully synthetic demo data shown), ``semi_synthetic`` (semi-synthetic
        data shown, and no fully synthetic ones), ``attribution`` (the distinct attribution
        lines of the editions, in the page language, joined by " | "), ``level_rules``
        (``[{edition, text}]``: the level rule each edition's stored levels follow),
        ``imported`` (the
        :func:`capabilities` of each imported edition shown) and ``capabilities`` (those of
        the first edition).
    """
    lang = current_lang()
    names = list(dict.fromkeys(names))
    infos = [atlas.provenance(n) for n in names]
    synthetic = any(i["synthetic"] and not i["semi_synthetic"] for i in infos)
    caps = [capabilities(atlas, n) for n in names]
    return {"synthetic": synthetic,
            "semi_synthetic": not synthetic and any(i["semi_synthetic"] for i in infos),
            "attribution": " | ".join(dict.fromkeys(i["attribution"][lang] for i in infos)),
            "level_rules": [{"edition": n, "text": i["rule_text"][lang]}
                            for n, i in zip(names, infos) if i["rule_text"][lang]],
            "imported": [c for c in caps if c["imported"]],
            "capabilities": caps[0] if caps else None,
            "shown_editions": names,
            "rule_texts": list(dict.fromkeys(i["rule_text"][lang] for i in infos if
                                             i["rule_text"][lang]))}
