"""Associated factors per municipality (docs/METHOD.md §5).

The contribution of covariate k in municipality m, on the log-odds scale, is
``c_mk = beta_k (xbar_mk - xbar_k)``: how much the municipality's mean of k moves its
log-odds away from a child with the national means. The largest positive contributions are
the municipality's risk factors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError

#: Columns of the long factor table.
FACTOR_COLUMNS = ("cvegeo", "covariate", "domain", "contribution", "municipal_mean",
                  "national_mean")


def factor_contributions(coef: pd.Series, municipal_means: pd.DataFrame,
                         national_means: pd.Series, domains) -> pd.DataFrame:
    """Long table of factor contributions.

    Parameters
    ----------
    coef : Series
        Coefficients indexed by name; the intercept (if present) is ignored.
    municipal_means : DataFrame
        Weighted census means, rows ``cvegeo`` (index), one column per covariate.
    national_means : Series
        Weighted national census means, indexed by covariate.
    domains : mapping
        Covariate -> policy domain tag.

    Returns
    -------
    DataFrame
        ``FACTOR_COLUMNS``: cvegeo, covariate, domain, contribution, municipal_mean,
        national_mean; municipalities in the order of ``municipal_means``, covariates in the
        order of its columns. Municipalities without records have NaN contributions.

    Raises
    ------
    InputError
        A covariate of ``municipal_means`` lacks a coefficient or a national mean.
    """
    covariates = [str(c) for c in municipal_means.columns]
    missing = [c for c in covariates if c not in coef.index]
    if missing:
        raise InputError("no coefficient for covariate(s): " + ", ".join(missing))
    missing = [c for c in covariates if c not in national_means.index]
    if missing:
        raise InputError("no national mean for covariate(s): " + ", ".join(missing))
    domains = domains or {}
    beta = coef.loc[covariates].to_numpy(dtype=np.float64)
    nat = national_means.loc[covariates].to_numpy(dtype=np.float64)
    mun = municipal_means.to_numpy(dtype=np.float64)
    contrib = beta[None, :] * (mun - nat[None, :])
    M, K = mun.shape
    codes = np.asarray(municipal_means.index.astype(str))
    return pd.DataFrame({
        "cvegeo": np.repeat(codes, K),
        "covariate": np.tile(np.asarray(covariates, dtype=object), M),
        "domain": np.tile(np.asarray([domains.get(c) for c in covariates], dtype=object), M),
        "contribution": contrib.reshape(-1),
        "municipal_mean": mun.reshape(-1),
        "national_mean": np.tile(nat, M),
    }, columns=list(FACTOR_COLUMNS))


def top_factors(long: pd.DataFrame, n=3, labels=None) -> pd.Series:
    """The n largest positive contributions per municipality, as one string.

    Parameters
    ----------
    long : DataFrame
        Output of :func:`factor_contributions`.
    n : int, default 3
    labels : mapping, optional
        Covariate -> display label (default: the covariate name).

    Returns
    -------
    Series
        Indexed by cvegeo (every municipality of ``long``), labels joined with ``"; "`` in
        decreasing order of contribution; empty string when none is positive.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n must be a positive integer, got {n!r}")
    labels = labels or {}
    codes = pd.unique(long["cvegeo"])
    pos = long[long["contribution"] > 0]
    # Stable sort keeps covariate order among equal contributions, so output is deterministic.
    pos = pos.sort_values(["cvegeo", "contribution"], ascending=[True, False], kind="stable")
    pos = pos.groupby("cvegeo", sort=False).head(n)
    names = pos["covariate"].map(lambda c: str(labels.get(c, c)))
    joined = names.groupby(pos["cvegeo"], sort=False).agg("; ".join)
    out = joined.reindex(codes).fillna("")
    out.index.name = "cvegeo"
    return out.rename("top_factors").astype(object)


def _value(x: float, share: bool, lang: str) -> str:
    if share:
        text = f"{100 * x:.1f}"
        return f"{text} %" if lang == "es" else f"{text}%"
    return f"{x:.1f}"


def describe_factor(label: str, municipal_mean, national_mean, lang: str = "es") -> str:
    """A factor in words, with its direction against the national mean.

    A contribution's sign alone reads backwards for protective covariates: "Jefatura con
    seguridad social +0.17" raises risk because the municipality has *fewer* such heads than
    the country. The phrase says which way the municipality differs, e.g. "Jefatura con
    seguridad social: menos que el promedio nacional (31.8 % frente a 45.2 %)".

    Parameters
    ----------
    label : str
        The covariate's label in ``lang``.
    municipal_mean, national_mean : float or None
        Census means of the covariate (shares for 0/1 covariates).
    lang : {"es", "en"}

    Returns
    -------
    str
        The phrase; the bare label when a mean is missing.
    """
    try:
        m, n = float(municipal_mean), float(national_mean)
    except (TypeError, ValueError):
        return label
    if not (np.isfinite(m) and np.isfinite(n)):
        return label
    share = 0.0 <= m <= 1.0 and 0.0 <= n <= 1.0
    values = (_value(m, share, lang), _value(n, share, lang))
    if lang == "en":
        word = "more than" if m > n else "less than" if m < n else "the same as"
        return f"{label}: {word} the national average ({values[0]} vs {values[1]})"
    word = "más que el" if m > n else "menos que el" if m < n else "igual al"
    return f"{label}: {word} promedio nacional ({values[0]} frente a {values[1]})"
