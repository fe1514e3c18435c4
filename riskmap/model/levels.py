"""National reference rate, risk levels by the significance rule, ranks.

The default level is METHOD.md section 4: a municipality is ``alto`` when its whole 95 %
interval lies above the national rate, ``bajo`` when it lies below, ``medio`` otherwise, and
``sin_informacion`` without (enough) census records.
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


__all__ = ["LEVELS", "NO_INFO", "RULE", "classify_levels", "describe_rule", "national_rate",
           "rank_within"]
