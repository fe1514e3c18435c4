"""Map building for the pages: folium maps without CDNs, and the small per-municipality tables
the browser styles them with.

The geometry is never embedded in a page: the glue script (``static/js/riskmap.js``) fetches it
once from the cached geometry endpoint and colours each polygon from a compact value table
(class index per layer) produced here. Colours are colour-blind-safe (ColorBrewer YlOrRd,
Purples, RdBu), and "sin información" is always its own grey class.

This module does not import Flask; views pass it plain values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import folium
import numpy as np
import pandas as pd

#: Colour of municipalities without an estimate (its own legend class on every layer).
NO_DATA_COLOUR = "#bdbdbd"

#: Level palette (sequential dark red / orange / cream, safe for deuteranopia and
#: protanopia), then no data. Neighbouring levels differ by a contrast ratio >= 3:1
#: (WCAG 1.4.11); the stylesheet's --alto/--medio/--bajo repeat these values.
LEVEL_COLOURS = {"alto": "#67000d", "medio": "#e6550d", "bajo": "#fff5eb",
                 "sin_informacion": NO_DATA_COLOUR}
LEVEL_ORDER = ("alto", "medio", "bajo", "sin_informacion")

#: Sequential palettes of the continuous layers (5 classes each).
SEQUENTIAL = {
    "probabilidad": ["#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"],
    "esperados": ["#ffffcc", "#c2e699", "#78c679", "#31a354", "#006837"],
    "incertidumbre": ["#f2f0f7", "#cbc9e2", "#9e9ac8", "#756bb1", "#54278f"],
}

#: Level certainty classes: fixed upper bounds, so the 0.8 "uncertain" line is a class edge
#: on every map (ColorBrewer Blues: pale = uncertain).
CERTAINTY_BREAKS = [0.5, 0.8, 0.95, 1.0]
CERTAINTY_COLOURS = ["#eff3ff", "#bdd7e7", "#6baed6", "#2171b5"]


#: Change classes of the comparison map (RdBu ends; grey middle), then no data.
CHANGE_COLOURS = {"aumento": "#b2182b", "sin_cambio": "#f7f7f7", "disminucion": "#2166ac",
                  "sin_informacion": NO_DATA_COLOUR}
CHANGE_ORDER = ("aumento", "sin_cambio", "disminucion", "sin_informacion")
#: Level transitions (riskmap.model.compare.LEVEL_CHANGES), mapped when no change can be tested.
LEVEL_CHANGE_COLOURS = {"sube": "#d6604d", "igual": "#f7f7f7", "baja": "#4393c3",
                        "sin_informacion": NO_DATA_COLOUR}
LEVEL_CHANGE_ORDER = ("sube", "igual", "baja", "sin_informacion")

#: Visits palette of the targeting map (Blues); municipalities without visits stay pale.
VISIT_COLOURS = ["#f7fbff", "#c6dbef", "#6baed6", "#2171b5", "#08306b"]


@dataclass(frozen=True)
class MapParts:
    """What a page needs to place one folium map.

    Attributes
    ----------
    name : str
        JavaScript variable holding the ``L.map`` (global, used by the glue script).
    html : str
        The map's ``<div>``.
    script : str
        folium's JavaScript creating the map (goes in a nonce'd inline ``<script>``).
    """

    name: str
    html: str
    script: str


def build_map(map_id: str, *, bounds=None, tile_url: str = "", tile_attribution: str = "",
              min_zoom: int = 3) -> MapParts:
    """Build a folium map that loads nothing from other hosts.

    Parameters
    ----------
    map_id : str
        Stable identifier (letters, digits, ``_``); the JS variable is ``map_<map_id>``.
    bounds : sequence of 4 floats, optional
        ``(minx, miny, maxx, maxy)`` in degrees to centre the first view on.
    tile_url, tile_attribution : str
        Base-map tile template; empty means no tiles (the default, nothing leaves the service).
    min_zoom : int
        Smallest zoom offered.

    Returns
    -------
    MapParts
    """
    if bounds is None or not all(map(math.isfinite, bounds)):
        bounds = (-118.4, 14.5, -86.7, 32.7)  # Mexico
    minx, miny, maxx, maxy = bounds
    # Start already framed on the bounds: folium's fit_bounds would start a zoom animation
    # whose end, arriving after the glue script has framed the data, resets the view.
    span = max(maxx - minx, (maxy - miny) * 1.6, 1e-3)
    zoom = int(min(12, max(min_zoom, math.floor(math.log2(700 * 360 / (256 * span))))))
    fmap = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=zoom,
                      tiles=None, prefer_canvas=True, control_scale=True, min_zoom=min_zoom,
                      # Quarter-level zoom steps let a fitted view fill the frame (whole
                      # levels leave up to half of it empty); the +/- buttons step by half.
                      zoom_snap=0.25, zoom_delta=0.5)
    # folium's defaults pull Leaflet, jQuery, Bootstrap and fonts from CDNs; the page loads
    # Leaflet from the service instead, and nothing else is needed.
    fmap.default_js = []
    fmap.default_css = []
    fmap._id = map_id
    if tile_url:
        folium.TileLayer(tiles=tile_url, attr=tile_attribution or " ", name="base",
                         control=False).add_to(fmap)
    root = fmap.get_root()
    root.render()
    # Only the map div and its script are used: folium's header styles would set the whole
    # page to 100 % height and disable zooming on phones.
    return MapParts(name=fmap.get_name(), html=root.html.render(), script=root.script.render())


def class_breaks(values, k: int = 5) -> list[float]:
    """Upper bounds of ``k`` quantile classes of the finite ``values`` (last = max).

    Parameters
    ----------
    values : array-like
    k : int

    Returns
    -------
    list of float
        Strictly increasing; may have fewer than ``k`` entries when values repeat.
    """
    arr = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=float)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return []
    qs = np.quantile(arr, np.linspace(0, 1, k + 1)[1:])
    return [float(q) for q in np.unique(qs)]


def classify(values, breaks) -> np.ndarray:
    """Class index (0-based) of each value by upper-bound ``breaks``; -1 for missing."""
    arr = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=float)
    out = np.full(arr.shape, -1, dtype=int)
    ok = np.isfinite(arr)
    if breaks:
        idx = np.searchsorted(np.asarray(breaks), arr[ok], side="left")
        out[ok] = np.minimum(idx, len(breaks) - 1)
    return out


def layer_table(rows: pd.DataFrame) -> tuple[dict, dict]:
    """Compact per-municipality values and the legend of every layer.

    Parameters
    ----------
    rows : DataFrame
        Edition rows (``cvegeo, level, probability, ci_low, ci_high, children,
        expected_child_labour``).

    Returns
    -------
    values : dict
        ``cvegeo -> [level, p, ci_low, ci_high, children, expected, c_prob, c_exp, c_unc,
        c_cert, certainty]``; ``c_*`` are class indexes (-1 = sin información; ``c_cert`` by
        :data:`CERTAINTY_BREAKS`); missing numbers are ``None``.
    legends : dict
        ``layer -> list of {key, colour, low, high, count}`` (the last entry is the no-data
        class, always present so the legend explains the grey).
    """
    # A municipality below the minimum of census records is "sin información" on every
    # layer, as on the level layer: its estimate is kept in the data, not mapped.
    unclassified = rows["level"].astype(str).eq("sin_informacion").to_numpy()

    def mapped(column: pd.Series) -> pd.Series:
        return column.astype(float).mask(unclassified)

    width = mapped(rows["ci_high"]) - mapped(rows["ci_low"])
    series = {"probabilidad": mapped(rows["probability"]),
              "esperados": mapped(rows["expected_child_labour"]),
              "incertidumbre": width}
    classes, legends = {}, {}
    for layer, values in series.items():
        breaks = class_breaks(values)
        classes[layer] = classify(values, breaks)
        legends[layer] = _legend(values, breaks, classes[layer], SEQUENTIAL[layer])
    certainty = mapped(rows["level_certainty"]) if "level_certainty" in rows.columns else \
        pd.Series(np.nan, index=rows.index)
    classes["certeza"] = classify(certainty, CERTAINTY_BREAKS)
    legends["certeza"] = _legend(certainty, CERTAINTY_BREAKS, classes["certeza"],
                                 CERTAINTY_COLOURS)
    if legends["certeza"]:
        legends["certeza"][0]["low"] = 0.0  # fixed classes start at 0, whatever the data
    levels = rows["level"].astype(str)
    counts = levels.value_counts()
    legends["nivel"] = [{"key": lv, "colour": LEVEL_COLOURS[lv], "count": int(counts.get(lv, 0))}
                        for lv in LEVEL_ORDER]
    # Column-wise conversion (one pass per column, not per cell): 2,469 rows x 9 values.
    columns = [levels.tolist()]
    for col, digits in (("probability", 5), ("ci_low", 5), ("ci_high", 5), ("children", 0),
                        ("expected_child_labour", 1)):
        columns.append(_rounded(rows[col], digits))
    for layer in ("probabilidad", "esperados", "incertidumbre", "certeza"):
        columns.append(classes[layer].astype(int).tolist())
    columns.append(_rounded(certainty, 3))
    codes = rows["cvegeo"].astype(str).tolist()
    values = {code: list(vals) for code, vals in zip(codes, zip(*columns))}
    return values, legends


def _rounded(column: pd.Series, digits: int) -> list:
    """Values rounded to ``digits`` (ints when 0), missing or non-finite ones as None."""
    arr = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    ok = np.isfinite(arr)
    rounded = np.round(arr, digits)
    if digits == 0:
        return [int(v) if f else None for v, f in zip(rounded.tolist(), ok.tolist())]
    return [v if f else None for v, f in zip(rounded.tolist(), ok.tolist())]


def _legend(values, breaks, classes, colours) -> list[dict]:
    counts = np.bincount(classes[classes >= 0], minlength=len(breaks)) if len(breaks) else []
    finite = pd.Series(values)[np.isfinite(pd.Series(values).astype(float))]
    lows = [float(finite.min()) if len(finite) else None] + breaks[:-1]
    palette = _spread(colours, len(breaks))
    items = [{"key": f"c{i}", "colour": palette[i], "low": lows[i], "high": breaks[i],
              "count": int(counts[i])} for i in range(len(breaks))]
    items.append({"key": "sin_informacion", "colour": NO_DATA_COLOUR, "low": None, "high": None,
                  "count": int((classes < 0).sum())})
    return items


def _spread(colours: list[str], n: int) -> list[str]:
    """Pick ``n`` colours spread over the palette (keeps the dark end when classes merge)."""
    if n >= len(colours):
        return list(colours)
    if n <= 1:
        return [colours[-1]] * n
    idx = np.round(np.linspace(0, len(colours) - 1, n)).astype(int)
    return [colours[i] for i in idx]


def class_colours(legends: dict) -> dict:
    """``layer -> list of class colours`` (what the glue script indexes with ``c_*``)."""
    return {layer: [item["colour"] for item in items if item["key"] != "sin_informacion"]
            for layer, items in legends.items() if layer != "nivel"}
