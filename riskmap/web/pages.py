"""HTML pages: national map, state, municipality, comparison, targeting, methodology.

Views read and validate the query (``riskmap.web.params``), ask the :class:`Atlas`, and render.
Every view state (edition, layer, state, selection, targeting form) lives in the URL query, so
any page is a permalink. Maps are folium maps whose geometry the glue script fetches once from
the cached API endpoint; the page only carries a compact value table (``|tojson``).
"""

from __future__ import annotations

import functools
import io
import math

import pandas as pd
from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l

from ..choices import match_state
from ..publish.edition import LEVELS
from ..errors import BadParameter, NotFound
from . import cache, maps, notices, params
from .http import current_lang
from .charts import calibration_plot, factor_bars, histogram, scatter_plot
from .atlas import get_atlas
from .outcomes import outcomes_version

bp = Blueprint("pages", __name__)

LEVEL_LABELS = {"alto": _l("Alto"), "medio": _l("Medio"), "bajo": _l("Bajo"),
                "sin_informacion": _l("Sin información")}
LAYER_LABELS = {"nivel": _l("Nivel de riesgo"), "probabilidad": _l("Probabilidad"),
                "esperados": _l("Niñas y niños esperados en trabajo infantil"),
                "incertidumbre": _l("Incertidumbre (ancho del intervalo)"),
                "certeza": _l("Certeza del nivel")}
#: Rules offered in the comparison form (any ``cortes:A,B`` may be typed).
RULE_CHOICES = ("mirti", "significance", "cortes:7.5,12.2")
CHANGE_LABELS = {"aumento": _l("Aumento significativo"), "disminucion": _l("Disminución significativa"),
                 "sin_cambio": _l("Sin cambio significativo"), "sin_informacion": _l("Sin información")}
#: Level transitions: what the change map shows when no change can be tested.
LEVEL_CHANGE_LABELS = {"sube": _l("Subió de nivel"), "baja": _l("Bajó de nivel"),
                       "igual": _l("Mismo nivel"), "sin_informacion": _l("Sin información")}


# -- formatting (es-MX: thousands "," and decimals "."; per cent with a space in Spanish) ------
@bp.app_template_filter("pct")
def pct(value, digits: int = 1) -> str:
    """Format a proportion as a percentage ("12.3 %" in Spanish, "12.3%" in English)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)) or value is pd.NA:
        return "–"
    text = f"{float(value) * 100:,.{digits}f}"
    return f"{text} %" if current_lang() == "es" else f"{text}%"


@bp.app_template_filter("num")
def num(value, digits: int = 0) -> str:
    """Format a number with thousands separators."""
    if value is None or value is pd.NA:
        return "–"
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(value):
        return "–"
    return f"{value:,.{digits}f}"


@bp.app_template_global("level_label")
def level_label(level) -> str:
    """Translated name of a risk level."""
    return str(LEVEL_LABELS.get(str(level), level))


# -- shared pieces ----------------------------------------------------------------------------
def _edition(atlas, key: str = "edicion", default: str | None = None) -> str:
    names = atlas.names()
    if not names:
        raise NotFound("no edition is published in the data directory")
    return params.edition(request.args.get(key), names, default or names[-1])


def _common(atlas, edition: str, *others: str) -> dict:
    """Template context every page with data needs: banners, attribution, editions.

    ``others`` are further editions the page shows (the comparison's first edition).
    """
    return dict(notices.page_context(atlas, edition, *others), editions=atlas.editions(),
                edition=edition)


def _labels() -> dict:
    """Translated words the glue script puts in tooltips and messages."""
    out = {k: str(v) for k, v in LEVEL_LABELS.items()}
    out.update({k: str(v) for k, v in CHANGE_LABELS.items()})
    out.update({k: str(v) for k, v in LEVEL_CHANGE_LABELS.items()})
    out.update({"level": str(_l("Nivel")), "probability": str(_l("Probabilidad")),
                "children": str(_l("Niñas, niños y adolescentes de 5 a 17 años")),
                "expected": str(_l("Esperados en trabajo infantil")),
                "open": str(_l("Abrir ficha de")),
                "certainty": str(_l("Certeza del nivel")), "uncertain": str(_l("incierto")),
                "mapError": str(_l("No se pudo cargar la geometría del mapa."))})
    return out


def _geometry_url(vintage: str) -> str:
    # TopoJSON: shared borders once, integer deltas (riskmap.web.topology); riskmap.js decodes it.
    return url_for("api.geometria_topo", vintage=vintage)


def _map_config(specs: list[dict], *, states=None, sync: bool = False) -> dict:
    lang = current_lang()
    return {"maps": specs, "labels": _labels(), "locale": "es-MX" if lang == "es" else "en-US",
            "pctSpace": lang == "es", "levelColours": maps.LEVEL_COLOURS,
            "noData": maps.NO_DATA_COLOUR, "sync": sync,
            "states": {s["cve_ent"]: {"bounds": s["bounds"], "name": s["nom_ent"]}
                       for s in (states or [])}}


def _municipio_link(edition: str) -> str:
    return url_for("pages.municipio", cvegeo="__CODE__", edicion=edition, lang=current_lang())


def _tile_kwargs() -> dict:
    settings = current_app.config["RISKMAP"]
    return {"tile_url": settings["tile_url"], "tile_attribution": settings["tile_attribution"]}


def _bbox(states: list[dict], cve_ent: str | None):
    for s in states:
        if s["cve_ent"] == cve_ent:
            return s["bbox"]
    return None


def _layer_map(map_id, atlas, edition, *, layer, states, rows=None, estado=None, selected=None,
               zoom_selected=False, only_state=False):
    """One folium map with the four layers of an edition, plus its glue configuration.

    ``rows`` restricts the classes to a subset (a state); by default the whole edition's
    layer table, cached by the :class:`Atlas`.
    """
    values, legends = atlas.layer_table(edition) if rows is None else maps.layer_table(rows)
    vintage = atlas.edition(edition).vintage
    parts = maps.build_map(map_id, bounds=_bbox(states, estado), **_tile_kwargs())
    spec = {"var": parts.name, "geometry": _geometry_url(vintage), "values": values,
            "layer": layer, "classColours": maps.class_colours(legends),
            "link": _municipio_link(edition), "selected": selected,
            "zoomToSelected": zoom_selected, "estado": estado if only_state else None,
            "fit": bool(only_state or not estado)}
    return parts, spec, legends


# -- national map -----------------------------------------------------------------------------
@bp.get("/")
@cache.defaults(edicion=cache.latest_edition, capa="nivel")
def index():
    """National map of the latest (or chosen) edition."""
    atlas = get_atlas()
    edition = _edition(atlas)
    vintage = atlas.edition(edition).vintage
    layer = params.layer(request.args.get("capa"))
    states = atlas.states(vintage)
    estado = params.estado(request.args.get("estado"), {s["cve_ent"]: s["nom_ent"] for s in states})
    rows = atlas.rows(edition)
    selected = _selection(rows, request.args.get("sel"))
    query = (request.args.get("q") or "").strip()[:80]
    matches = atlas.search(query, edition) if query else []
    parts, spec, legends = _layer_map("nacional", atlas, edition, layer=layer,
                                      states=states, estado=estado, selected=selected,
                                      zoom_selected=bool(selected))
    chosen = None
    if selected:
        chosen = rows.loc[rows["cvegeo"] == selected].iloc[0].to_dict()
    state_counts = _state_counts(rows)
    config = _map_config([spec], states=states)
    config["stateCounts"] = state_counts
    return render_template(
        "index.html", **_common(atlas, edition), layer=layer, layers=params.LAYERS,
        layer_labels=LAYER_LABELS, states=states, estado=estado, query=query, matches=matches,
        legends=legends, counts=_counts(rows), map=parts, chosen=chosen, config=config,
        total=len(rows), state_counts=state_counts, level_order=LEVELS)


def _state_counts(rows: pd.DataFrame) -> dict:
    """``{cve_ent: {level: count}}``: what the state filter shows beside the national counts."""
    table = rows.groupby(["cve_ent", "level"]).size()
    out: dict = {}
    for (cve_ent, level), n in table.items():
        out.setdefault(str(cve_ent), {})[str(level)] = int(n)
    return out


def _selection(rows: pd.DataFrame, value):
    if value is None or str(value).strip() == "":
        return None
    value = str(value).strip()
    if not (rows["cvegeo"] == value).any():
        raise BadParameter("sel", value, message=f"invalid value {value!r} for 'sel': "
                           "not a municipality code (5 digits) of this edition")
    return value


def _counts(rows: pd.DataFrame) -> list[dict]:
    counts = rows["level"].value_counts()
    return [{"level": lv, "count": int(counts.get(lv, 0))} for lv in LEVELS]


# -- state ------------------------------------------------------------------------------------
@bp.get("/estado/<cve_ent>")
@cache.defaults(edicion=cache.latest_edition, capa="nivel")
def estado(cve_ent):
    """One state's map, level counts, sortable table and downloads."""
    atlas = get_atlas()
    edition = _edition(atlas)
    vintage = atlas.edition(edition).vintage
    states = atlas.states(vintage)
    codes = [s["cve_ent"] for s in states]
    if cve_ent not in codes:
        try:  # a state's name (any case, with or without accents): its page under its code
            code = match_state("cve_ent", cve_ent, {s["cve_ent"]: s["nom_ent"] for s in states})
        except BadParameter:
            raise NotFound(f"state {cve_ent!r} is not in edition {edition}",
                           errors=["cve_ent: one of " + ", ".join(codes)]) from None
        return redirect(url_for(".estado", cve_ent=code, **request.args.to_dict()), 308)
    layer = params.layer(request.args.get("capa"))
    rows = atlas.rows(edition, state=cve_ent)
    parts, spec, legends = _layer_map("estado", atlas, edition, layer=layer,
                                      states=states, rows=rows, estado=cve_ent, only_state=True)
    state = next(s for s in states if s["cve_ent"] == cve_ent)
    table = rows.sort_values(["rank_state", "cvegeo"], na_position="last")
    return render_template(
        "estado.html", **_common(atlas, edition), state=state, layer=layer,
        layers=params.LAYERS, layer_labels=LAYER_LABELS, legends=legends, counts=_counts(rows),
        rows=table.to_dict("records"), map=parts, config=_map_config([spec], states=states))


# -- municipality -----------------------------------------------------------------------------
@bp.get("/municipio/<cvegeo>")
def municipio(cvegeo):
    """A municipality's card: estimate, ranks, factors, history, neighbours."""
    atlas = get_atlas()
    asked = request.args.get("edicion")
    names = atlas.names()
    if asked:
        edition = params.edition(asked, names)
    else:
        # The newest edition whose geography has this code (new municipalities only exist
        # in recent vintages, dissolved ones only in old ones).
        edition = next((n for n in reversed(names) if atlas.has(n, cvegeo)),
                       names[-1] if names else None)
        if edition is None:
            raise NotFound("no edition is published in the data directory")
    info = atlas.municipality(edition, cvegeo)
    vintage = atlas.edition(edition).vintage
    states = atlas.states(vintage)
    parts, spec, legends = _layer_map("municipio", atlas, edition, layer="nivel",
                                      states=states, selected=str(cvegeo), zoom_selected=True)
    spec["fit"] = False
    history = atlas.history(cvegeo)
    try:
        neighbours = atlas.neighbours(vintage, cvegeo, edition)
    except NotFound:
        neighbours = []
    lang = current_lang()
    from .trends import municipal

    return render_template(
        "municipio.html", **_common(atlas, edition), m=info, map=parts, legends=legends,
        config=_map_config([spec], states=states), history=history, neighbours=neighbours,
        bars=factor_bars(info.get("factors", []), lang, _domain_labels(lang)),
        change_labels=CHANGE_LABELS, trend=municipal(atlas, cvegeo),
        estimator=_estimator(atlas.card(edition)))


def _estimator(card: dict) -> str | None:
    """Which estimator made a modelled edition's numbers (None for imported editions)."""
    if card.get("kind", "modelled") != "modelled":
        return None
    return card.get("estimator") or "synthetic"


@functools.lru_cache(maxsize=1)
def _default_spec():
    """The default model spec (``models/mirti.toml``), read and validated once per process
    rather than on every municipality and methodology page."""
    from ..spec import load_spec

    return load_spec()


def _domain_labels(lang: str) -> dict:
    try:
        return {k: (v.get(lang) or v.get("es") or k) for k, v in _default_spec().domains.items()}
    except Exception:  # noqa: BLE001 - a missing spec only loses the pretty domain names
        return {}


# -- methodology ------------------------------------------------------------------------------
@bp.get("/metodologia")
@cache.defaults(edicion=cache.latest_edition)
def metodologia():
    """The model card of an edition, rendered for people."""
    atlas = get_atlas()
    edition = _edition(atlas)
    card = atlas.card(edition)
    lang = current_lang()
    spec = _spec_for(card)
    covariates = []
    if spec is not None:
        domains = _domain_labels(lang)
        for c in spec.covariates:
            covariates.append({"name": c.name, "label": c.label(lang),
                               "definition": getattr(c, f"definition_{lang}", "") or c.definition_es,
                               "domain": domains.get(c.domain, c.domain)})
    labels = {c["name"]: c["label"] for c in covariates}
    coefficients = [dict(c, label=labels.get(c.get("name"), c.get("name")))
                    for c in card.get("coefficients") or []]
    diagnostics = card.get("diagnostics") or {}
    return render_template(
        "metodologia.html", **_common(atlas, edition), card=card, covariates=covariates,
        coefficients=coefficients, diagnostics=diagnostics,
        calibration=calibration_plot(diagnostics.get("calibration") or []),
        rule_text=atlas.provenance(edition)["rule_text"][lang], sources=_sources(card),
        shares=_level_shares(atlas.edition(edition).level_counts()),
        ebp=_ebp_charts(atlas, edition, card, labels))


def _level_shares(counts: dict) -> list[dict]:
    """alto / medio / bajo as counts and shares of the municipalities with information."""
    informed = sum(n for level, n in counts.items() if level != "sin_informacion")
    if not informed:
        return []
    return [{"level": lv, "count": counts.get(lv, 0), "share": counts.get(lv, 0) / informed}
            for lv in ("alto", "medio", "bajo")]



#: Bin edges of the CV histogram (the last bin takes every CV of 50 % or more).
CV_EDGES = [0.0, 0.05, 0.10, 0.15, 0.20, 0.30, 0.50, 1.0]


def _ebp_charts(atlas, edition: str, card: dict, labels: dict) -> dict | None:
    """EBP diagnostics of the methodology page: EBP against direct, the CV histogram and the
    mixed model's fixed effects (labelled like the synthetic coefficients)."""
    if card.get("estimator") != "ebp":
        return None
    fixed = [dict(r, label=labels.get(r.get("name"), r.get("name")))
             for r in (card.get("ebp") or {}).get("fixed_effects") or []]
    rows = atlas.rows(edition)
    known = rows["probability"].notna()
    direct = rows["probability_direct"] if "probability_direct" in rows else None
    points = [] if direct is None else list(zip(direct[known & direct.notna()],
                                                rows.loc[known & direct.notna(), "probability"]))
    cv = (rows.loc[known, "se"] / rows.loc[known, "probability"]).tolist()
    return {"scatter": scatter_plot(points), "cv": histogram(cv, CV_EDGES),
            "n_points": len(points), "fixed": fixed}


def _spec_for(card: dict):
    from ..spec import ModelSpec

    spec = card.get("spec")
    if isinstance(spec, dict) and spec.get("covariates") and isinstance(spec["covariates"][0], dict):
        try:
            return ModelSpec.from_dict(spec)
        except Exception:  # noqa: BLE001 - fall back to the default specification below
            pass
    try:
        return _default_spec()
    except Exception:  # noqa: BLE001 - the page still shows the coefficient table
        return None


SOURCE_ROLES = {"boundaries": _l("límites municipales")}


def _sources(card: dict) -> list[str]:
    out = []
    for s in card.get("sources") or []:
        if isinstance(s, dict):
            name = s.get("name") or s.get("title") or ""
            role = SOURCE_ROLES.get(s.get("role"), s.get("role"))
            out.append(f"{name} ({role})" if role else str(name))
        else:
            out.append(str(s))
    return out


# -- targeting --------------------------------------------------------------------------------
#: Worklist columns shown (and exported), in order, with their headings.
WORKLIST_COLUMNS = {
    "rank": _l("Orden"), "cvegeo": _l("Clave"), "nom_mun": _l("Municipio"),
    "nom_ent": _l("Estado"), "level": _l("Nivel"), "probability": _l("Probabilidad"),
    "ci_low": _l("Límite inferior (95 %)"), "ci_high": _l("Límite superior (95 %)"),
    "children": _l("Niñas y niños 5–17"),
    "expected_child_labour": _l("Esperados en trabajo infantil"),
    "workplaces": _l("Establecimientos inspeccionables (K)"), "visits": _l("Visitas"),
    "expected_found": _l("Niñas y niños que se espera encontrar"),
    "found_per_visit": _l("Por visita"),
    "cumulative_found": _l("Acumulado"),
}


def _targeting_query(atlas) -> dict:
    """Validated targeting form values (also the permalink and the export query)."""
    names = atlas.names()
    if not names:
        raise NotFound("no edition is published in the data directory")
    return params.targeting(request.args, names, names[-1],
                            lambda e: atlas.rows(e)["cve_ent"].unique())


def _worklist(atlas, query: dict, inputs: dict) -> pd.DataFrame:
    table = atlas.targeting(query["edicion"], query["visitas"], inputs["lam"]["value"],
                            query["estados"], query["niveles"], query["criterio"],
                            exclude=inputs["exclude"], workplaces=inputs["workplaces"])
    if "visits" in table.columns:
        table = table[table["visits"] > 0]
    shown = [c for c in WORKLIST_COLUMNS if c in table.columns]
    return table[shown].reset_index(drop=True)


def assumptions(query: dict, inputs: dict) -> list[str]:
    """Units and assumptions of a worklist, one sentence each (page, CSV and XLSX)."""
    lam = inputs["lam"]
    lines = [str(_l("Unidades: una visita = un establecimiento inspeccionado; las cifras "
                    "esperadas son niñas y niños en trabajo infantil que se espera encontrar."))]
    if lam["source"] == "estimated":
        lines.append(str(_l("λ = %(v)s niñas y niños encontrados por establecimiento visitado "
                            "a la tasa nacional, estimado de %(n)s visitas registradas "
                            "(IC 95 %%: %(lo)s–%(hi)s).", v=f"{lam['value']:.3g}",
                            n=f"{lam['n_visits']:,}", lo=f"{lam['ci_low']:.3g}",
                            hi=f"{lam['ci_high']:.3g}")))
    else:
        lines.append(str(_l("λ = %(v)s niñas y niños encontrados por establecimiento visitado a "
                            "la tasa nacional: supuesto por defecto, no una medición; se "
                            "reemplaza por la estimación en cuanto hay resultados registrados.",
                            v=f"{lam['value']:.3g}")))
    if inputs["workplaces"] is None:
        lines.append(str(_l("K (establecimientos inspeccionables) = 0.2 × niñas y niños 5–17 "
                            "del municipio: supuesto de orden de magnitud, sin tabla de "
                            "establecimientos.")))
    else:
        lines.append(str(_l("K (establecimientos inspeccionables) de la tabla de "
                            "establecimientos configurada.")))
    lines.append(str(_l("Un municipio nunca rinde más que su número esperado de niñas y "
                        "niños en trabajo infantil.")))
    if inputs["cooldown_applied"]:
        lines.append(str(_l("Se excluyen %(n)s municipios visitados en los últimos %(d)s días.",
                            n=inputs["excluded"], d=query["enfriamiento"])))
    else:
        lines.append(str(_l("Sin periodo de enfriamiento: las visitas registradas solo se "
                            "consultan con sesión iniciada.")))
    return lines


@bp.get("/focalizacion")
@cache.depends_on(outcomes_version)
def focalizacion():
    """Inspection targeting: greedy allocation of visits, worklist table and map."""
    from .auth import current_user  # None for anonymous visitors (no session is read)
    from .outcomes import targeting_inputs

    atlas = get_atlas()
    query = _targeting_query(atlas)
    edition = query["edicion"]
    inputs = targeting_inputs(atlas, query)
    worklist = _worklist(atlas, query, inputs)
    vintage = atlas.edition(edition).vintage
    states = atlas.states(vintage)
    parts = maps.build_map("focalizacion", bounds=_union_bbox(states, query["estados"]),
                           **_tile_kwargs())
    values, legend = _visit_classes(worklist)
    spec = {"var": parts.name, "geometry": _geometry_url(vintage), "values": values,
            "mode": "keyed", "keyColours": {i["key"]: i["colour"] for i in legend},
            "link": _municipio_link(edition), "fit": not query["estados"]}
    export_query = dict(query, lang=current_lang(), enviado=1,
                        recientes=int(query["recientes"]))
    totals = {"visits": int(worklist["visits"].sum()) if "visits" in worklist else 0,
              "detections": float(worklist["expected_found"].sum())
              if "expected_found" in worklist else None,
              "municipalities": len(worklist)}
    cfg = _map_config([spec], states=states)
    cfg["labels"].update({i["key"]: i["label"] for i in legend})
    context = _common(atlas, edition)
    # An edition without expected counts (imported) cannot be targeted: offer the newest
    # edition that can.
    fallback = None if context["capabilities"]["expected"] else next(
        (n for n in reversed(atlas.names()) if notices.capabilities(atlas, n)["expected"]), None)
    return render_template(
        "focalizacion.html", **context, fallback=fallback, query=query, states=states,
        worklist=worklist.to_dict("records"), columns=[(c, WORKLIST_COLUMNS[c]) for c in worklist.columns],
        map=parts, config=cfg, legend=legend, totals=totals, export_query=export_query,
        levels=LEVELS, lam=inputs["lam"], assumptions=assumptions(query, inputs),
        limits={"max_visits": params.MAX_VISITS, "max_cooldown": params.MAX_COOLDOWN},
        user=current_user())


def _union_bbox(states: list[dict], codes: list[str]):
    boxes = [s["bbox"] for s in states if s["cve_ent"] in codes]
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes))


def _visit_classes(worklist: pd.DataFrame):
    """Colour classes of the targeting map: visits per municipality (quantile classes)."""
    if "visits" not in worklist.columns or worklist.empty:
        return {}, []
    visits = worklist["visits"].astype(float)
    breaks = maps.class_breaks(visits, k=4)
    classes = maps.classify(visits, breaks)
    colours = maps.VISIT_COLOURS[1:][-len(breaks):] if breaks else []
    lows = [float(visits.min())] + breaks[:-1]
    legend = []
    for i, high in enumerate(breaks):
        low = int(math.floor(lows[i])) if i == 0 else int(math.floor(lows[i])) + 1
        label = f"{low:,}–{int(high):,}" if low < int(high) else f"{int(high):,}"
        legend.append({"key": f"v{i}", "colour": colours[i], "label": label,
                       "count": int((classes == i).sum())})
    visits_word = str(_l("visitas"))
    values = {}
    for rec, cls in zip(worklist.to_dict("records"), classes):
        values[str(rec["cvegeo"])] = [f"v{cls}", f"{int(rec['visits']):,} {visits_word}"]
    return values, legend


def _worklist_frame(worklist: pd.DataFrame) -> pd.DataFrame:
    """The worklist with translated headings and readable levels (what the page shows)."""
    out = worklist.copy()
    if "level" in out.columns:
        out["level"] = out["level"].map(level_label)
    return out.rename(columns={c: str(WORKLIST_COLUMNS[c]) for c in out.columns})


@bp.get("/focalizacion.csv")
@cache.depends_on(outcomes_version)
def focalizacion_csv():
    """The worklist shown on the targeting page, as CSV (UTF-8 with BOM for Excel)."""
    from .outcomes import targeting_inputs

    atlas = get_atlas()
    query = _targeting_query(atlas)
    inputs = targeting_inputs(atlas, query)
    frame = _worklist_frame(_worklist(atlas, query, inputs))
    notes = "".join(f"# {line}\r\n" for line in assumptions(query, inputs))
    text = "\ufeff" + notes + frame.to_csv(index=False, lineterminator="\r\n")
    name = f"riskmap_focalizacion_{query['edicion']}.csv"
    return Response(text, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/focalizacion.xlsx")
@cache.depends_on(outcomes_version)
def focalizacion_xlsx():
    """The worklist shown on the targeting page, as an Excel workbook (with its source)."""
    from .outcomes import targeting_inputs

    atlas = get_atlas()
    query = _targeting_query(atlas)
    inputs = targeting_inputs(atlas, query)
    frame = _worklist_frame(_worklist(atlas, query, inputs))
    info = atlas.provenance(query["edicion"])
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        # The first sheet states the units and assumptions before any number is read.
        about = pd.DataFrame({"": [str(_l("Unidades y supuestos")),
                                   *assumptions(query, inputs), "", str(_l("Parámetros")),
                                   *[f"{k}={v}" for k, v in query.items()],
                                   "", info["attribution"][current_lang()]]})
        about.to_excel(writer, sheet_name="leeme", index=False, header=False)
        frame.to_excel(writer, sheet_name="focalizacion", index=False)
    name = f"riskmap_focalizacion_{query['edicion']}.xlsx"
    return Response(buffer.getvalue(),
                    mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


# -- comparison -------------------------------------------------------------------------------
@bp.get("/comparar")
@cache.defaults(a=cache.previous_edition, b=cache.latest_edition)
def comparar():
    """Compare two editions: counts, transitions, change map, entries/exits of alto.

    Every table counts each municipality of the final edition's geography once; the level
    counts also show each edition's own figures, with the difference explained. Where no
    change can be tested (an imported list publishes no standard errors) the change counts
    read "—" and the change map shows level transitions instead.
    """
    atlas = get_atlas()
    names = atlas.names()
    if not names:
        raise NotFound("no edition is published in the data directory")
    a, b = params.comparison_pair(request.args.get("a"), request.args.get("b"), names)
    regla = params.rule(request.args.get("regla"))
    comp = atlas.comparison(a, b, regla)
    uses = [atlas.rule_use(a, regla), atlas.rule_use(b, regla)]
    ed_b = atlas.edition(b)
    states = atlas.states(ed_b.vintage)
    # Change map on B's geography (A aligned through the crosswalk); level transitions when
    # no change can be tested.
    change_parts = maps.build_map("cambio", **_tile_kwargs())
    colours, order, labels = ((maps.CHANGE_COLOURS, maps.CHANGE_ORDER, CHANGE_LABELS)
                              if comp.testable else
                              (maps.LEVEL_CHANGE_COLOURS, maps.LEVEL_CHANGE_ORDER,
                               LEVEL_CHANGE_LABELS))
    column = "change" if comp.testable else "level_change"
    change_values = _change_values(comp.changes, a, b, column)
    change_spec = {"var": change_parts.name, "geometry": _geometry_url(ed_b.vintage),
                   "values": change_values, "mode": "keyed", "keyColours": colours,
                   "link": _municipio_link(b)}
    twin = []
    for key, name, use in (("a", a, uses[0]), ("b", b, uses[1])):
        # The level maps show the levels the comparison uses (re-levelled when needed).
        rows = atlas.under_rule(name, regla).rows if use["relevelled"] else None
        parts, spec, _ = _layer_map(f"edicion_{key}", atlas, name, layer="nivel",
                                    states=states, rows=rows)
        twin.append((name, parts, spec))
    own, aligned = comp.counts, comp.aligned_counts
    count_rows = [{"level": lv, "a": int(own.iat[i, 0]), "a_aligned": int(aligned.iat[i, 0]),
                   "b": int(own.iat[i, 1]), "b_aligned": int(aligned.iat[i, 1])}
                  for i, lv in enumerate(own.index)]
    legend = [{"key": k, "colour": colours[k], "label": labels[k],
               "count": int((comp.changes[column] == k).sum())} for k in order]
    untested = [{"key": k, "label": CHANGE_LABELS[k]} for k in CHANGE_LABELS
                if k != "sin_informacion"] if not comp.testable else []
    created = comp.created.to_dict("records")
    # On the older geography, municipalities the newer one divides carry the pooled value of
    # their pieces (riskmap.model.compare); they are listed, never compared silently.
    divided = comp.changes[comp.changes["alignment"] == "aggregated"]
    split = [{"cvegeo": r.cvegeo, "nom_mun": r.nom_mun, "parts": r.aggregated_from.split("+")}
             for r in divided.itertuples()]
    context = _common(atlas, b, a)
    return render_template(
        "comparar.html", **context, a=a, b=b, counts=count_rows, comp=comp, regla=regla,
        uses=uses, by_rule=atlas.counts_by_rule(a, b, regla), rule_names=RULE_CHOICES,
        notes=[_note_text(n, a, b) for n in comp.notes],
        transitions=comp.transitions, totals=comp.transition_totals(),
        levels=list(comp.transitions.index), change_map=change_parts, twin=twin,
        legend=legend, untested=untested, rule_warning=_rule_warning(comp, a, b),
        entered=comp.entered_alto.to_dict("records"), left=comp.left_alto.to_dict("records"),
        by_state=comp.by_state.to_dict("records"), state_totals=_state_totals(comp.by_state),
        created=created, split=split,
        config=_map_config([change_spec] + [t[2] for t in twin], states=states, sync=True))


RULE_LABELS = {"publicado": _l("niveles publicados (lista oficial importada)"),
               "significance": _l("regla de significancia"), "mirti": _l("regla MIRTI")}


def _rule_name(rule) -> str:
    return str(RULE_LABELS.get(rule, rule or _l("regla desconocida")))


def _rule_warning(comp, a: str, b: str) -> str | None:
    """The page's warning when the editions classify with different rules, else None."""
    if comp.same_rule:
        return None
    return str(_l("Las dos ediciones clasifican con reglas distintas: %(a)s usa %(ra)s y %(b)s "
                  "usa %(rb)s. Parte de las entradas y salidas de cada nivel se debe al cambio "
                  "de regla, no a un cambio del trabajo infantil.")) % {
        "a": a, "b": b, "ra": _rule_name(comp.rules.get("a")),
        "rb": _rule_name(comp.rules.get("b"))}


def _note_text(note: dict, a: str, b: str) -> str:
    """One sentence explaining why A's counts on B's geography differ from its own."""
    n = note["count"]
    if note["kind"] == "derived":
        text = _l("%(n)s municipios creados después de %(a)s toman el nivel de su municipio de "
                  "origen y se cuentan en la geografía de %(b)s.")
    elif note["kind"] == "unmatched":
        text = _l("%(n)s municipios de %(b)s no tienen municipio de origen en %(a)s y se "
                  "cuentan como «sin información» en %(a)s.")
    elif note["kind"] == "pooled":
        text = _l("%(n)s municipios creados después de %(b)s se juntan con el municipio del que "
                  "se separaron (%(groups)s municipios de %(b)s): su valor de %(a)s es el de "
                  "las partes juntas.")
    else:
        text = _l("%(n)s municipios de %(a)s no tienen lugar en la geografía de %(b)s y no se "
                  "cuentan.")
    return str(text) % {"n": f"{n:,}", "a": a, "b": b, "groups": note.get("groups", "")}


def _state_totals(by_state: pd.DataFrame) -> dict:
    """Column sums of the state table (None for change counts that could not be tested)."""
    out = {}
    for col in ("municipios", "alto_a", "alto_b", "aumento", "disminucion"):
        values = pd.to_numeric(by_state[col], errors="coerce")
        out[col] = None if values.isna().all() else int(values.sum())
    return out


def _change_values(changes: pd.DataFrame, a: str, b: str, column: str = "change") -> dict:
    """Change class (``column``: the tested change, or the level transition) and tooltip
    lines per municipality of B's geography."""
    word_from = str(_l("valor tomado de %(code)s (municipio creado después de %(a)s)"))
    # Translations and the per-cent format resolved once, not per municipality (a
    # comparison has 2,469 rows; per-row gettext made this half a second).
    labels = {str(k): str(v) for k, v in LEVEL_LABELS.items()}
    unit = " %" if current_lang() == "es" else "%"

    def share(value) -> str:
        try:
            value = float(value)
        except (TypeError, ValueError):
            return "–"
        return f"{value * 100:,.1f}{unit}" if math.isfinite(value) else "–"

    out = {}
    derived = changes["derived_from"] if "derived_from" in changes else [None] * len(changes)
    for code, change, la, pa, lb, pb, source in zip(
            changes["cvegeo"].astype(str), changes[column], changes["level_a"],
            changes["probability_a"], changes["level_b"], changes["probability_b"], derived):
        line_a = f"{a}: {labels.get(str(la), la)} ({share(pa)})"
        line_b = f"{b}: {labels.get(str(lb), lb)} ({share(pb)})"
        extra = word_from % {"code": source, "a": a} if isinstance(source, str) and source else ""
        key = change if isinstance(change, str) else "sin_informacion"
        out[code] = [key, line_a, line_b, extra]
    return out
