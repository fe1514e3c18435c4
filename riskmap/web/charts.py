"""Geometry of the small inline-SVG charts of the pages (pure functions, no Flask).

The templates draw the shapes; these functions only place them: the factor-contribution bars
of the municipality page and the calibration plot of the methodology page.
"""

from __future__ import annotations

import math


def factor_bars(factors: list[dict], lang: str, domains: dict, width: int = 680) -> dict:
    """Geometry of the factor-contribution bar chart (drawn as inline SVG by the template).

    Parameters
    ----------
    factors : list of dict
        ``covariate, label_es, label_en, domain, contribution`` (log-odds contributions).
    lang : str
    domains : dict
        Domain key -> display name.
    width : int
        Chart width in pixels.

    Returns
    -------
    dict
        ``width``, ``height``, ``zero`` (x of the zero line) and ``bars`` (x, y, w, label,
        domain, value, positive).
    """
    items = [f for f in factors if f.get("contribution") is not None]
    items.sort(key=lambda f: -f["contribution"])
    label_w, bar_h, gap, top, value_w = 300, 18, 8, 10, 48
    vmax = max((abs(f["contribution"]) for f in items), default=0.0) or 1.0
    lo = min(0.0, min((f["contribution"] for f in items), default=0.0))
    hi = max(0.0, max((f["contribution"] for f in items), default=0.0))
    # Room for the value printed beyond each bar's end, on whichever side bars go, so the
    # longest negative bar's value never runs into the labels.
    left = label_w + (value_w if lo < 0 else 0)
    plot_w = width - left - (value_w if hi > 0 else 8)
    span = (hi - lo) or vmax
    zero = left + plot_w * (0 - lo) / span
    bars = []
    for i, f in enumerate(items):
        value = float(f["contribution"])
        w = plot_w * abs(value) / span
        x = zero if value >= 0 else zero - w
        bars.append({"x": round(x, 1), "y": top + i * (bar_h + gap), "w": round(max(w, 0.5), 1),
                     "h": bar_h, "label": f.get(f"label_{lang}") or f.get("covariate"),
                     "phrase": f.get(f"phrase_{lang}") or f.get(f"label_{lang}") or "",
                     "domain": domains.get(f.get("domain"), f.get("domain") or ""),
                     "value": value, "positive": value > 0})
    height = top * 2 + len(items) * (bar_h + gap)
    return {"width": width, "height": max(height, 40), "zero": round(zero, 1), "bars": bars,
            "label_w": label_w}


def calibration_plot(table: list[dict], size: int = 300) -> dict | None:
    """Geometry of the calibration plot (observed vs predicted by decile) as inline SVG.

    Returns
    -------
    dict or None
        ``size``, ``pad``, ``max`` (axis maximum), ``ticks`` and ``points`` (x, y, predicted,
        observed, n); None when the card has no calibration table.
    """
    pts = [(float(r.get("predicted")), float(r.get("observed")), r.get("n"))
           for r in table if r.get("predicted") is not None and r.get("observed") is not None]
    if not pts:
        return None
    pad = 40
    top = max(max(p for p, _, _ in pts), max(o for _, o, _ in pts))
    top = math.ceil(top * 10 - 1e-9) / 10 if top > 0 else 0.1
    inner = size - 2 * pad

    def sx(v):
        return round(pad + inner * v / top, 1)

    def sy(v):
        return round(size - pad - inner * v / top, 1)

    ticks = [round(top * k / 4, 4) for k in range(5)]
    return {"size": size, "pad": pad, "max": top,
            "ticks": [{"v": t, "x": sx(t), "y": sy(t)} for t in ticks],
            "points": [{"x": sx(p), "y": sy(o), "predicted": p, "observed": o, "n": n}
                       for p, o, n in pts],
            "diag": {"x0": sx(0), "y0": sy(0), "x1": sx(top), "y1": sy(top)}}
