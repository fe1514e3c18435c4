"""Field validation of a published edition against recorded inspection outcomes
(docs/METHOD.md, "Inspection outcomes").

Units: a *visit* is one record (one inspection act); a *workplace* is one of the
``establecimientos`` it inspected. The hit rate is the share of visits finding at least one
child (95 % Wilson interval); children per workplace use an exact Poisson (Garwood) interval.
λ and the slope come from the Poisson regression

    log E[found_i] = log(workplaces_i) + a + b · log(P_m / r)

fitted by iteratively reweighted least squares; λ = exp(a) is the number of children found per
workplace at the national rate r, and b (1 when children found are proportional to P_m) tells
whether the map ranks well in the field. Intervals are Wald intervals on the log scale, with
the standard errors scaled by the Pearson dispersion when it exceeds 1 (quasi-Poisson).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from ..model.levels import LEVELS
from ..model.targeting import national_rate

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion (NaNs when ``n`` is 0)."""
    if n <= 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def poisson_rate_interval(count: int, exposure: float) -> tuple[float, float]:
    """Exact (Garwood) 95 % interval of a Poisson rate ``count / exposure``."""
    if exposure <= 0:
        return (math.nan, math.nan)
    low = 0.0 if count == 0 else stats.chi2.ppf(0.025, 2 * count) / 2
    high = stats.chi2.ppf(0.975, 2 * count + 2) / 2
    return (low / exposure, high / exposure)


def poisson_irls(y, x, offset, max_iter: int = 100, tol: float = 1e-10) -> dict:
    """Poisson regression ``log μ = offset + X β`` by iteratively reweighted least squares.

    Parameters
    ----------
    y : array of counts
    x : 2-D array (n, k), including the intercept column
    offset : array

    Returns
    -------
    dict
        ``coef``, ``se`` (model-based), ``cov``, ``dispersion`` (Pearson χ² / (n − k)),
        ``iterations``, ``converged``.
    """
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    offset = np.asarray(offset, dtype=np.float64)
    n, k = x.shape
    beta = np.zeros(k)
    beta[0] = math.log(max(y.sum(), 0.5) / np.exp(offset).sum())
    converged = False
    for it in range(1, max_iter + 1):  # noqa: B007 - reported after the loop
        eta = offset + x @ beta
        mu = np.exp(eta)
        z = eta - offset + (y - mu) / mu
        xtw = x.T * mu
        new = np.linalg.solve(xtw @ x, xtw @ z)
        if np.max(np.abs(new - beta)) < tol * (1 + np.max(np.abs(beta))):
            beta = new
            converged = True
            break
        beta = new
    mu = np.exp(offset + x @ beta)
    cov = np.linalg.inv((x.T * mu) @ x)
    dispersion = float(np.sum((y - mu) ** 2 / mu) / max(n - k, 1))
    return {"coef": beta, "se": np.sqrt(np.diag(cov)), "cov": cov, "dispersion": dispersion,
            "iterations": it, "converged": converged}


def field_regression(found, workplaces, probability, rate) -> dict | None:
    """λ and the slope on log(P_m / r), with 95 % intervals (None with too few data).

    Returns
    -------
    dict
        ``lambda`` {estimate, ci_low, ci_high}, ``slope`` {estimate, ci_low, ci_high},
        ``dispersion``, ``n_visits``.
    """
    found = np.asarray(found, dtype=np.float64)
    work = np.asarray(workplaces, dtype=np.float64)
    p = np.asarray(probability, dtype=np.float64)
    ok = np.isfinite(found) & np.isfinite(p) & (p > 0) & (work > 0)
    if ok.sum() < 3 or found[ok].sum() == 0 or not rate > 0:
        return None
    x = np.log(p[ok] / rate)
    design = np.column_stack([np.ones(ok.sum()), x])
    if np.ptp(x) == 0:
        return None
    fit = poisson_irls(found[ok], design, np.log(work[ok]))
    scale = math.sqrt(max(1.0, fit["dispersion"]))
    a, b = fit["coef"]
    sa, sb = fit["se"] * scale
    return {"lambda": {"estimate": math.exp(a), "ci_low": math.exp(a - Z95 * sa),
                       "ci_high": math.exp(a + Z95 * sa)},
            "slope": {"estimate": b, "ci_low": b - Z95 * sb, "ci_high": b + Z95 * sb},
            "dispersion": fit["dispersion"], "n_visits": int(ok.sum())}


def auc(score, label) -> float:
    """Area under the ROC curve (Mann–Whitney; ties count one half); NaN if one class."""
    score = np.asarray(score, dtype=np.float64)
    label = np.asarray(label, dtype=bool)
    n1, n0 = int(label.sum()), int((~label).sum())
    if n1 == 0 or n0 == 0:
        return math.nan
    ranks = stats.rankdata(score)
    return float((ranks[label].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _auc_interval(a: float, n1: int, n0: int) -> tuple[float, float]:
    """Hanley–McNeil 95 % interval of an AUC."""
    if not math.isfinite(a) or n1 == 0 or n0 == 0:
        return (math.nan, math.nan)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0)
    se = math.sqrt(max(var, 0.0))
    return (max(0.0, a - Z95 * se), min(1.0, a + Z95 * se))


def _group(df: pd.DataFrame, lam: float | None) -> dict:
    visits = len(df)
    hits = int((df["nna_encontrados"] >= 1).sum())
    found = int(df["nna_encontrados"].sum())
    work = float(df["establecimientos"].sum())
    out = {"visits": visits, "workplaces": int(work), "found": found,
           "hazardous": int(df["nna_peligroso"].sum()),
           "municipalities": int(df["cvegeo"].nunique())}
    out["hit_rate"] = hits / visits if visits else math.nan
    out["hit_ci_low"], out["hit_ci_high"] = wilson(hits, visits)
    out["per_workplace"] = found / work if work else math.nan
    out["per_workplace_ci_low"], out["per_workplace_ci_high"] = poisson_rate_interval(found, work)
    if lam is not None and work:
        out["predicted_per_workplace"] = float(
            lam * np.sum(df["establecimientos"] * df["_relative"]) / work)
    return out


def summary(visits: pd.DataFrame, rows: pd.DataFrame) -> dict:
    """Field validation of one edition.

    Parameters
    ----------
    visits : DataFrame
        Stored visits (:data:`riskmap.outcomes.visits.FIELDS`).
    rows : DataFrame
        The edition's rows: ``cvegeo, probability, level`` and ``children,
        expected_child_labour`` (for the national rate r).

    Returns
    -------
    dict
        ``n_visits``, ``unmatched`` (visits outside the edition's geography), ``national_rate``,
        ``overall``, ``by_level`` and ``by_decile`` (see :func:`_group`), ``lift`` (top decile's
        children per workplace over the mean, with the hit-rate lift), ``auc`` {estimate,
        ci_low, ci_high, n_municipalities}, ``regression`` (:func:`field_regression`) and
        ``visited`` {cvegeo: visits}.
    """
    base = pd.DataFrame(rows).drop(columns="geometry", errors="ignore")
    base = base[["cvegeo", "probability", "level"]].copy()
    base["probability"] = pd.to_numeric(base["probability"], errors="coerce")
    rate = national_rate(rows)
    ranked = base["probability"].rank(method="first")
    n_valid = int(base["probability"].notna().sum())
    base["decile"] = np.where(base["probability"].notna(),
                              np.ceil(ranked * 10 / max(n_valid, 1)).clip(1, 10), np.nan)
    merged = visits.merge(base, on="cvegeo", how="left")
    matched = merged[merged["level"].notna()].copy()
    matched["_relative"] = matched["probability"] / rate
    reg = field_regression(matched["nna_encontrados"], matched["establecimientos"],
                           matched["probability"], rate)
    lam = reg["lambda"]["estimate"] if reg else None
    overall = _group(matched, lam) if len(matched) else None
    by_level = [dict(level=lv, **_group(g, lam)) for lv in LEVELS
                if len(g := matched[matched["level"] == lv])]
    by_decile = [dict(decile=int(d), mean_probability=float(g["probability"].mean()),
                      **_group(g, lam))
                 for d, g in matched.dropna(subset=["decile"]).groupby("decile")]
    lift = None
    if overall and by_decile and by_decile[-1]["decile"] == 10 and overall["per_workplace"]:
        top = by_decile[-1]
        lift = {"children": top["per_workplace"] / overall["per_workplace"],
                "hit_rate": top["hit_rate"] / overall["hit_rate"] if overall["hit_rate"]
                else math.nan}
    per_mun = matched.groupby("cvegeo").agg(found=("nna_encontrados", "sum"),
                                            probability=("probability", "first"),
                                            visits=("folio", "size"))
    per_mun = per_mun[per_mun["probability"].notna()]
    label = per_mun["found"].to_numpy() >= 1
    a = auc(per_mun["probability"], label)
    low, high = _auc_interval(a, int(label.sum()), int((~label).sum()))
    return {"n_visits": int(len(visits)), "unmatched": int(len(visits) - len(matched)),
            "national_rate": rate, "overall": overall, "by_level": by_level,
            "by_decile": by_decile, "lift": lift,
            "auc": {"estimate": a, "ci_low": low, "ci_high": high,
                    "n_municipalities": int(len(per_mun)), "with_found": int(label.sum())},
            "regression": reg,
            "visited": {str(k): int(v) for k, v in per_mun["visits"].items()}}
