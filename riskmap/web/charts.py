"""Geometry of the small inline-SVG charts of the pages (pure functions, no Flask).

The templates draw the shapes; these functions only place them: the factor-contribution bars
of the municipality page, and the calibration plot, the EBP-against-direct scatter and the
CV histogram of the methodology page.
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
    # The pipeline's diagnostics call the column "mean_predicted"; older cards "predicted".
    def predicted(r):
        return r.get("predicted", r.get("mean_predicted"))

    pts = [(float(predicted(r)), float(r.get("observed")), r.get("n"))
           for r in table if predicted(r) is not None and r.get("observed") is not None]
    pts = [(p, o, n) for p, o, n in pts if math.isfinite(p) and math.isfinite(o)]
    chart = scatter_plot([(p, o) for p, o, _ in pts], size)
    if chart is None:
        return None
    chart["points"] = [{"x": q["x"], "y": q["y"], "predicted": p, "observed": o, "n": n}
                       for q, (p, o, n) in zip(chart["points"], pts)]
    return chart


def waterfall(steps: list[dict], width: int = 680) -> dict | None:
    """Geometry of a waterfall chart: a starting level, signed steps with intervals, an end.

    Parameters
    ----------
    steps : list of dict
        In order: ``label``, ``value`` and ``kind`` (``"total"``: a bar from zero, e.g. a
        rate; ``"step"``: a change from the running total), optionally ``low`` and ``high``
        (the step's 95 % interval, same units as ``value``).
    width : int
        Chart width in pixels.

    Returns
    -------
    dict or None
        ``width``, ``height``, ``label_w``, ``low`` and ``high`` (axis range; it does not
        start at zero) and ``bars`` (x, y, w, h, label, value, kind, positive, and ``ci``
        {x1, x2, low, high} when an interval is given); None without steps.
    """
    if not steps:
        return None
    label_w, bar_h, gap, top, value_w = 260, 20, 10, 10, 64
    running, spans = 0.0, []
    for s in steps:
        v = float(s["value"])
        if s.get("kind") == "total":
            start, end = 0.0, v
            running = v
        else:
            start, end = running, running + v
            running = end
        spans.append((start, end))
    # The axis spans the running totals and the intervals, not zero: the steps (tenths of a
    # point) would vanish beside rates of ten points. Totals start at the left edge.
    ends = [b for _, b in spans]
    ends += [a for (a, _), s in zip(spans, steps) if s.get("kind") != "total"]
    ends += [a + float(s[k]) for (a, _), s in zip(spans, steps) for k in ("low", "high")
             if s.get(k) is not None and s.get("kind") != "total"]
    lo, hi = min(ends), max(ends)
    pad = 0.25 * ((hi - lo) or abs(hi) or 1.0)
    lo, hi = lo - pad, hi + pad * 0.2
    plot_w = width - label_w - value_w
    span = (hi - lo) or 1.0

    def sx(v):
        return round(label_w + plot_w * (v - lo) / span, 1)

    bars = []
    for i, (s, (start, end)) in enumerate(zip(steps, spans)):
        if s.get("kind") == "total":
            start = lo
        x1, x2 = sorted((sx(start), sx(end)))
        bar = {"x": x1, "y": top + i * (bar_h + gap), "w": max(x2 - x1, 1.0), "h": bar_h,
               "label": s["label"], "value": float(s["value"]), "kind": s.get("kind", "step"),
               "positive": float(s["value"]) > 0, "ci": None}
        if s.get("low") is not None and s.get("high") is not None and bar["kind"] != "total":
            bar["ci"] = {"x1": sx(start + float(s["low"])), "x2": sx(start + float(s["high"])),
                         "low": float(s["low"]), "high": float(s["high"])}
        bars.append(bar)
    height = top * 2 + len(steps) * (bar_h + gap)
    return {"width": width, "height": height, "label_w": label_w, "bars": bars,
            "low": lo, "high": hi}


def scatter_plot(points: list[tuple[float, float]], size: int = 300) -> dict | None:
    """Geometry of a scatter of two proportions (e.g. EBP against direct estimates).

    Parameters
    ----------
    points : list of (x, y)
        Proportions; pairs with a missing value are left out.
    size : int
        Width and height in pixels.

    Returns
    -------
    dict or None
        ``size``, ``pad``, ``max``, ``ticks`` (v, x, y), ``points`` (x, y, vx, vy) and ``diag``;
        None without points.
    """
    pts = [(float(a), float(b)) for a, b in points
           if a is not None and b is not None and math.isfinite(a) and math.isfinite(b)]
    if not pts:
        return None
    pad = 40
    top = max(max(a for a, _ in pts), max(b for _, b in pts))
    top = math.ceil(top * 10 - 1e-9) / 10 if top > 0 else 0.1
    inner = size - 2 * pad

    def sx(v):
        return round(pad + inner * v / top, 1)

    def sy(v):
        return round(size - pad - inner * v / top, 1)

    ticks = [round(top * k / 4, 4) for k in range(5)]
    return {"size": size, "pad": pad, "max": top,
            "ticks": [{"v": t, "x": sx(t), "y": sy(t)} for t in ticks],
            "points": [{"x": sx(a), "y": sy(b), "vx": a, "vy": b} for a, b in pts],
            "diag": {"x0": sx(0), "y0": sy(0), "x1": sx(top), "y1": sy(top)}}


def histogram(values: list[float], edges: list[float], width: int = 300,
              height: int = 160) -> dict | None:
    """Geometry of a histogram with the given bin edges (the last bin takes larger values).

    Returns
    -------
    dict or None
        ``width``, ``height``, ``pad`` and ``bars`` (x, y, w, h, lo, hi, n, share); None without
        finite values.
    """
    vals = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not vals or len(edges) < 2:
        return None
    counts = [0] * (len(edges) - 1)
    for v in vals:
        k = next((i for i in range(len(edges) - 1) if v < edges[i + 1]), len(edges) - 2)
        counts[max(k, 0)] += 1
    pad, n_bins = 30, len(counts)
    bar_w = (width - 2 * pad) / n_bins
    top = max(counts) or 1
    bars = []
    for i, c in enumerate(counts):
        h = (height - 2 * pad) * c / top
        bars.append({"x": round(pad + i * bar_w, 1), "y": round(height - pad - h, 1),
                     "w": round(bar_w - 2, 1), "h": round(h, 1), "lo": edges[i],
                     "hi": edges[i + 1], "n": c, "share": c / len(vals)})
    return {"width": width, "height": height, "pad": pad, "bars": bars}
