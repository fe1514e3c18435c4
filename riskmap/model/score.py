"""Apply a fitted model to census records: municipal probabilities with intervals (docs/METHOD.md §2).

For municipality m with census child records j (weights v_j, fitted probabilities p_j):

* ``P_m = sum v_j p_j / sum v_j`` and ``N_m = sum v_j``;
* model variance by the delta method, ``g_m^T V g_m`` with
  ``g_m = sum v_j p_j (1 - p_j) x_j / sum v_j``;
* census-sample variance ``sum v_j^2 (p_j - P_m)^2 / (sum v_j)^2``;
* a 95 % interval on the logit scale, back-transformed, so it stays inside (0, 1).

Everything is accumulated with ``np.bincount`` over integer municipality codes, column by
column and in chunks of records, so millions of records never become an n x k matrix of
temporaries (let alone n x k x k).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.special import expit

from ..errors import InputError

#: The 97.5 % standard-normal quantile: every 95 % interval and every significance test of the
#: package (fit, score, levels, comparison of editions) uses this one constant.
Z95 = 1.959963984540054
SCORE_COLUMNS = ("children", "probability", "var_model", "var_census", "se", "ci_low",
                 "ci_high", "n_records", "expected_child_labour")
_CHUNK = 1 << 20


def census_columns(census: pd.DataFrame, covariates) -> tuple[list[np.ndarray], np.ndarray]:
    """Float64 views of the covariate columns and the weights, validated (numeric, finite,
    weights > 0; one-line errors naming column and row): shared by scoring, the EBP and the
    trend decomposition."""
    missing = [c for c in ["cvegeo", "weight", *covariates] if c not in census.columns]
    if missing:
        raise InputError("census records lack column(s): " + ", ".join(missing))
    cols = []
    for name in ["weight", *covariates]:
        try:
            arr = census[name].to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            raise InputError("must be numeric", column=name) from None
        bad = ~np.isfinite(arr)
        if bad.any():
            raise InputError("missing or infinite value", column=name,
                             row=int(np.flatnonzero(bad)[0]))
        cols.append(arr)
    weight = cols.pop(0)
    if (weight <= 0).any():
        raise InputError("weights must be > 0", column="weight",
                         row=int(np.flatnonzero(weight <= 0)[0]))
    return cols, weight


def _groups(census: pd.DataFrame, codes) -> tuple[np.ndarray, pd.Index]:
    """Integer municipality index per record (-1 for records outside ``codes``)."""
    cvegeo = census["cvegeo"]
    if cvegeo.isna().any():
        raise InputError("missing municipality code", column="cvegeo",
                         row=int(np.flatnonzero(cvegeo.isna().to_numpy())[0]))
    if codes is None:
        g, uniques = pd.factorize(cvegeo.astype(str), sort=True)
        return g.astype(np.int64), pd.Index(uniques, name="cvegeo").astype(str)
    index = pd.Index(pd.unique(pd.Series(list(codes), dtype=str)), name="cvegeo")
    g = index.get_indexer(cvegeo.astype(str)).astype(np.int64)
    if (g < 0).any():
        unknown = sorted(pd.unique(cvegeo[g < 0].astype(str)))
        shown = ", ".join(unknown[:10]) + (f" and {len(unknown) - 10} more"
                                            if len(unknown) > 10 else "")
        warnings.warn(f"{int((g < 0).sum())} census records have codes outside the "
                      f"geography and are left out: {shown}", RuntimeWarning, stacklevel=3)
    return g, index


def _coefficients(model, covariates) -> np.ndarray:
    coef = np.asarray(model.coef_, dtype=np.float64)
    if coef.shape[0] != len(covariates) + 1:
        raise InputError(f"the model has {coef.shape[0] - 1} covariates, "
                         f"{len(covariates)} were given")
    names = list(getattr(model, "names_", []))[1:]
    default = [f"x{j}" for j in range(len(covariates))]
    if names and names != default and names != list(covariates):
        raise InputError("covariates do not match the model: expected "
                         + ", ".join(names) + "; got " + ", ".join(covariates))
    return coef


def score_municipalities(model, census: pd.DataFrame, covariates, codes=None, z=Z95,
                         census_sample=True):
    """Municipal probabilities, variances and intervals from census records.

    Parameters
    ----------
    model : SurveyLogit
        Fitted model (uses ``coef_``, ``cov_`` and ``names_``).
    census : DataFrame
        Census child records: ``cvegeo``, ``weight`` and the covariate columns.
    covariates : sequence of str
        Covariate columns in model order (without the intercept).
    codes : sequence of str, optional
        Municipalities to report, in this order, including those without records (NaN
        estimates, ``children`` 0, ``n_records`` 0). Records with other codes are left out
        with a warning. Default: the codes present, sorted.
    z : float, default 1.959964
        Normal quantile of the interval.
    census_sample : bool, default True
        The census records are a sample (Intercensal, Censo long form) and carry the
        census-sample variance. ``False`` for a full count: ``var_census`` is 0.

    Returns
    -------
    DataFrame
        Indexed by ``cvegeo``; columns ``SCORE_COLUMNS``.

    Raises
    ------
    InputError
        Missing columns, non-numeric or missing values, weights <= 0, covariates that do not
        match the model.
    """
    covariates = list(covariates)
    coef = _coefficients(model, covariates)
    V = np.asarray(model.cov_, dtype=np.float64)
    cols, v = census_columns(census, covariates)
    g, index = _groups(census, codes)
    M, k1 = len(index), len(coef)
    n = len(census)

    # First pass: P_m, N_m, counts and the delta-method gradient sums.
    p = np.empty(n)
    sum_v = np.zeros(M)
    sum_vp = np.zeros(M)
    grad = np.zeros((M, k1))
    count = np.zeros(M)
    for a in range(0, n, _CHUNK):
        b = min(a + _CHUNK, n)
        gc = g[a:b]
        keep = gc >= 0
        eta = np.full(b - a, coef[0])
        for j, col in enumerate(cols):
            eta += coef[j + 1] * col[a:b]
        pc = expit(eta)
        p[a:b] = pc
        vc = np.where(keep, v[a:b], 0.0)
        gk = np.where(keep, gc, 0)  # records outside the geography carry zero weight
        sum_v += np.bincount(gk, weights=vc, minlength=M)
        sum_vp += np.bincount(gk, weights=vc * pc, minlength=M)
        count += np.bincount(gk, weights=keep.astype(np.float64), minlength=M)
        d = vc * pc * (1.0 - pc)
        grad[:, 0] += np.bincount(gk, weights=d, minlength=M)
        for j, col in enumerate(cols):
            grad[:, j + 1] += np.bincount(gk, weights=d * col[a:b], minlength=M)

    with np.errstate(invalid="ignore", divide="ignore"):
        P = sum_vp / sum_v
        grad /= sum_v[:, None]
    var_model = np.einsum("ij,jk,ik->i", grad, V, grad)

    # Second pass (probabilities kept from the first): census-sample variance around P_m;
    # a full count has none, so the pass is skipped.
    ss = np.zeros(M)
    P0 = np.nan_to_num(P)
    for a in range(0, n if census_sample else 0, _CHUNK):
        b = min(a + _CHUNK, n)
        gc = g[a:b]
        keep = gc >= 0
        gk = np.where(keep, gc, 0)
        dev = np.where(keep, v[a:b] * (p[a:b] - P0[gk]), 0.0)
        ss += np.bincount(gk, weights=dev * dev, minlength=M)
    with np.errstate(invalid="ignore", divide="ignore"):
        var_census = ss / sum_v**2
    var_model[count == 0] = np.nan
    var_census[count == 0] = np.nan
    se = np.sqrt(np.clip(var_model, 0.0, None) + var_census)
    ci_low, ci_high = logit_interval(P, se, z)
    return pd.DataFrame({
        "children": sum_v,
        "probability": P,
        "var_model": var_model,
        "var_census": var_census,
        "se": se,
        "ci_low": ci_low,
        "ci_high": ci_high,
        "n_records": count.astype(np.int64),
        "expected_child_labour": P * sum_v,
    }, index=index)


def logit_interval(p, se, z=Z95):
    """Interval ``expit(logit(p) +- z * se / (p (1 - p)))``, inside (0, 1).

    Parameters
    ----------
    p, se : array-like
        Proportions and their standard errors (NaN propagates).
    z : float
        Normal quantile.

    Returns
    -------
    (ndarray, ndarray)
        Lower and upper bounds.
    """
    p = np.asarray(p, dtype=np.float64)
    se = np.asarray(se, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = np.log(p) - np.log1p(-p)
        half = z * se / (p * (1.0 - p))
    return expit(centre - half), expit(centre + half)


def municipal_means(census: pd.DataFrame, covariates, codes=None) -> pd.DataFrame:
    """Weighted covariate means per municipality (rows ``cvegeo``, NaN where no records).

    Parameters
    ----------
    census : DataFrame
        ``cvegeo``, ``weight`` and the covariates.
    covariates : sequence of str
    codes : sequence of str, optional
        As in :func:`score_municipalities`.

    Returns
    -------
    DataFrame
    """
    covariates = list(covariates)
    cols, v = census_columns(census, covariates)
    g, index = _groups(census, codes)
    keep = g >= 0
    gk, vk = g[keep], v[keep]
    total = np.bincount(gk, weights=vk, minlength=len(index))
    out = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for name, col in zip(covariates, cols):
            out[name] = np.bincount(gk, weights=vk * col[keep], minlength=len(index)) / total
    return pd.DataFrame(out, index=index, columns=covariates)


def national_means(census: pd.DataFrame, covariates) -> pd.Series:
    """Weighted covariate means over all census records.

    Returns
    -------
    Series
        Indexed by covariate name.
    """
    covariates = list(covariates)
    cols, v = census_columns(census, covariates)
    total = v.sum()
    return pd.Series([float(np.dot(v, col) / total) for col in cols], index=covariates,
                     dtype=np.float64)
