"""National reference rate, risk levels, ranks.

Levels follow docs/METHOD.md §4 through a registry of named level rules (``mirti``, the
default; ``significance``; ``cortes:A,B``) with level certainty, kept in
:mod:`riskmap.model.rules` and reachable from here (``levels.get_rule``, ``levels.RULE_NAMES``,
``levels.level_certainty``, ``levels.relevel``...).
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from ..errors import InputError
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
__all__ = ["LEVELS", "NO_INFO", "RULE", "classify_levels", "describe_rule", "national_rate",
           "rank_within"]
