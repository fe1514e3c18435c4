"""National reference rate, risk levels by the significance rule, display schemes, ranks.

The default level is docs/METHOD.md §4: a municipality is ``alto`` when its whole 95 %
interval lies above the national rate, ``bajo`` when it lies below, ``medio`` otherwise, and
``sin_informacion`` without (enough) census records. Quantile or natural-break schemes are
offered for display only, from a registry keyed by a normalised name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import BadParameter, InputError
from .logit import design_meat
from .score import Z95, logit_interval

#: The level vocabulary, in display order.
LEVELS = ("alto", "medio", "bajo", "sin_informacion")
NO_INFO = "sin_informacion"

#: The classification rule, as stored in every model card.
RULE = {
    "id": "significance",
    "text": {
        "es": ("Nivel alto: el intervalo de confianza al 95 % de la probabilidad municipal "
               "está por completo sobre la tasa nacional; bajo: por completo debajo; medio: "
               "el intervalo contiene la tasa nacional (diferencia no significativa); sin "
               "información: sin registros censales o con menos del mínimo."),
        "en": ("High: the municipal probability's 95 % confidence interval lies entirely "
               "above the national rate; low: entirely below; medium: the interval contains "
               "the national rate (difference not significant); no information: no census "
               "records or fewer than the minimum."),
    },
    "parameters": {"confidence": 0.95, "reference": "national_rate", "min_records": 30,
                   "interval": "logit-scale, delta method plus census-sample variance"},
}


def describe_rule(reference=None, min_records=30) -> dict:
    """The rule dict with the values used by one edition filled in."""
    rule = {**RULE, "text": dict(RULE["text"]), "parameters": dict(RULE["parameters"])}
    rule["parameters"]["min_records"] = int(min_records)
    if reference is not None:
        rule["parameters"]["reference_value"] = float(reference)
    return rule


def national_rate(survey: pd.DataFrame, outcome="child_labour", z=Z95,
                  single_psu="centre") -> dict:
    """Weighted direct estimate of the child-labour rate with its design-based SE.

    Parameters
    ----------
    survey : DataFrame
        Survey records with ``weight``, the outcome and, when present, ``strata`` and ``psu``.
    outcome : str, default "child_labour"
    z : float
        Normal quantile of the interval (logit-scale, as Stata's ``svy: proportion``).
    single_psu : {"centre", "skip"}
        Strata with one PSU (see :class:`riskmap.model.logit.SurveyLogit`).

    Returns
    -------
    dict
        ``estimate``, ``se``, ``ci_low``, ``ci_high``.

    Raises
    ------
    InputError
        Missing columns, weights <= 0, outcome outside 0/1.
    """
    for col in ("weight", outcome):
        if col not in survey.columns:
            raise InputError("survey records lack this column", column=col)
    w = survey["weight"].to_numpy(dtype=np.float64, na_value=np.nan)
    y = survey[outcome].to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~(np.isfinite(w) & (w > 0))
    if bad.any():
        raise InputError("weights must be finite and > 0", column="weight",
                         row=int(np.flatnonzero(bad)[0]))
    bad = ~((y == 0) | (y == 1))
    if bad.any():
        raise InputError("outcome must be 0/1", column=outcome, row=int(np.flatnonzero(bad)[0]))
    total = w.sum()
    r = float(np.dot(w, y) / total)
    # Linearised ratio estimator: z_i = w_i (y_i - r) / sum(w).
    u = w * (y - r) / total
    strata = survey["strata"].to_numpy() if "strata" in survey.columns else None
    psu = survey["psu"].to_numpy() if "psu" in survey.columns else None
    meat, _, _ = design_meat(u, strata=strata, psu=psu, single_psu=single_psu)
    se = float(np.sqrt(meat[0, 0]))
    lo, hi = logit_interval(np.array([r]), np.array([se]), z)
    return {"estimate": r, "se": se, "ci_low": float(lo[0]), "ci_high": float(hi[0])}


def classify_levels(scores: pd.DataFrame, reference: float, min_records=30) -> pd.Series:
    """Risk level per municipality by the significance rule.

    Parameters
    ----------
    scores : DataFrame
        With ``ci_low``, ``ci_high`` and ``n_records`` (as from ``score_municipalities``).
    reference : float
        National rate r.
    min_records : int, default 30
        Fewer census records than this gives ``sin_informacion``.

    Returns
    -------
    Series
        Named ``level``, same index as ``scores``, values in ``LEVELS``.
    """
    if not np.isfinite(reference) or not 0 < reference < 1:
        raise InputError(f"the national reference rate must be in (0, 1), got {reference!r}")
    lo = scores["ci_low"].to_numpy(dtype=np.float64, na_value=np.nan)
    hi = scores["ci_high"].to_numpy(dtype=np.float64, na_value=np.nan)
    n = scores["n_records"].to_numpy(dtype=np.float64, na_value=0.0)
    level = np.full(len(scores), "medio", dtype=object)
    level[lo > reference] = "alto"
    level[hi < reference] = "bajo"
    level[(n < min_records) | np.isnan(lo) | np.isnan(hi)] = NO_INFO
    return pd.Series(level, index=scores.index, name="level", dtype=object)


# ---------------------------------------------------------------------- display schemes
def _mapclassify(name):
    def classify(values, k):
        import mapclassify

        return getattr(mapclassify, name)(values, k=k)
    return classify


def fisher_jenks_bins(values, k) -> np.ndarray:
    """Exact Fisher-Jenks natural breaks (minimum within-class sum of squares).

    mapclassify's version runs in pure Python without numba (11 s for 2,457 municipalities);
    this dynamic programme is the same optimum with one vectorised pass per class.

    Returns
    -------
    ndarray
        Upper bound of each class (the last is the maximum).
    """
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = x.size
    s1 = np.concatenate([[0.0], np.cumsum(x)])
    s2 = np.concatenate([[0.0], np.cumsum(x * x)])
    # cost[c][j]: best sum of squares of x[:j] in c+1 classes; back[c][j]: start of last class
    cost = np.full((k, n + 1), np.inf)
    back = np.zeros((k, n + 1), dtype=np.int64)
    j = np.arange(1, n + 1)
    cost[0, 1:] = s2[1:] - s1[1:] ** 2 / j
    for c in range(1, k):
        for end in range(c + 1, n + 1):
            start = np.arange(c, end)  # last class is x[start:end]
            size = end - start
            ssd = s2[end] - s2[start] - (s1[end] - s1[start]) ** 2 / size
            total = cost[c - 1, start] + ssd
            best = int(np.argmin(total))
            cost[c, end] = total[best]
            back[c, end] = start[best]
    bins, end = [], n
    for c in range(k - 1, -1, -1):
        bins.append(x[end - 1])
        end = back[c, end] if c > 0 else 0
    return np.asarray(bins[::-1])


@dataclass
class _Result:
    bins: np.ndarray
    yb: np.ndarray


def _natural_breaks(values, k):
    bins = fisher_jenks_bins(values, k)
    return _Result(bins, np.searchsorted(bins, values, side="left"))


SCHEMES = {
    "quantiles": _mapclassify("Quantiles"),
    "natural_breaks": _natural_breaks,
    "equal_interval": _mapclassify("EqualInterval"),
}


def normalise_key(key) -> str:
    """Registry key: lower case, spaces and hyphens as underscores."""
    return str(key).strip().lower().replace("-", "_").replace(" ", "_")


@dataclass
class Classes:
    """A display classification: ``bins`` are upper bounds; ``classes`` 0..k-1 (NA: no data)."""

    scheme: str
    bins: np.ndarray
    classes: pd.Series


def classify_scheme(values, scheme, k=5) -> Classes:
    """Classify values for display with a registered scheme.

    Parameters
    ----------
    values : Series or array-like
        NaN values get class NA ("no data" is a class of its own).
    scheme : str
        ``quantiles``, ``natural_breaks`` (Fisher-Jenks) or ``equal_interval``; case, spaces
        and hyphens do not matter.
    k : int, default 5

    Returns
    -------
    Classes

    Raises
    ------
    BadParameter
        Unknown scheme (lists the valid ones) or k < 2.
    """
    key = normalise_key(scheme)
    if key not in SCHEMES:
        raise BadParameter("scheme", scheme, sorted(SCHEMES))
    if not isinstance(k, (int, np.integer)) or k < 2:
        raise BadParameter("k", k, message=f"invalid value {k!r} for 'k': need an integer >= 2")
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    arr = series.to_numpy(dtype=np.float64, na_value=np.nan)
    ok = np.isfinite(arr)
    out = pd.Series(pd.NA, index=series.index, dtype="Int64")
    if not ok.any():
        return Classes(key, np.array([]), out)
    k_eff = int(min(k, np.unique(arr[ok]).size))
    if k_eff < 2:
        out[ok] = 0
        return Classes(key, np.array([arr[ok].max()]), out)
    result = SCHEMES[key](arr[ok], k_eff)
    out[ok] = np.asarray(result.yb, dtype=np.int64)
    return Classes(key, np.asarray(result.bins, dtype=np.float64), out)


# ---------------------------------------------------------------------- ranks
def rank_within(scores: pd.DataFrame, by_state=None) -> pd.Series:
    """Rank municipalities by probability, 1 = highest (ties share the best rank).

    Parameters
    ----------
    scores : DataFrame
        With ``probability`` and, optionally, ``level``; ``sin_informacion`` or missing
        probabilities get NA.
    by_state : str or array-like, optional
        Column name or values of the state code: rank within each state (``rank_state``);
        omitted: national rank (``rank_national``).

    Returns
    -------
    Series of Int64
    """
    prob = scores["probability"].astype("float64")
    if "level" in scores.columns:
        prob = prob.where(scores["level"] != NO_INFO)
    if by_state is None:
        ranks = prob.rank(ascending=False, method="min")
    else:
        groups = scores[by_state] if isinstance(by_state, str) else pd.Series(
            np.asarray(by_state), index=scores.index)
        ranks = prob.groupby(groups).rank(ascending=False, method="min")
    return ranks.astype("Int64")


def rank_national(scores: pd.DataFrame) -> pd.Series:
    """National rank (1 = highest probability); NA for ``sin_informacion``."""
    return rank_within(scores).rename("rank_national")


def rank_state(scores: pd.DataFrame, state="cve_ent") -> pd.Series:
    """Rank within the state (1 = highest probability); NA for ``sin_informacion``."""
    return rank_within(scores, by_state=state).rename("rank_state")


__all__ = ["LEVELS", "NO_INFO", "RULE", "SCHEMES", "Classes", "classify_levels",
           "classify_scheme", "describe_rule", "national_rate", "normalise_key",
           "rank_national", "rank_state", "rank_within"]
