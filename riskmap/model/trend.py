"""Trend decomposition of the change between two editions (docs/METHOD.md section 8).

For editions a (older) and b (newer) with coefficients beta_a, beta_b and census records
X_a, X_b, write ``P(X, beta)`` for the children-weighted mean predicted probability of the
records X under beta. For a municipality (on the older geography; a municipality the newer
geography divides pools the records of all its pieces, which is the children-weighted pooling
of :func:`riskmap.model.compare.pool_pieces`), a state or the nation::

    change      = P(X_b, b_b) - P(X_a, b_a) = composition + behaviour          (exact)
    composition = 1/2 [P(X_b,b_a) - P(X_a,b_a) + P(X_b,b_b) - P(X_a,b_b)]
    behaviour   = 1/2 [P(X_a,b_b) - P(X_a,b_a) + P(X_b,b_b) - P(X_b,b_a)]

Detailed parts use Yun's weights on the linear index: the composition share of covariate k
is ``bbar_k (xbar_bk - xbar_ak) / sum_j bbar_j (xbar_bj - xbar_aj)`` with
``bbar = (b_a + b_b) / 2``; the behaviour share is ``xm_k (b_bk - b_ak) / sum_j xm_j (b_bj -
b_aj)`` with ``xm = (xbar_a + xbar_b) / 2`` and the intercept (xm = 1) as a part of its own.
A part is the share times the aggregate, so parts add up to it exactly. When a denominator is
near zero (:data:`NEAR_ZERO` of the sum of the absolute terms) the shares would be
arbitrarily large: the detailed split is withheld (NaN) and ``withheld`` says why.

Covariates in only one of the two specifications are "not comparable": in the other
edition's coefficients they weigh 0, and records lacking them take their municipality's mean
from the edition that has them (so they add no composition change of their own); their
coefficient difference is reported as ``behaviour_not_comparable``.

Intervals (states and nation) come from :data:`N_DRAWS` joint draws of beta_a and beta_b
from their design covariances (independent surveys) with a fixed seed. Each draw's four
probabilities are evaluated by the first-order expansion of P around the estimates (exact
gradients, the delta method of :mod:`riskmap.model.score`), which keeps the four terms'
dependence through the shared coefficients and makes 1,000 draws cost no more than one pass
over the records; ``exact=True`` re-scores every draw instead (for checks on small data). The
census-sample part of the uncertainty is ignored.

Every sum over records is a sparse-matrix product (a column per record, one non-zero in the
row of its unit), so the four scorings never loop in Python over municipalities.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import InputError

N_DRAWS = 1000
SEED = 20240817
#: A Yun denominator smaller than this fraction of the sum of its absolute terms is "near zero".
NEAR_ZERO = 0.1
NATION = "nacional"
PARTS = ("change", "composition", "behaviour")
_CHUNK = 1 << 14


@dataclass
class TrendSide:
    """One edition as the decomposition needs it.

    Attributes
    ----------
    name : str
        Edition name.
    coef : ndarray
        Coefficients, intercept first, in the order ``["intercept", *covariates]``.
    cov : ndarray
        Their design covariance.
    covariates : list of str
    census : DataFrame
        The census records the edition was scored on: ``cvegeo``, ``weight``, covariates.
    domains : dict
        Covariate -> policy domain (from the edition's spec).
    """

    name: str
    coef: np.ndarray
    cov: np.ndarray
    covariates: list
    census: pd.DataFrame
    domains: dict = field(default_factory=dict)

    @classmethod
    def from_card(cls, card: dict, census: pd.DataFrame) -> "TrendSide":
        """Build a side from a model card and its census records.

        Raises
        ------
        InputError
            The card has no coefficients or covariance (an imported edition).
        """
        name = str(card.get("edition"))
        coefficients = card.get("coefficients") or []
        if not coefficients or not card.get("covariance"):
            raise InputError(f"edition {name} has no fitted model (coefficients and their "
                             "covariance): no trend decomposition is possible")
        names = [c["name"] for c in coefficients]
        if names[0] != "intercept":
            raise InputError(f"edition {name}: the first coefficient must be the intercept")
        spec = card.get("spec") or {}
        domains = {c["name"]: c.get("domain") for c in spec.get("covariates") or []
                   if isinstance(c, dict)}
        for c in coefficients[1:]:
            domains.setdefault(c["name"], c.get("domain"))
        return cls(name, np.array([c["estimate"] for c in coefficients], dtype=np.float64),
                   np.asarray(card["covariance"], dtype=np.float64), names[1:], census, domains)


@dataclass
class Trend:
    """Result of :func:`decompose`.

    Attributes
    ----------
    a, b : str
        Edition names (a is decomposed towards b).
    covariates : list of str
        Common covariates, in a's order (the detailed parts' names).
    not_comparable : list of str
        Covariates of only one specification.
    domains : dict
        Covariate -> policy domain.
    municipalities, states, nation : DataFrame
        One row per unit: ``unit, name, cve_ent, children_a, children_b, probability_a,
        probability_b, change, composition, behaviour, composition_<cov>...,
        behaviour_<cov>..., behaviour_intercept[, behaviour_not_comparable],
        composition_domain_<d>..., behaviour_domain_<d>..., mean_a_<cov>..., mean_b_<cov>...,
        composition_withheld, behaviour_withheld`` (reasons, "" when not withheld); states and
        nation add ``<part>_ci_low`` and ``<part>_ci_high`` for every part.
    draws : int
    seed : int
    exact : bool
        Whether the draws were re-scored exactly.
    geography : str
        Name of the edition whose geography the municipal rows follow.
    coefficients : dict
        ``{"a": {name: estimate}, "b": {...}}`` on ``["intercept", *covariates]``.
    """

    a: str
    b: str
    covariates: list
    not_comparable: list
    domains: dict
    municipalities: pd.DataFrame
    states: pd.DataFrame
    nation: pd.DataFrame
    draws: int
    seed: int
    exact: bool
    geography: str
    coefficients: dict = field(default_factory=dict)

    @property
    def domain_names(self) -> list[str]:
        """Policy domains of the common covariates, in first-appearance order."""
        return list(dict.fromkeys(self.domains[c] for c in self.covariates))

    def table(self, by: str = "municipality") -> pd.DataFrame:
        """The rows of one level: ``municipality``, ``state`` or ``nation``."""
        tables = {"municipality": self.municipalities, "state": self.states,
                  "nation": self.nation}
        if by not in tables:
            raise InputError(f"invalid level {by!r}; allowed: " + ", ".join(tables))
        return tables[by]

    def part_columns(self) -> list[str]:
        """Detailed part columns in order (composition, then behaviour)."""
        cols = [f"composition_{c}" for c in self.covariates]
        cols += [f"behaviour_{c}" for c in self.covariates] + ["behaviour_intercept"]
        if self.not_comparable:
            cols.append("behaviour_not_comparable")
        return cols

    def domain_parts(self, row) -> dict:
        """``{"composition": {domain: value}, "behaviour": {domain: value}}`` of one row
        (values None where the split is withheld)."""
        return {side: {d: finite(row[f"{side}_domain_{d}"]) for d in self.domain_names}
                for side in ("composition", "behaviour")}


def decompose(a: TrendSide, b: TrendSide, *, home=None, names: pd.DataFrame | None = None,
              geography: str | None = None, draws: int = N_DRAWS, seed: int = SEED,
              exact: bool = False) -> Trend:
    """Decompose the change from edition ``a`` to edition ``b``.

    Parameters
    ----------
    a, b : TrendSide
    home : dict, optional
        Code of a record's municipality -> code of the municipality of the reporting
        geography it belongs to (e.g. newer pieces -> their older municipality). Codes not
        listed are their own unit.
    names : DataFrame, optional
        ``cvegeo, cve_ent, nom_ent, nom_mun`` of the reporting geography: only these
        municipalities get a municipal row (records elsewhere still count for their state and
        the nation). Default: every unit with records.
    geography : str, optional
        Label of the reporting geography (an edition name).
    draws : int, default 1000
        Coefficient draws for the intervals (0: none).
    seed : int
    exact : bool, default False
        Re-score every draw exactly instead of by the first-order expansion.

    Returns
    -------
    Trend

    Raises
    ------
    InputError
        Missing columns or values in the census records, coefficient and covariance shapes
        that do not match.
    """
    _check(a)
    _check(b)
    common = [c for c in a.covariates if c in b.covariates]
    only_a = [c for c in a.covariates if c not in b.covariates]
    only_b = [c for c in b.covariates if c not in a.covariates]
    union = common + only_a + only_b
    m = 1 + len(union)
    beta_a, cov_a = _expand(a, union)
    beta_b, cov_b = _expand(b, union)

    home = {str(k): str(v) for k, v in (home or {}).items()}
    codes_a, uniq_a = _home_codes(a.census, home)
    codes_b, uniq_b = _home_codes(b.census, home)
    units = pd.Index(sorted(set(uniq_a) | set(uniq_b)), name="cvegeo")
    ga = units.get_indexer(uniq_a)[codes_a].astype(np.int32)
    gb = units.get_indexer(uniq_b)[codes_b].astype(np.int32)
    U = len(units)

    # Covariates one spec lacks: records take their unit's mean on the side that has them.
    means_a = _unit_means(a.census, only_a, ga, U)
    means_b = _unit_means(b.census, only_b, gb, U)
    fill_a = {c: means_b[:, j] for j, c in enumerate(only_b)}   # for X_a's records
    fill_b = {c: means_a[:, j] for j, c in enumerate(only_a)}   # for X_b's records
    Bmat = np.column_stack([beta_a, beta_b])

    rng = np.random.default_rng(seed)
    da = rng.multivariate_normal(np.zeros(m), cov_a, size=draws, method="svd") if draws else None
    db = rng.multivariate_normal(np.zeros(m), cov_b, size=draws, method="svd") if draws else None
    if exact and draws:
        Bmat = np.column_stack([Bmat, (beta_a + da).T, (beta_b + db).T])

    acc_a = _accumulate(a.census, union, fill_a, ga, U, Bmat, not exact)
    acc_b = _accumulate(b.census, union, fill_b, gb, U, Bmat, not exact)

    state_of = pd.Index(units.str[:2])
    states = pd.Index(sorted(state_of.unique()), name="cve_ent")
    s_idx = states.get_indexer(state_of)
    S = len(states)
    agg = sp.csr_matrix((np.ones(U), (s_idx, np.arange(U))), shape=(S, U))
    nat = sp.csr_matrix(np.ones((1, U)))

    def level(matrix):
        return {k: (matrix @ v if v.ndim == 2 else
                    (matrix @ v.reshape(U, -1)).reshape((matrix.shape[0],) + v.shape[1:]))
                for k, v in (("N_a", acc_a["N"][:, None]), ("N_b", acc_b["N"][:, None]),
                             ("X_a", acc_a["X"]), ("X_b", acc_b["X"]),
                             ("S_a", acc_a["S"]), ("S_b", acc_b["S"]),
                             *((("G_a", acc_a["G"]), ("G_b", acc_b["G"])) if not exact else ()))}

    ident = sp.identity(U, format="csr")
    domains = {c: (a.domains.get(c) or b.domains.get(c) or "otros") for c in union}
    spec = dict(beta_a=beta_a, beta_b=beta_b, common=common, extra=only_a + only_b,
                domains=domains)
    mun = _frame(level(ident), spec, None, exact)
    st = _frame(level(agg), spec, (da, db) if draws else None, exact)
    nt = _frame(level(nat), spec, (da, db) if draws else None, exact)

    mun.insert(0, "unit", units.to_numpy())
    st.insert(0, "unit", states.to_numpy())
    nt.insert(0, "unit", [NATION])
    mun, st, nt = _label(mun, st, nt, names)
    coef = {"a": dict(zip(["intercept", *union], beta_a.tolist())),
            "b": dict(zip(["intercept", *union], beta_b.tolist()))}
    return Trend(a.name, b.name, common, only_a + only_b, domains, mun, st, nt,
                 int(draws), int(seed), bool(exact), geography or a.name, coef)


# -- inputs -----------------------------------------------------------------------------------
def _check(side: TrendSide) -> None:
    k = len(side.covariates) + 1
    if side.coef.shape != (k,) or side.cov.shape != (k, k):
        raise InputError(f"edition {side.name}: {len(side.coef)} coefficients and a "
                         f"{side.cov.shape} covariance for {k - 1} covariates")
    missing = [c for c in ["cvegeo", "weight", *side.covariates] if c not in side.census]
    if missing:
        raise InputError(f"edition {side.name}: census records lack column(s) "
                         + ", ".join(missing))


def _expand(side: TrendSide, union: list) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients and covariance on ``[intercept, *union]`` (0 where the side lacks one)."""
    pos = [0] + [1 + side.covariates.index(c) if c in side.covariates else -1 for c in union]
    m = len(pos)
    beta, cov = np.zeros(m), np.zeros((m, m))
    have = [i for i, p in enumerate(pos) if p >= 0]
    src = [pos[i] for i in have]
    beta[have] = side.coef[src]
    cov[np.ix_(have, have)] = side.cov[np.ix_(src, src)]
    return beta, cov


def _home_codes(census: pd.DataFrame, home: dict) -> tuple[np.ndarray, list]:
    """Per record, the index of its unit code (``home`` applied) among the returned codes."""
    codes = census["cvegeo"]
    if codes.isna().any():
        raise InputError("missing municipality code", column="cvegeo",
                         row=int(np.flatnonzero(codes.isna().to_numpy())[0]))
    index, uniques = pd.factorize(codes, sort=False)
    mapped = [home.get(str(c), str(c)) for c in uniques]
    return index, mapped


def _weights(census: pd.DataFrame) -> np.ndarray:
    v = pd.to_numeric(census["weight"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(v) | (v <= 0)
    if bad.any():
        raise InputError("weights must be finite and > 0", column="weight",
                         row=int(np.flatnonzero(bad)[0]))
    return v


def _column(census: pd.DataFrame, name: str) -> np.ndarray:
    """A covariate column as float64 (a view when it already is), checked finite."""
    try:
        col = census[name].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        raise InputError("must be numeric", column=name) from None
    bad = ~np.isfinite(col)
    if bad.any():
        raise InputError("missing or infinite value", column=name,
                         row=int(np.flatnonzero(bad)[0]))
    return col


def _unit_means(census: pd.DataFrame, covariates: list, g: np.ndarray, U: int) -> np.ndarray:
    """Children-weighted means of ``covariates`` per unit (national mean where none)."""
    if not covariates:
        return np.zeros((U, 0))
    v = _weights(census)
    X = np.column_stack([_column(census, c) for c in covariates])
    W = sp.csc_matrix((v, g.astype(np.int32), np.arange(len(v) + 1)), shape=(U, len(v)))
    total = np.asarray(W.sum(axis=1)).ravel()
    sums = W @ X
    national = (v @ X) / v.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        out = sums / total[:, None]
    return np.where(total[:, None] > 0, out, national[None, :])


def _accumulate(census, union, fill, g, U, Bmat, gradients) -> dict:
    """Sums per unit over the records: children ``N``, covariate totals ``X`` (first column
    the children), probability totals ``S`` (one column per coefficient vector of ``Bmat``)
    and, with ``gradients``, ``G[u, t, :] = sum v p_t (1 - p_t) z``.

    ``fill`` gives, for covariates this side's spec lacks, the value per unit its records
    take. Records go in chunks small enough to stay in cache; each unit sum is a product of
    a sparse matrix (one column per record, its weight in its unit's row) with the chunk's
    design matrix.
    """
    v = _weights(census)
    n, m, T = len(v), Bmat.shape[0], Bmat.shape[1]
    cols = [None if c in fill else _column(census, c) for c in union]
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


def _frame(lv: dict, spec: dict, draws, exact: bool) -> pd.DataFrame:
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


def _label(mun, st, nt, names):
    """Names, state codes, and only the reporting geography's municipalities."""
    if names is not None:
        nm = pd.DataFrame(names)[["cvegeo", "cve_ent", "nom_ent", "nom_mun"]].astype(str)
        nm = nm.drop_duplicates("cvegeo").set_index("cvegeo")
        mun = mun[mun["unit"].isin(nm.index)].copy()
        missing = nm.index.difference(mun["unit"])
        if len(missing):  # municipalities without records in either edition: a row of NaN
            blank = pd.DataFrame({"unit": missing.to_numpy()})
            mun = pd.concat([mun, blank], ignore_index=True)
        mun = mun.sort_values("unit").reset_index(drop=True)
        mun.insert(1, "name", nm["nom_mun"].reindex(mun["unit"]).to_numpy())
        mun.insert(2, "cve_ent", nm["cve_ent"].reindex(mun["unit"]).to_numpy())
        states = nm.drop_duplicates("cve_ent").set_index("cve_ent")["nom_ent"]
        st.insert(1, "name", states.reindex(st["unit"]).fillna("").to_numpy())
    else:
        mun.insert(1, "name", "")
        mun.insert(2, "cve_ent", mun["unit"].str[:2])
        st.insert(1, "name", "")
    st.insert(2, "cve_ent", st["unit"])
    nt.insert(1, "name", "Nacional")
    nt.insert(2, "cve_ent", "")
    for df in (mun, st, nt):
        for col in ("composition_withheld", "behaviour_withheld"):
            df[col] = df[col].fillna("")
    return mun, st, nt


def columns(trend: Trend, by: str) -> list[str]:
    """The published columns of a level's rows (``riskmap trend`` and the API's CSV)."""
    cols = ["unit", "name", "probability_a", "probability_b", *PARTS, *trend.part_columns()]
    if by != "municipality":
        cols += [f"{p}_ci_{end}" for p in PARTS for end in ("low", "high")]
    return cols


def finite(value) -> float | None:
    """A float, or None when missing or not finite (for JSON and text)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


# -- from a data directory ----------------------------------------------------------------------
def load_trend(store, a: str, b: str, *, draws: int = N_DRAWS, seed: int = SEED,
               names: pd.DataFrame | None = None) -> Trend:
    """Decompose the change between two published editions of ``store``.

    The municipal rows follow the older edition's geography (the earlier ``year``; ``a`` on a
    tie), so swapping ``a`` and ``b`` negates every part unit by unit. Records of municipalities
    the newer geography created are pooled into the older municipality they came from (the
    crosswalk pieces of :func:`riskmap.model.compare.pieces`).

    Parameters
    ----------
    store : riskmap.publish.store.DataStore
        Anything with ``load_card``, ``load_census``, ``load_vintage`` and
        ``load_crosswalk``.
    a, b : str
        Edition names.
    draws, seed : int
    names : DataFrame, optional
        ``cvegeo, cve_ent, nom_ent, nom_mun`` of the older geography (default: read from its
        stored vintage).

    Returns
    -------
    Trend

    Raises
    ------
    InputError
        An edition has no fitted model or keeps no census records (e.g. an imported list):
        no decomposition is possible.
    NotFound
        An edition is not published.
    """
    from .compare import invert, pieces

    card_a, card_b = store.load_card(a), store.load_card(b)
    for name, card in ((a, card_a), (b, card_b)):
        if card.get("kind") == "imported" or not card.get("coefficients"):
            raise InputError(f"edition {name} is an imported list of published levels, without "
                             "a fitted model or census records: no trend decomposition is "
                             "possible; compare its levels on /comparar instead")
    side_a = TrendSide.from_card(card_a, store.load_census(a, card_a))
    side_b = TrendSide.from_card(card_b, store.load_census(b, card_b))
    year_a, year_b = int(card_a.get("year") or 0), int(card_b.get("year") or 0)
    older, card_old, card_new = (a, card_a, card_b) if year_a <= year_b else (b, card_b, card_a)
    v_old, v_new = str(card_old["vintage"]), str(card_new["vintage"])
    if names is None:
        names = pd.DataFrame(store.load_vintage(v_old).drop(columns="geometry"))
    home = {}
    if v_old != v_new:
        try:
            crosswalk = store.load_crosswalk(v_new, v_old)
        except Exception:  # noqa: BLE001 - NotFound: try the other direction
            try:
                crosswalk = invert(store.load_crosswalk(v_old, v_new))
            except Exception:  # noqa: BLE001 - no crosswalk: unmatched codes are left out
                crosswalk = None
        codes_old = pd.Index(names["cvegeo"].astype(str))
        newer = side_b if older == a else side_a
        codes_new = pd.Index(pd.unique(newer.census["cvegeo"]).astype(str))
        for parent, members in pieces(crosswalk, codes_new, codes_old).items():
            home.update({m: parent for m in members if m != parent})
    return decompose(side_a, side_b, home=home, names=names, geography=older, draws=draws,
                     seed=seed)
