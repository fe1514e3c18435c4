"""National reference rate, risk levels, display schemes, ranks.

Levels follow docs/METHOD.md section 4 through a registry of named level rules (``mirti``, the
default; ``significance``; ``cortes:A,B``) with level certainty, kept in
:mod:`riskmap.model.rules` and reachable from here (``levels.get_rule``, ``levels.RULE_NAMES``,
``levels.level_certainty``, ``levels.relevel``...). Quantile or natural-break schemes are
offered for map colours only, from a registry keyed by a normalised name.
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


def normalise_key(key) -> str:
    """Registry key: lower case, spaces and hyphens as underscores."""
    return str(key).strip().lower().replace("-", "_").replace(" ", "_")


# -- the significance rule's former helpers (kept for callers of the old API) -------------------
#: The significance rule's static description (ids, texts and parameters without values).
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


def describe_rule(reference=None, min_records=30, rule=None) -> dict:
    """The card's ``rule`` entry of ``rule`` (default: significance) at ``reference``."""
    from .rules import get_rule

    chosen = get_rule(rule or "significance")
    r = 0.5 if reference is None else float(reference)
    return chosen.describe(chosen._cutoffs(np.array([r]), r), reference, min_records)


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


def classify_levels(scores: pd.DataFrame, reference: float, min_records=30,
                    rule=None) -> pd.Series:
    """Risk level per municipality under ``rule`` (default: significance, the former default).

    A shortcut for ``get_rule(rule or "significance").apply(scores, reference,
    min_records)[0]``; see :meth:`LevelRule.apply`.
    """
    from .rules import get_rule

    return get_rule(rule or "significance").apply(scores, reference, min_records)[0]


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


_RULE_API = ("DEFAULT_RULE", "PUBLISHED", "RULES", "RULE_NAMES", "UNCERTAIN_BELOW",
             "LevelRule", "get_rule", "level_certainty", "relevel", "uncertain")


def __getattr__(name):
    """The rule registry (:mod:`riskmap.model.rules`) is part of this module's interface;
    imported lazily, since the registry itself uses :data:`NO_INFO` from here."""
    if name in _RULE_API:
        from . import rules

        return getattr(rules, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# The rule names of _RULE_API are reached through __getattr__ (not listed here: a star
# import would have to import riskmap.model.rules eagerly).
__all__ = ["LEVELS", "NO_INFO", "RULE", "SCHEMES", "Classes", "classify_levels",
           "classify_scheme", "describe_rule", "national_rate", "normalise_key",
           "rank_national", "rank_state", "rank_within"]
