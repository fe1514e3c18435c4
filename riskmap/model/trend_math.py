"""Numerical core of the trend decomposition (:mod:`riskmap.model.trend`).

Sums over census records per unit (children, covariate totals, probability totals under
several coefficient vectors and their gradients) as sparse-matrix products over cache-sized
chunks; then, vectorised over units (and over coefficient draws), the two-factor Shapley
split, Yun's detailed parts with their near-zero rule, the sums by policy domain and the
percentile intervals. docs/METHOD.md section 8 gives the formulas.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import InputError
from .score import census_columns

#: A Yun denominator smaller than this fraction of the sum of its absolute terms is "near zero".
NEAR_ZERO = 0.1
PARTS = ("change", "composition", "behaviour")
_CHUNK = 1 << 14


# -- inputs ----------------------------------------------------------------------------------
def check_side(side) -> None:
    """Shapes of a :class:`~riskmap.model.trend.TrendSide` and its census columns."""
    k = len(side.covariates) + 1
    if side.coef.shape != (k,) or side.cov.shape != (k, k):
        raise InputError(f"edition {side.name}: {len(side.coef)} coefficients and a "
                         f"{side.cov.shape} covariance for {k - 1} covariates")
    missing = [c for c in ["cvegeo", "weight", *side.covariates] if c not in side.census]
    if missing:
        raise InputError(f"edition {side.name}: census records lack column(s) "
                         + ", ".join(missing))


def expand(side, union: list) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients and covariance on ``[intercept, *union]`` (0 where the side lacks one)."""
    pos = [0] + [1 + side.covariates.index(c) if c in side.covariates else -1 for c in union]
    m = len(pos)
    beta, cov = np.zeros(m), np.zeros((m, m))
    have = [i for i, p in enumerate(pos) if p >= 0]
    src = [pos[i] for i in have]
    beta[have] = side.coef[src]
    cov[np.ix_(have, have)] = side.cov[np.ix_(src, src)]
    return beta, cov


def home_codes(census: pd.DataFrame, home: dict) -> tuple[np.ndarray, list]:
    """Per record, the index of its unit code (``home`` applied) among the returned codes."""
    codes = census["cvegeo"]
    if codes.isna().any():
        raise InputError("missing municipality code", column="cvegeo",
                         row=int(np.flatnonzero(codes.isna().to_numpy())[0]))
    index, uniques = pd.factorize(codes, sort=False)
    mapped = [home.get(str(c), str(c)) for c in uniques]
    return index, mapped


def unit_means(census: pd.DataFrame, covariates: list, g: np.ndarray, U: int) -> np.ndarray:
    """Children-weighted means of ``covariates`` per unit (national mean where none)."""
    if not covariates:
        return np.zeros((U, 0))
    cols, v = census_columns(census, covariates)
    X = np.column_stack(cols)
    W = sp.csc_matrix((v, g.astype(np.int32), np.arange(len(v) + 1)), shape=(U, len(v)))
    total = np.asarray(W.sum(axis=1)).ravel()
    sums = W @ X
    national = (v @ X) / v.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        out = sums / total[:, None]
    return np.where(total[:, None] > 0, out, national[None, :])


def accumulate(census, union, fill, g, U, Bmat, gradients) -> dict:
    """Sums per unit over the records: children ``N``, covariate totals ``X`` (first column
    the children), probability totals ``S`` (one column per coefficient vector of ``Bmat``)
    and, with ``gradients``, ``G[u, t, :] = sum v p_t (1 - p_t) z``.

    ``fill`` gives, for covariates this side's spec lacks, the value per unit its records
    take. Records go in chunks small enough to stay in cache; each unit sum is a product of
    a sparse matrix (one column per record, its weight in its unit's row) with the chunk's
    design matrix.
    """
    own, v = census_columns(census, [c for c in union if c not in fill])
    own = iter(own)
    n, m, T = len(v), Bmat.shape[0], Bmat.shape[1]
    cols = [None if c in fill else next(own) for c in union]
    X, S = np.zeros((U, m)), np.zeros((U, T))
    G = np.zeros((2, U, m)) if gradients else None
    Bt = np.ascontiguousarray(Bmat.T)
    for lo in range(0, n, _CHUNK):
        hi = min(lo + _CHUNK, n)
        gc = g[lo:hi]
        Zt = np.empty((m, hi - lo))  # one row per column: filled contiguously
        Zt[0] = 1.0
        for j, c in enumerate(union):
            Zt[j + 1] = fill[c][gc] if cols[j] is None else cols[j][lo:hi]
        with np.errstate(over="ignore"):
            P = 1.0 / (1.0 + np.exp(-(Bt @ Zt)))       # (T, records)
        Z = np.ascontiguousarray(Zt.T)
        vc = v[lo:hi]
        ptr = np.arange(hi - lo + 1)
        W = sp.csc_matrix((vc, gc, ptr), shape=(U, hi - lo))
        X += W @ Z
        S += W @ P.T
        if gradients:
            for t in range(2):
                q = vc * P[t] * (1.0 - P[t])
                G[t] += sp.csc_matrix((q, gc, ptr), shape=(U, hi - lo)) @ Z
    N = X[:, 0].copy()
    return {"N": N, "X": X, "S": S,
            "G": None if G is None else np.ascontiguousarray(G.transpose(1, 0, 2))}


# -- the decomposition --------------------------------------------------------------------------
def _shapley(Paa, Pab, Pba, Pbb):
    """(change, composition, behaviour) from P(X_s, beta_t) (arrays of equal shape)."""
    composition = 0.5 * ((Pba - Paa) + (Pbb - Pab))
    behaviour = 0.5 * ((Pab - Paa) + (Pbb - Pba))
    return Pbb - Paa, composition, behaviour


def _yun(terms: np.ndarray, total: np.ndarray):
    """Parts ``terms / sum(terms) * total`` along the last axis; NaN where withheld.

    Returns
    -------
    (parts, withheld) with ``withheld`` a boolean array of ``total``'s shape.
    """
    den = terms.sum(axis=-1)
    scale = np.abs(terms).sum(axis=-1)
    zero = (scale == 0) & (total == 0)
    near = ~zero & (np.abs(den) <= NEAR_ZERO * scale)
    near |= ~zero & (scale == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        parts = terms / den[..., None] * total[..., None]
    parts = np.where(zero[..., None], 0.0, parts)
    parts = np.where(near[..., None], np.nan, parts)
    return parts, near


def _detail(xa, xb, beta_a, beta_b, composition, behaviour, n_common):
    """Yun's detailed parts. ``xa``, ``xb``: means on [1, union] (..., m); betas (..., m)."""
    bbar = 0.5 * (beta_a + beta_b)
    comp_terms = (bbar * (xb - xa))[..., 1:1 + n_common]
    xm = 0.5 * (xa + xb)
    beh_terms = xm * (beta_b - beta_a)
    comp, comp_w = _yun(comp_terms, composition)
    beh, beh_w = _yun(beh_terms, behaviour)
    return comp, comp_w, beh, beh_w


def frame(lv: dict, spec: dict, draws, exact: bool) -> pd.DataFrame:
    """One level's rows (municipalities, states or the nation) from its unit sums.

    Parameters
    ----------
    lv : dict
        Sums per row: ``N_a, N_b`` (children), ``X_a, X_b`` (covariate totals), ``S_a, S_b``
        (probability totals per coefficient vector) and, without exact draws, ``G_a, G_b``
        (gradients).
    spec : dict
        ``beta_a, beta_b`` (on the union of covariates), ``common``, ``extra`` (not
        comparable), ``domains``.
    draws : (ndarray, ndarray) or None
        Coefficient deviations of a and b; None for no intervals.
    exact : bool
        Whether ``S_*`` also hold the re-scored draws.

    Returns
    -------
    DataFrame
    """
    Na, Nb = lv["N_a"][:, 0], lv["N_b"][:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        Pa = lv["S_a"] / Na[:, None]          # P(X_a, .) per coefficient vector
        Pb = lv["S_b"] / Nb[:, None]
        xa = lv["X_a"] / Na[:, None]
        xb = lv["X_b"] / Nb[:, None]
    empty = (Na <= 0) | (Nb <= 0)
    Pa[empty], Pb[empty] = np.nan, np.nan
    change, comp, beh = _shapley(Pa[:, 0], Pa[:, 1], Pb[:, 0], Pb[:, 1])
    nc = len(spec["common"])
    cparts, cw, bparts, bw = _detail(xa, xb, spec["beta_a"], spec["beta_b"], comp, beh, nc)
    out = {"children_a": Na, "children_b": Nb, "probability_a": Pa[:, 0],
           "probability_b": Pb[:, 1], "change": change, "composition": comp,
           "behaviour": beh}
    for j, c in enumerate(spec["common"]):
        out[f"composition_{c}"] = cparts[:, j]
    for j, c in enumerate(spec["common"]):
        out[f"behaviour_{c}"] = bparts[:, 1 + j]
    out["behaviour_intercept"] = bparts[:, 0]
    if spec["extra"]:
        out["behaviour_not_comparable"] = bparts[:, 1 + nc:].sum(axis=1)
    out.update(_by_domain(out, spec))
    for j, c in enumerate(spec["common"]):
        out[f"mean_a_{c}"] = xa[:, 1 + j]
        out[f"mean_b_{c}"] = xb[:, 1 + j]
    out["composition_withheld"] = np.where(cw & ~empty, _reason("composition"), "")
    out["behaviour_withheld"] = np.where(bw & ~empty, _reason("behaviour"), "")
    if draws is not None:
        out.update(_intervals(out, lv, spec, draws, exact, xa, xb, Na, Nb))
    return pd.DataFrame(out)


def _by_domain(parts: dict, spec: dict) -> dict:
    """Covariate parts summed by policy domain: ``composition_domain_<d>``, ``behaviour_..``."""
    out = {}
    for side in ("composition", "behaviour"):
        for c in spec["common"]:
            key = f"{side}_domain_{spec['domains'][c]}"
            out[key] = out[key] + parts[f"{side}_{c}"] if key in out else parts[f"{side}_{c}"]
    return out


def _reason(side: str) -> str:
    what = ("the covariate means barely moved on the linear index (their changes cancel)"
            if side == "composition" else
            "the coefficient changes cancel on the linear index")
    return (f"{side} split withheld: {what}; Yun's shares would be unbounded")


def _intervals(point, lv, spec, draws, exact, xa, xb, Na, Nb) -> dict:
    """Percentile 95 % intervals of every part from the coefficient draws:
    ``{<part>_ci_low: array, <part>_ci_high: array}`` (NaN where the point split is
    withheld)."""
    da, db = draws
    D = da.shape[0]
    if exact:
        with np.errstate(invalid="ignore", divide="ignore"):
            Pa = lv["S_a"][:, 2:] / Na[:, None]
            Pb = lv["S_b"][:, 2:] / Nb[:, None]
        Paa, Pba = Pa[:, :D], Pb[:, :D]
        Pab, Pbb = Pa[:, D:], Pb[:, D:]
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            base_a = lv["S_a"][:, :2] / Na[:, None]
            base_b = lv["S_b"][:, :2] / Nb[:, None]
            ga = lv["G_a"] / Na[:, None, None]
            gb = lv["G_b"] / Nb[:, None, None]
        Paa = base_a[:, [0]] + ga[:, 0, :] @ da.T
        Pab = base_a[:, [1]] + ga[:, 1, :] @ db.T
        Pba = base_b[:, [0]] + gb[:, 0, :] @ da.T
        Pbb = base_b[:, [1]] + gb[:, 1, :] @ db.T
    change, comp, beh = _shapley(Paa, Pab, Pba, Pbb)          # (G, D)
    ba = spec["beta_a"][None, :] + da                           # (D, m)
    bb = spec["beta_b"][None, :] + db
    nc = len(spec["common"])
    cparts, _, bparts, _ = _detail(xa[:, None, :], xb[:, None, :], ba[None], bb[None],
                                   comp, beh, nc)
    series = {"change": change, "composition": comp, "behaviour": beh}
    for j, c in enumerate(spec["common"]):
        series[f"composition_{c}"] = cparts[..., j]
        series[f"behaviour_{c}"] = bparts[..., 1 + j]
    series["behaviour_intercept"] = bparts[..., 0]
    if spec["extra"]:
        series["behaviour_not_comparable"] = bparts[..., 1 + nc:].sum(axis=-1)
    series.update(_by_domain(series, spec))
    limits = {}
    for name, values in series.items():
        low, high = _percentiles(values)
        if name not in PARTS:
            withheld = ~np.isfinite(point[name])
            low[withheld], high[withheld] = np.nan, np.nan
        limits[f"{name}_ci_low"], limits[f"{name}_ci_high"] = low, high
    return limits


def _percentiles(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2.5 and 97.5 percentiles along the draws (NaN draws left out; NaN when all are)."""
    if np.isfinite(values).all():
        low, high = np.percentile(values, [2.5, 97.5], axis=1)
        return low, high
    with warnings.catch_warnings():  # all-NaN rows (no records) give NaN quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanpercentile(values, [2.5, 97.5], axis=1)
    return low, high
