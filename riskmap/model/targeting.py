"""Inspection targeting: allocate visits across municipalities (docs/METHOD.md §10).

With v visits in municipality m, expected detections are ``E_m (1 - (1 - q)^v)``; the
objective is separable and concave in each v, so giving each visit to the largest marginal
gain ``a_m q (1 - q)^v`` (a heap) is optimal. ``by="count"`` uses ``a_m = E_m`` (expected
children in child labour), ``by="rate"`` uses ``a_m = P_m`` (the probability), which favours
small high-rate municipalities.
"""

from __future__ import annotations

import heapq

import numpy as np
import pandas as pd

from .levels import LEVELS
from ..errors import BadParameter, InputError

BY = ("count", "rate")
WORKLIST_COLUMNS = ("rank", "cvegeo", "nom_mun", "nom_ent", "cve_ent", "level", "probability",
                    "ci_low", "ci_high", "children", "expected_child_labour", "visits",
                    "expected_detections", "cumulative_detections")
_NEEDED = ("cvegeo", "probability", "expected_child_labour")


def greedy_visits(values, visits, q) -> np.ndarray:
    """Visits per unit maximising ``sum a_m (1 - (1 - q)^v_m)`` with ``sum v_m <= visits``.

    Visits whose marginal gain would be zero are not given (e.g. a second visit when
    ``q = 1``), so fewer than ``visits`` may be allocated. Ties go to the earlier unit.

    Parameters
    ----------
    values : array-like
        Non-negative a_m (NaN counts as 0).
    visits : int
    q : float in (0, 1]

    Returns
    -------
    ndarray of int
    """
    a = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)
    alloc = np.zeros(a.size, dtype=np.int64)
    heap = [(-a[m] * q, m) for m in np.flatnonzero(a > 0)]
    heapq.heapify(heap)
    keep = 1.0 - q
    for _ in range(visits):
        if not heap:
            break
        neg_gain, m = heapq.heappop(heap)
        if neg_gain >= 0:
            break
        alloc[m] += 1
        nxt = neg_gain * keep  # the next visit reaches a share q of what is still unreached
        if nxt < 0:
            heapq.heappush(heap, (nxt, m))
    return alloc


def allocate(rows: pd.DataFrame, visits, q=0.3, states=None, levels=None, by="count"):
    """Allocate inspection visits and return the worklist.

    Parameters
    ----------
    rows : DataFrame
        Edition rows: ``cvegeo``, ``probability``, ``expected_child_labour`` and, shown when
        present, ``nom_mun, nom_ent, cve_ent, level, ci_low, ci_high, children``.
    visits : int
        Number of visits (>= 0).
    q : float, default 0.3
        Share of a municipality's child labour one visit reaches, in (0, 1].
    states : sequence of str, optional
        Restrict to these state codes (``cve_ent``).
    levels : sequence of str, optional
        Restrict to these levels (``LEVELS``).
    by : {"count", "rate"}
        Maximise expected detections (E_m) or probability-weighted coverage (P_m).

    Returns
    -------
    DataFrame
        ``WORKLIST_COLUMNS``, municipalities with at least one visit, ranked by expected
        detections (1 = most); ``cumulative_detections`` is the running total.

    Raises
    ------
    BadParameter
        Invalid ``by``, ``levels``, ``states``, ``visits`` or ``q``.
    InputError
        ``rows`` lacks required columns.
    """
    if by not in BY:
        raise BadParameter("by", by, BY)
    if isinstance(visits, bool) or not isinstance(visits, (int, np.integer)) or visits < 0:
        raise BadParameter("visits", visits,
                           message=f"invalid value {visits!r} for 'visits': need an integer >= 0")
    try:
        q = float(q)
    except (TypeError, ValueError):
        q = float("nan")
    if not 0 < q <= 1:
        raise BadParameter("q", q, message=f"invalid value {q!r} for 'q': need 0 < q <= 1")
    missing = [c for c in _NEEDED if c not in rows.columns]
    if missing:
        raise InputError("rows lack column(s): " + ", ".join(missing))
    pool = pd.DataFrame(rows).drop(columns="geometry", errors="ignore")
    if levels:
        bad = [lv for lv in levels if lv not in LEVELS]
        if bad:
            raise BadParameter("levels", bad[0], LEVELS)
        pool = pool[pool["level"].isin(list(levels))]
    if states:
        present = sorted(pd.unique(rows["cve_ent"].astype(str))) if "cve_ent" in rows else []
        bad = [s for s in states if str(s) not in present]
        if bad:
            raise BadParameter("states", bad[0], present)
        pool = pool[pool["cve_ent"].astype(str).isin([str(s) for s in states])]

    expected = pd.to_numeric(pool["expected_child_labour"], errors="coerce").to_numpy(
        dtype=np.float64)
    prob = pd.to_numeric(pool["probability"], errors="coerce").to_numpy(dtype=np.float64)
    ok = np.isfinite(expected) & np.isfinite(prob)  # no estimate: nothing to target
    value = np.where(ok, expected if by == "count" else prob, 0.0)
    alloc = greedy_visits(value, int(visits), q)

    out = pool.reset_index(drop=True).copy()
    for col in WORKLIST_COLUMNS:
        if col not in out.columns and col not in ("rank", "visits", "expected_detections",
                                                  "cumulative_detections"):
            out[col] = np.nan
    out["visits"] = alloc
    out["expected_detections"] = np.where(ok, expected, 0.0) * (1.0 - (1.0 - q) ** alloc)
    out = out[out["visits"] > 0]
    out = out.sort_values(["expected_detections", "cvegeo"], ascending=[False, True],
                          kind="stable").reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    out["cumulative_detections"] = out["expected_detections"].cumsum()
    return out[list(WORKLIST_COLUMNS)]
