"""Trend page and API: what changed between two editions, and why (docs/METHOD.md §8).

``/tendencias?a=2017&b=2023[&estado=CVE]`` shows the decomposition of the change in the mean
probability into composition (the population changed) and behaviour (the same
characteristics carry a different risk): a waterfall by policy domain, sentences generated
from the numbers, the per-state table, a map of the dominant driver per municipality and the
municipalities where each moved most. ``/api/v1/tendencias`` gives the same rows as JSON or
CSV. The computation is cached by the :class:`~riskmap.web.atlas.Atlas` per pair of edition
files.
"""

from __future__ import annotations

import pandas as pd
from flask import Blueprint, render_template, request, url_for
from flask_babel import gettext, lazy_gettext as _l

from ..errors import BadParameter, InputError, NotFound
from ..model.trend import N_DRAWS, columns, finite
from . import maps, notices, params
from .http import current_lang
from .atlas import _covariate_labels, get_atlas
from .charts import waterfall

bp = Blueprint("trends", __name__)

#: API levels (query ``por``) -> library levels.
LEVELS = {"municipio": "municipality", "estado": "state", "nacional": "nation"}
FORMATS = ("json", "csv")
#: Dominant-driver classes of the map (RdBu ends for behaviour, PuOr for composition).
DRIVER_COLOURS = {"composicion_baja": "#5e3c99", "composicion_sube": "#e66101",
                  "comportamiento_baja": "#2166ac", "comportamiento_sube": "#b2182b",
                  "sin_informacion": maps.NO_DATA_COLOUR}
DRIVER_LABELS = {
    "composicion_baja": _l("Composición: bajó el riesgo"),
    "composicion_sube": _l("Composición: subió el riesgo"),
    "comportamiento_baja": _l("Comportamiento: bajó el riesgo"),
    "comportamiento_sube": _l("Comportamiento: subió el riesgo"),
    "sin_informacion": _l("Sin información"),
}
TOP = 10


# -- choosing the editions ------------------------------------------------------------------
def modelled(atlas) -> list[str]:
    """Editions that can be decomposed (a fitted model), oldest first."""
    return [n for n in atlas.names() if notices.capabilities(atlas, n)["model"]]


def pair(atlas) -> tuple[str, str]:
    """Editions ``a`` and ``b`` of the query (default: oldest and latest modelled ones)."""
    names = atlas.names()
    if not names:
        raise NotFound("no edition is published in the data directory")
    usable = modelled(atlas) or names
    a = params.choice("a", request.args.get("a"), names, usable[0])
    b = params.choice("b", request.args.get("b"), names, usable[-1])
    if a == b:
        raise BadParameter("b", b, [n for n in names if n != a],
                           message=f"editions a and b are both {a!r}: choose two editions")
    return a, b


def dominant(row) -> str:
    """Dominant driver class of a row: the larger of |composition| and |behaviour|, by sign."""
    c, b = finite(row["composition"]), finite(row["behaviour"])
    if c is None or b is None:
        return "sin_informacion"
    if abs(c) >= abs(b):
        return "composicion_baja" if c < 0 else "composicion_sube"
    return "comportamiento_baja" if b < 0 else "comportamiento_sube"


# -- sentences ----------------------------------------------------------------------------------
def _points(value) -> str:
    """Absolute value in percentage points, two decimals (changes are often tenths)."""
    return f"{abs(value) * 100:.2f}"


def _ci(row, part) -> str:
    low, high = finite(row.get(f"{part}_ci_low")), finite(row.get(f"{part}_ci_high"))
    if low is None or high is None:
        return ""
    if low < 0 < high:
        return gettext("(IC 95 %%: %(low)s a %(high)s puntos; no se distingue de cero)",
                       low=f"{low * 100:+.2f}", high=f"{high * 100:+.2f}")
    a, b = sorted((abs(low), abs(high)))
    return gettext("(IC 95 %%: %(low)s a %(high)s)", low=_points(a), high=_points(b))


def sentences(trend, row, place: str, labels: dict) -> list[str]:
    """Plain sentences generated from one row's numbers (nation or a state), in the page
    language: the overall change, its two halves and the largest detailed drivers."""
    lang = current_lang()
    out = []
    pa, pb = finite(row["probability_a"]), finite(row["probability_b"])
    change = finite(row["change"])
    if pa is None or pb is None:
        return out
    unit = " %" if lang == "es" else "%"
    out.append(gettext("Entre %(a)s y %(b)s, %(place)s (modelada con los registros censales) "
                       "pasó de %(pa)s a %(pb)s: un cambio de %(sign)s%(d)s puntos %(ci)s.",
                       a=trend.a, b=trend.b, place=place,
                       pa=f"{pa * 100:.1f}{unit}", pb=f"{pb * 100:.1f}{unit}",
                       sign="+" if change >= 0 else "−", d=_points(change),
                       ci=_ci(row, "change")).replace(" .", "."))
    for part, up, down in (
            ("composition", _l("Los cambios en la población (composición) aumentaron %(place)s "
                               "%(d)s puntos %(ci)s."),
             _l("Los cambios en la población (composición) redujeron %(place)s %(d)s puntos "
                "%(ci)s.")),
            ("behaviour", _l("El cambio en el riesgo asociado a las mismas características "
                             "(comportamiento) aumentó %(place)s %(d)s puntos %(ci)s."),
             _l("El cambio en el riesgo asociado a las mismas características "
                "(comportamiento) redujo %(place)s %(d)s puntos %(ci)s."))):
        v = finite(row[part])
        if v is not None:
            text = str(up if v > 0 else down) % {"place": place, "d": _points(v),
                                                  "ci": _ci(row, part)}
            out.append(text.replace(" .", "."))
    drivers = []
    for side in ("composition", "behaviour"):  # the two largest parts of each side
        found = [(abs(v), side, cov, v) for cov in trend.covariates
                 if (v := finite(row[f"{side}_{cov}"])) is not None]
        drivers += sorted(found, reverse=True)[:2]
    for _, side, cov, v in drivers:
        label = labels.get(cov, {}).get(lang, cov)
        if side == "composition":
            rose = (finite(row[f"mean_b_{cov}"]) or 0) > (finite(row[f"mean_a_{cov}"]) or 0)
            what = (gettext("El aumento de «%(label)s» entre los censos", label=label) if rose
                    else gettext("La disminución de «%(label)s» entre los censos", label=label))
        else:
            grew = trend.coefficients["b"].get(cov, 0) > trend.coefficients["a"].get(cov, 0)
            what = (gettext("El mayor coeficiente de «%(label)s»", label=label) if grew
                    else gettext("El menor coeficiente de «%(label)s»", label=label))
        verb = gettext("aumentó") if v > 0 else gettext("redujo")
        out.append(gettext("%(what)s %(verb)s %(place)s %(d)s puntos %(ci)s.", what=what,
                           verb=verb, place=place, d=_points(v),
                           ci=_ci(row, f"{side}_{cov}")).replace(" .", "."))
    return out


# -- page ---------------------------------------------------------------------------------------
def _waterfall(trend, row, domain_labels: dict) -> dict | None:
    a_rate, b_rate = finite(row["probability_a"]), finite(row["probability_b"])
    if a_rate is None or b_rate is None:
        return None
    pts = 100.0

    def step(label, part):
        v = finite(row[part])
        low, high = finite(row.get(f"{part}_ci_low")), finite(row.get(f"{part}_ci_high"))
        return {"label": label, "value": (v or 0.0) * pts, "kind": "step",
                "low": None if low is None else low * pts,
                "high": None if high is None else high * pts}

    steps = [{"label": gettext("Tasa modelada %(e)s", e=trend.a), "value": a_rate * pts,
              "kind": "total"}]
    domains = trend.domain_parts(row)["composition"]
    if domains and all(v is not None for v in domains.values()):
        for d in trend.domain_names:
            steps.append(step(gettext("Composición: %(d)s", d=domain_labels.get(d, d)),
                              f"composition_domain_{d}"))
    else:
        steps.append(step(gettext("Composición"), "composition"))
    steps.append(step(gettext("Comportamiento"), "behaviour"))
    steps.append({"label": gettext("Tasa modelada %(e)s", e=trend.b), "value": b_rate * pts,
                  "kind": "total"})
    return waterfall(steps)


def _map_values(rows: pd.DataFrame, trend, labels: dict) -> dict:
    """Driver class and tooltip lines per municipality (words resolved once, not per row)."""
    lang = current_lang()
    words = {"change": str(_l("Cambio")), "composition": str(_l("Composición")),
             "behaviour": str(_l("Comportamiento"))}
    points, largest = gettext("puntos"), gettext("Mayor parte")
    parts = [(f"{side}_{c}", words[side], labels.get(c, {}).get(lang, c))
             for side in ("composition", "behaviour") for c in trend.covariates]
    out = {}
    for rec in rows.to_dict("records"):
        lines = [f"{words[p]}: {v * 100:+.2f} {points}" for p in words
                 if (v := finite(rec[p])) is not None]
        found = [(abs(v), v, side, label) for col, side, label in parts
                 if (v := finite(rec[col])) is not None]
        if found:
            _, v, side, label = max(found)
            lines.append(f"{largest}: {side} · {label} ({v * 100:+.2f})")
        out[str(rec["unit"])] = [dominant(rec), *lines]
    return out


@bp.get("/tendencias")
def tendencias():
    """The trend decomposition page."""
    from .pages import _domain_labels, _geometry_url, _map_config, _municipio_link, _tile_kwargs

    atlas = get_atlas()
    names = atlas.names()
    if len(names) == 1 and not request.args.get("a") and not request.args.get("b"):
        return render_template("tendencias.html", **notices.page_context(atlas, names[0]),
                               editions=atlas.editions(), edition=names[0], a=names[0],
                               b=names[0], usable=modelled(atlas), trend=None,
                               impossible=gettext("Solo hay una edición publicada: una "
                                                  "tendencia necesita dos."))
    a, b = pair(atlas)
    older = a if atlas.edition(a).year <= atlas.edition(b).year else b
    context = dict(notices.page_context(atlas, b, a), editions=atlas.editions(), edition=b,
                   a=a, b=b, usable=modelled(atlas))
    try:
        trend = atlas.trend(a, b)
    except InputError as exc:
        return render_template("tendencias.html", **context, impossible=exc.message,
                               trend=None)
    vintage = atlas.edition(older).vintage
    states = atlas.states(vintage)
    estado = params.estado(request.args.get("estado"), list(trend.states["unit"]))
    lang = current_lang()
    labels = _covariate_labels(atlas.card(b))
    domain_labels = _domain_labels(lang)
    if estado:
        row = trend.states[trend.states["unit"] == estado].iloc[0]
        place = gettext("la tasa de %(state)s", state=row["name"])
    else:
        row = trend.nation.iloc[0]
        place = gettext("la tasa nacional")
    mun = trend.municipalities
    if estado:
        mun = mun[mun["cve_ent"] == estado]
    info = atlas.rows(older)
    ok = info.loc[info["level"] != "sin_informacion", "cvegeo"]
    ranked = mun[mun["unit"].isin(ok)]
    improved = ranked[ranked["composition"] < 0].nsmallest(TOP, "composition")
    worsened = ranked[ranked["behaviour"] > 0].nlargest(TOP, "behaviour")
    bbox = next((s["bbox"] for s in states if s["cve_ent"] == estado), None)
    parts = maps.build_map("tendencias", bounds=bbox, **_tile_kwargs())
    values = _map_values(mun, trend, labels)
    spec = {"var": parts.name, "geometry": _geometry_url(vintage), "values": values,
            "mode": "keyed", "keyColours": DRIVER_COLOURS, "link": _municipio_link(older),
            "estado": estado, "fit": True}
    config = _map_config([spec], states=states)
    config["labels"].update({k: str(v) for k, v in DRIVER_LABELS.items()})
    counts = pd.Series([v[0] for v in values.values()]).value_counts()
    legend = [{"key": k, "colour": c, "label": DRIVER_LABELS[k], "count": int(counts.get(k, 0))}
              for k, c in DRIVER_COLOURS.items()]
    state_rows = [dict(r, dominant=dominant(r)) for r in trend.states.to_dict("records")]
    withheld = int(((mun["composition_withheld"] != "") | (mun["behaviour_withheld"] != ""))
                   .sum())
    return render_template(
        "tendencias.html", **context, trend=trend, impossible=None, estado=estado,
        states=states, row=row.to_dict(), sentences=sentences(trend, row, place, labels),
        chart=_waterfall(trend, row, domain_labels), state_rows=state_rows,
        improved=improved.to_dict("records"), worsened=worsened.to_dict("records"),
        map=parts, config=config, legend=legend, driver_labels=DRIVER_LABELS,
        withheld=withheld, draws=trend.draws or N_DRAWS, older=older,
        not_comparable=[labels.get(c, {}).get(lang, c) for c in trend.not_comparable],
        ebp=[n for n in (a, b) if atlas.card(n).get("estimator") == "ebp"])


def default_trend(atlas):
    """``(a, b, trend)`` for the oldest and the latest modelled editions, or None when there
    are fewer than two or they cannot be decomposed (no census records)."""
    from ..errors import RiskmapError

    usable = modelled(atlas)
    if len(usable) < 2:
        return None
    a, b = usable[0], usable[-1]
    try:
        return a, b, atlas.trend(a, b)
    except RiskmapError:
        return None


def municipal(atlas, cvegeo: str) -> dict | None:
    """The default pair's decomposition for one municipality (for its page), or None when
    it cannot be computed (imported editions, no census records, a code of another
    geography)."""
    found = default_trend(atlas)
    if found is None:
        return None
    a, b, trend = found
    rows = trend.municipalities
    hit = rows[rows["unit"] == str(cvegeo)]
    if hit.empty or finite(hit.iloc[0]["change"]) is None:
        return None
    row = hit.iloc[0]
    labels = _covariate_labels(atlas.card(b))
    lang = current_lang()
    parts = []
    for side in ("composition", "behaviour"):
        for cov in trend.covariates:
            v = finite(row[f"{side}_{cov}"])
            if v is not None:
                parts.append({"side": side, "label": labels.get(cov, {}).get(lang, cov),
                              "value": v})
    parts.sort(key=lambda p: -abs(p["value"]))
    return {"a": a, "b": b, "row": row.to_dict(), "parts": parts[:5],
            "dominant": DRIVER_LABELS[dominant(row)],
            "withheld": [r for r in (row["composition_withheld"], row["behaviour_withheld"]) if r]}


# -- API ----------------------------------------------------------------------------------------
@bp.get("/api/v1/tendencias")
def api_tendencias():
    """The decomposition as JSON or CSV (one row per municipality, state or the nation)."""
    from .api import _plain_csv, jsonable, meta_for, ok

    atlas = get_atlas()
    a, b = pair(atlas)
    por = params.choice("por", request.args.get("por"), list(LEVELS), "nacional")
    formato = params.choice("formato", request.args.get("formato"), FORMATS, "json")
    trend = atlas.trend(a, b)
    estado = params.estado(request.args.get("estado"), list(trend.states["unit"]))
    if estado and por == "nacional":
        raise BadParameter("estado", estado, message="'estado' does not apply to por=nacional")
    table = trend.table(LEVELS[por])
    if estado:
        table = table[table["cve_ent"] == estado]
    query = {k: v for k, v in (("a", a), ("b", b), ("por", por), ("estado", estado)) if v}
    if formato == "csv":
        return _plain_csv(table[columns(trend, LEVELS[por])].reset_index(drop=True),
                          f"riskmap_tendencias_{a}_{b}_{por}.csv", [a, b])
    data = {"a": trend.a, "b": trend.b, "geography": trend.geography, "por": por,
            "covariates": trend.covariates, "not_comparable": trend.not_comparable,
            "domains": trend.domains, "draws": trend.draws, "seed": trend.seed,
            "notes": {"es": NOTE_ES, "en": NOTE_EN},
            "rows": jsonable(table.reset_index(drop=True))}
    links = {"self": url_for(".api_tendencias", **query),
             "csv": url_for(".api_tendencias", formato="csv", **query),
             "page": url_for(".tendencias", a=a, b=b, estado=estado)}
    return ok(data, meta_for(a, b), links, parameters=query)


NOTE_ES = ("cambio = composición + comportamiento (descomposición de Shapley exacta); partes "
           "por covariable con los pesos de Yun; intervalos de 95 % (estados y nación) con "
           f"{N_DRAWS} extracciones de los coeficientes; se ignora la incertidumbre del muestreo "
           "censal.")
NOTE_EN = ("change = composition + behaviour (exact Shapley decomposition); parts per "
           f"covariate by Yun's weights; 95 % intervals (states and nation) from {N_DRAWS} "
           "coefficient draws; census-sample uncertainty is ignored.")
