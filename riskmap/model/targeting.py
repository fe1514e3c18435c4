"""Inspection targeting in field units: allocate visits across municipalities (docs/METHOD.md
§10).

One visit is one inspected workplace. The v-th visit to municipality m is expected to find

    g_m(v) = λ · (P_m / r) · (1 − (v − 1) / K_m)₊

children in child labour, where λ is the number of children found per visit at the national
rate r, P_m the municipality's probability and K_m its inspectable workplaces. A municipality
never yields more than its expected number of children in child labour E_m: the gains are cut
where their running total reaches E_m. Each g_m is non-increasing in v, so the objective
(total expected children found) is separable and concave, and giving each visit to the
largest marginal gain (a heap) is optimal.

Defaults before any outcome is recorded (assumptions, not measurements; see the README):

- :data:`DEFAULT_LAMBDA` = 0.5 children found per visited workplace at the national rate. No
  public source reports this figure for Mexico; it is an order-of-magnitude assumption that
  the service replaces by the estimate from recorded outcomes as soon as there are any.
- :data:`WORKPLACES_PER_CHILD` = 0.2: without a workplace table, K_m = 0.2 · N_m (at least
  1). Mexico's economic census counts roughly 5 to 6 million establishments for roughly 28 to
  30 million children aged 5–17; the ratio is an order of magnitude, not a municipal count.

Rankings: ``by="count"`` orders the worklist by the children each municipality is expected to
yield in total, ``by="rate"`` by the children expected per visit there. The allocation is the
same (it maximises the total).
"""

from __future__ import annotations

import heapq

import numpy as np
import pandas as pd

from .levels import LEVELS
from ..errors import BadParameter, InputError

BY = ("count", "rate")
DEFAULT_LAMBDA = 0.5
WORKPLACES_PER_CHILD = 0.2
WORKLIST_COLUMNS = ("rank", "cvegeo", "nom_mun", "nom_ent", "cve_ent", "level", "probability",
                    "ci_low", "ci_high", "children", "expected_child_labour", "workplaces",
                    "visits", "expected_found", "found_per_visit", "cumulative_found")
_NEEDED = ("cvegeo", "probability", "expected_child_labour")


def visit_gains(rate, workplaces, cap, visits: int) -> np.ndarray:
    """Expected children found by visits 1..``visits`` in one municipality.

    Parameters
    ----------
    rate : float
        λ · P_m / r, children expected on a first visit.
    workplaces : float
        K_m (> 0).
    cap : float
        E_m: the total never exceeds it.
    visits : int

    Returns
    -------
    ndarray of float, length ``visits``
    """
    v = np.arange(1, visits + 1, dtype=np.float64)
    raw = rate * np.clip(1.0 - (v - 1.0) / workplaces, 0.0, None)
    total = np.minimum(np.cumsum(raw), cap)
    return np.diff(np.concatenate([[0.0], total]))


def greedy_visits(rate, workplaces, cap, visits: int) -> np.ndarray:
    """Visits per municipality maximising total expected children found, ``sum v_m <= visits``.

    Visits whose marginal gain would be zero are not given, so fewer than ``visits`` may be
    allocated when every municipality is exhausted. Ties go to the earlier municipality.

    Parameters
    ----------
    rate, workplaces, cap : array-like
        Per municipality: λ · P_m / r, K_m and E_m (see :func:`visit_gains`); NaN rates or
        caps count as 0.
    visits : int

    Returns
    -------
    ndarray of int
    """
    a = np.nan_to_num(np.asarray(rate, dtype=np.float64), nan=0.0)
    k = np.asarray(workplaces, dtype=np.float64)
    e = np.nan_to_num(np.asarray(cap, dtype=np.float64), nan=0.0)
    alloc = np.zeros(a.size, dtype=np.int64)
    got = np.zeros(a.size)

    def gain(m):
        v = alloc[m] + 1  # the next visit
        raw = a[m] * max(0.0, 1.0 - (v - 1) / k[m])
        return min(raw, e[m] - got[m])

    heap = [(-gain(m), m) for m in np.flatnonzero((a > 0) & (e > 0) & (k > 0))]
    heapq.heapify(heap)
    for _ in range(int(visits)):
        if not heap:
            break
        neg, m = heapq.heappop(heap)
        if neg >= 0:
            break
        alloc[m] += 1
        got[m] += -neg
        nxt = gain(m)
        if nxt > 0:
            heapq.heappush(heap, (-nxt, m))
    return alloc


def workplaces_for(pool: pd.DataFrame, table: pd.DataFrame | None) -> np.ndarray:
    """K_m for the rows of ``pool``: the ``table`` count when given, else 0.2 · N_m (>= 1)."""
    children = pd.to_numeric(pool.get("children", pd.Series(np.nan, index=pool.index)),
                             errors="coerce").to_numpy(dtype=np.float64)
    default = np.maximum(1.0, np.round(WORKPLACES_PER_CHILD * np.nan_to_num(children)))
    if table is None:
        return default
    counts = table.set_index("cvegeo")["count"]
    k = pool["cvegeo"].astype(str).map(counts).to_numpy(dtype=np.float64)
    return np.where(np.isfinite(k), k, default)


def national_rate(rows: pd.DataFrame) -> float:
    """r = Σ E_m / Σ N_m over the municipalities with both (the children-weighted mean P)."""
    e = pd.to_numeric(rows["expected_child_labour"], errors="coerce")
    n = pd.to_numeric(rows.get("children"), errors="coerce") if "children" in rows else None
    if n is not None:
        ok = e.notna() & n.notna() & (n > 0)
        if ok.any() and n[ok].sum() > 0:
            return float(e[ok].sum() / n[ok].sum())
    p = pd.to_numeric(rows["probability"], errors="coerce")
    return float(p.mean())


def allocate(rows: pd.DataFrame, visits, lam=DEFAULT_LAMBDA, states=None, levels=None,
             by="count", workplaces: pd.DataFrame | None = None, exclude=None):
    """Allocate inspection visits (one visit = one workplace) and return the worklist.

    Parameters
    ----------
    rows : DataFrame
        Edition rows: ``cvegeo``, ``probability``, ``expected_child_labour`` and, used or shown
        when present, ``children, nom_mun, nom_ent, cve_ent, level, ci_low, ci_high``.
    visits : int
        Number of visits (>= 0).
    lam : float, default :data:`DEFAULT_LAMBDA`
        λ, children found per visit at the national rate (> 0).
    states, levels : sequence of str, optional
        Restrict to these state codes (``cve_ent``) / levels (``LEVELS``).
    by : {"count", "rate"}
        Order of the worklist: total expected children found, or expected per visit.
    workplaces : DataFrame, optional
        ``cvegeo, count``: inspectable workplaces K_m; missing municipalities use 0.2 · N_m.
    exclude : iterable of str, optional
        Municipalities left out (e.g. visited within the cool-down window).

    Returns
    -------
    DataFrame
        ``WORKLIST_COLUMNS``, municipalities with at least one visit; ``expected_found`` is
        in children, ``cumulative_found`` its running total in worklist order.

    Raises
    ------
    BadParameter
        Invalid ``by``, ``levels``, ``states``, ``visits`` or ``lam``.
    InputError
        ``rows`` lacks required columns.
    """
    if by not in BY:
        raise BadParameter("by", by, BY)
    if isinstance(visits, bool) or not isinstance(visits, (int, np.integer)) or visits < 0:
        raise BadParameter("visits", visits,
                           message=f"invalid value {visits!r} for 'visits': need an integer >= 0")
    try:
        lam = float(lam)
    except (TypeError, ValueError):
        lam = float("nan")
    if not (np.isfinite(lam) and lam > 0):
        raise BadParameter("lam", lam, message=f"invalid value {lam!r} for 'lam': need λ > 0")
    missing = [c for c in _NEEDED if c not in rows.columns]
    if missing:
        raise InputError("rows lack column(s): " + ", ".join(missing))
    rate_r = national_rate(rows)
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
    if exclude:
        pool = pool[~pool["cvegeo"].astype(str).isin(set(map(str, exclude)))]

    out = pool.reset_index(drop=True).copy()
    expected = pd.to_numeric(out["expected_child_labour"], errors="coerce").to_numpy(
        dtype=np.float64)
    prob = pd.to_numeric(out["probability"], errors="coerce").to_numpy(dtype=np.float64)
    ok = np.isfinite(expected) & np.isfinite(prob)  # no estimate: nothing to target
    first = np.where(ok, lam * prob / rate_r, 0.0) if rate_r > 0 else np.zeros(len(out))
    cap = np.where(ok, expected, 0.0)
    k = workplaces_for(out, workplaces)
    alloc = greedy_visits(first, k, cap, int(visits))

    for col in WORKLIST_COLUMNS:
        if col not in out.columns:
            out[col] = np.nan
    out["workplaces"] = k
    out["visits"] = alloc
    out["expected_found"] = [float(visit_gains(first[i], k[i], cap[i], int(v)).sum()) if v else 0.0
                             for i, v in enumerate(alloc)]
    out = out[out["visits"] > 0].copy()
    out["found_per_visit"] = out["expected_found"] / out["visits"]
    key = "expected_found" if by == "count" else "found_per_visit"
    out = out.sort_values([key, "cvegeo"], ascending=[False, True],
                          kind="stable").reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    out["cumulative_found"] = out["expected_found"].cumsum()
    return out[list(WORKLIST_COLUMNS)]


def read_workplaces(path) -> pd.DataFrame:
    """Read a workplace table (``cvegeo, count``; CSV, UTF-8 or latin-1).

    Raises
    ------
    InputError
        Missing columns, a bad code, or a count that is not an integer >= 1 (file, column, row).
    """
    from pathlib import Path

    from ..fileio import pad_code, read_csv_text

    path = Path(path)
    try:
        table = read_csv_text(path)
    except FileNotFoundError:
        raise InputError("workplace table not found", file=path) from None
    table.columns = [str(c).strip().lower() for c in table.columns]
    for col in ("cvegeo", "count"):
        if col not in table.columns:
            raise InputError(f"missing column '{col}' (expected columns: cvegeo, count)",
                             file=path)
    codes, _ = pad_code(table["cvegeo"], 5, "cvegeo", path)
    counts = pd.to_numeric(table["count"].str.strip(), errors="coerce")
    bad = ~(counts.notna() & (counts >= 1) & (counts == counts.round()))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"expected an integer >= 1, found {table['count'].iloc[row]!r}",
                         file=path, column="count", row=row + 2)
    return pd.DataFrame({"cvegeo": codes, "count": counts.astype(np.int64)})
