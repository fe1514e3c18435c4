"""Printable fact sheets (fichas) of a state or a municipality, as PDF.

State commissions (CITI) and municipal authorities work from printed fichas, the way MIRTI
itself is distributed: a map of levels, the counts, the main associated factors, the list of
municipalities by level, the history across editions, the rule, the sources and the
attribution. A ficha is an HTML page (``templates/ficha.html``) with a static SVG map drawn on
the server (:mod:`riskmap.web.svgmap`), turned into PDF by WeasyPrint. The page routes and
``riskmap ficha`` share :func:`ficha_pdf`, so the file is the same from both; the service
keeps each PDF in the Atlas' per-edition cache.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
from flask import Blueprint, Response, render_template, request

from ..errors import NotFound, Unavailable
from ..model.levels import LEVELS
from ..jsonable import jsonable
from . import notices, params
from .http import current_lang
from ..model.factors import describe_factor
from .atlas import _covariate_labels, get_atlas
from .maps import LEVEL_COLOURS
from .svgmap import level_map, locator_map
from .trends import municipal

bp = Blueprint("fichas", __name__)

#: How many associated factors a ficha lists.
TOP_FACTORS = 6


def _counts(rows: pd.DataFrame) -> dict[str, int]:
    counts = rows["level"].value_counts()
    return {lv: int(counts.get(lv, 0)) for lv in LEVELS}


def _weighted_rate(rows: pd.DataFrame) -> float | None:
    """Children-weighted mean probability of ``rows`` (None without estimates)."""
    ok = rows["probability"].notna() & rows["children"].notna()
    weight = rows.loc[ok, "children"].astype(float)
    if weight.sum() <= 0:
        return None
    return float((rows.loc[ok, "probability"] * weight).sum() / weight.sum())


def _state_factors(atlas, name: str, rows: pd.DataFrame, lang: str) -> list[dict]:
    """The state's associated factors: children-weighted mean municipal contributions."""
    edition = atlas.edition(name)
    fac = edition.factors
    if fac is None or len(fac) == 0:
        return []
    weights = rows.set_index("cvegeo")["children"].astype(float)
    fac = pd.DataFrame(fac)
    fac = fac[fac["cvegeo"].isin(weights.index)].copy()
    if fac.empty:
        return []
    fac["w"] = fac["cvegeo"].map(weights).fillna(0.0)
    out = []
    for (cov, domain), grp in fac.groupby(["covariate", "domain"], sort=False):
        total = grp["w"].sum()
        if total <= 0:
            continue
        out.append({"covariate": cov, "domain": domain,
                    "contribution": float((grp["contribution"] * grp["w"]).sum() / total),
                    "municipal_mean": float((grp["municipal_mean"] * grp["w"]).sum() / total),
                    "national_mean": float(grp["national_mean"].iloc[0])})
    return label_factors(out, edition.card, lang)


def _by_domain(factors: list[dict], domains: dict) -> list[dict]:
    """Factors grouped by policy domain, domains by their summed positive contribution."""
    groups: dict[str, dict] = {}
    for f in factors:
        key = f.get("domain") or ""
        g = groups.setdefault(key, {"domain": key, "label": domains.get(key, key),
                                    "total": 0.0, "factors": []})
        g["factors"].append(f)
        g["total"] += max(float(f["contribution"]), 0.0)
    return sorted(groups.values(), key=lambda g: -g["total"])


def _context(atlas, name: str, lang: str) -> dict:
    prov = atlas.provenance(name)
    edition = atlas.edition(name)
    national = atlas.rows(name)
    return {"edition": name, "lang": lang, "prov": prov, "vintage": edition.vintage,
            "rule_text": prov["rule_text"][lang], "attribution": prov["attribution"][lang],
            "national_counts": _counts(national), "national_total": len(national),
            "national_rate": edition.national_rate, "national_mean": _weighted_rate(national),
            "levels": LEVELS, "level_colours": LEVEL_COLOURS,
            "generated": datetime.now(timezone.utc).date().isoformat(),
            **notices.page_context(atlas, name)}


def state_context(atlas, name: str, cve_ent: str, lang: str) -> dict:
    """Everything a state ficha shows.

    Raises
    ------
    NotFound
        Unknown edition or state (the message lists the states of the edition).
    """
    states = atlas.states(atlas.edition(name).vintage)
    state = next((s for s in states if s["cve_ent"] == cve_ent), None)
    if state is None:
        raise NotFound(f"state {cve_ent!r} is not in edition {name}",
                       errors=["cve_ent: one of " + ", ".join(s["cve_ent"] for s in states)])
    rows = atlas.rows(name, cve_ent)
    geo = atlas.edition(name).rows
    geo = geo.loc[geo["cve_ent"] == cve_ent, ["cvegeo", "nom_mun", "level", "geometry"]]
    order = {lv: i for i, lv in enumerate(LEVELS)}
    listing = rows.assign(_o=rows["level"].map(order)).sort_values(
        ["_o", "probability", "nom_mun"], ascending=[True, False, True], na_position="last")
    by_level = [{"level": lv, "rows": [clean_row(r) for r in grp.to_dict("records")]}
                for lv, grp in listing.groupby("_o", sort=True)
                for lv in [LEVELS[int(lv)]]]
    factors = _state_factors(atlas, name, rows, lang)
    top = sorted(factors, key=lambda f: -f["contribution"])[:TOP_FACTORS]
    history = []
    for other in atlas.names():
        other_rows = atlas.derived(other, "level_table", lambda other=other: atlas.store.load_table(
            other, ["cve_ent", "level", "probability", "children"]))
        part = other_rows[other_rows["cve_ent"] == cve_ent]
        if len(part):
            history.append({"edition": other, "counts": _counts(part), "total": len(part),
                            "rate": _weighted_rate(part),
                            "rule": atlas.provenance(other)["rule_text"][lang]})
    title = f"{state['nom_ent']}: {name}"
    return {**_context(atlas, name, lang), "kind": "estado", "state": state,
            "counts": _counts(rows), "total": len(rows), "state_mean": _weighted_rate(rows),
            "map_svg": level_map(geo, title=title, label_level=_level_word),
            "domains": _by_domain(top, _domain_labels(lang)), "by_level": by_level,
            "history": history, "trend": state_trend(atlas, cve_ent)}


def state_trend(atlas, cve_ent: str) -> dict | None:
    """The state's decomposition of the change between the oldest and the latest modelled
    editions (docs/METHOD.md §8), with intervals and the generated sentences; None when it
    cannot be computed (fewer than two modelled editions, no census records)."""
    from flask_babel import gettext

    from .trends import default_trend, sentences

    found = default_trend(atlas)
    if found is None:
        return None
    a, b, trend = found
    hit = trend.states[trend.states["unit"] == cve_ent]
    if hit.empty:
        return None
    row = hit.iloc[0]
    place = gettext("la tasa de %(state)s", state=row["name"])
    return {"a": a, "b": b, "row": {k: jsonable(v) for k, v in row.to_dict().items()},
            "sentences": sentences(trend, row, place, _covariate_labels(atlas.card(b)))}


def municipality_context(atlas, name: str, cvegeo: str, lang: str) -> dict:
    """Everything a municipal ficha shows (NotFound for an unknown code)."""
    info = atlas.municipality(name, cvegeo)
    geo = atlas.edition(name).rows
    here = geo.loc[geo["cvegeo"] == str(cvegeo)]
    if here.empty:
        raise NotFound(f"municipality {cvegeo!r} is not in edition {name}")
    shape = here.geometry.iloc[0]
    near = geo.loc[geo.geometry.intersects(shape.buffer(1e-6)),
                   ["cvegeo", "nom_mun", "level", "geometry"]]
    state_geo = geo.loc[geo["cve_ent"] == info["cve_ent"]]
    factors = sorted(info.get("factors") or [], key=lambda f: -f["contribution"])
    factors = label_factors(factors, atlas.card(name), lang)
    try:
        history = atlas.history(cvegeo)
    except NotFound:
        history = []
    title = f"{info['nom_mun']}, {info['nom_ent']}: {name}"
    return {**_context(atlas, name, lang), "kind": "municipio", "m": info,
            "map_svg": level_map(near, title=title, highlight=str(cvegeo),
                                 label_level=_level_word),
            "locator_svg": locator_map(state_geo.geometry, shape, title=info["nom_ent"]),
            "neighbours": [clean_row(r) for r in atlas.rows(name).loc[
                lambda t: t["cvegeo"].isin(near["cvegeo"]) & (t["cvegeo"] != str(cvegeo))
            ].to_dict("records")],
            "domains": _by_domain(factors[:TOP_FACTORS], _domain_labels(lang)),
            "history": history, "trend": municipal(atlas, cvegeo)}


def label_factors(factors: list[dict], card: dict, lang: str) -> list[dict]:
    """Add each factor's label and its direction in words (``phrase``)."""
    labels = _covariate_labels(card)
    out = []
    for f in factors:
        label = labels.get(f["covariate"], {}).get(lang, f["covariate"])
        out.append({**f, "label": label,
                    "phrase": describe_factor(label, f.get("municipal_mean"),
                                              f.get("national_mean"), lang)})
    return out


def _domain_labels(lang: str) -> dict:
    from .pages import _domain_labels as labels

    return labels(lang)


def clean_row(row: dict) -> dict:
    return {k: jsonable(v) for k, v in row.items()}


def _level_word(level: str) -> str:
    from .pages import level_label

    return level_label(level)


def ficha_html(kind: str, name: str, code: str, lang: str) -> str:
    """The ficha as a standalone HTML document (inside a request context)."""
    atlas = get_atlas()
    ctx = (state_context if kind == "estado" else municipality_context)(atlas, name, code, lang)
    return render_template("ficha.html", **ctx)


def ficha_pdf(kind: str, name: str, code: str, lang: str) -> bytes:
    """The ficha as PDF bytes, rendered once per (edition file, kind, code, language)."""
    atlas = get_atlas()

    def build():
        html = ficha_html(kind, name, code, lang)
        return _weasyprint().HTML(string=html, base_url=request.url_root).write_pdf()

    return atlas.derived(name, ("ficha", kind, str(code), lang), build)


def _weasyprint():
    """WeasyPrint, imported on first use (it is heavy); Unavailable when its system
    libraries are missing, so the HTML ficha (printable from the browser) still serves."""
    try:
        import weasyprint
    except (ImportError, OSError) as exc:
        raise Unavailable(
            "PDF fichas need WeasyPrint and the Pango library (Debian: libpango-1.0-0 "
            f"libpangoft2-1.0-0); the HTML ficha (ficha.html) prints from the browser: {exc}"
        ) from None
    return weasyprint


def _asked_edition() -> str:
    """The edition of the request (``edicion``, default the latest)."""
    names = get_atlas().names()
    if not names:
        raise NotFound("no edition is published in the data directory")
    return params.edition(request.args.get("edicion"), names, names[-1])


def _pdf_response(kind: str, code: str) -> Response:
    name = _asked_edition()
    lang = current_lang()
    body = ficha_pdf(kind, name, code, lang)
    filename = f"ficha_{kind}_{code}_{name}_{lang}.pdf"
    return Response(body, mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{filename}"'})


@bp.get("/estado/<cve_ent>/ficha.pdf")
def estado_pdf(cve_ent):
    """A state's printable ficha (PDF)."""
    return _pdf_response("estado", cve_ent)


@bp.get("/municipio/<cvegeo>/ficha.pdf")
def municipio_pdf(cvegeo):
    """A municipality's printable ficha (PDF)."""
    return _pdf_response("municipio", cvegeo)


@bp.get("/estado/<cve_ent>/ficha.html")
def estado_html(cve_ent):
    """A state's ficha as HTML (what the PDF is rendered from; printable as is)."""
    return _html_response("estado", cve_ent)


@bp.get("/municipio/<cvegeo>/ficha.html")
def municipio_html(cvegeo):
    """A municipality's ficha as HTML (what the PDF is rendered from)."""
    return _html_response("municipio", cvegeo)


def _html_response(kind: str, code: str) -> str:
    return ficha_html(kind, _asked_edition(), code, current_lang())
