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
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import InputError
from .trend_math import (NEAR_ZERO, PARTS, accumulate, check_side, expand, frame, home_codes,
                         unit_means)

__all__ = ["N_DRAWS", "NATION", "NEAR_ZERO", "PARTS", "SEED", "Trend", "TrendSide", "columns",
           "decompose", "finite", "load_trend"]

N_DRAWS = 1000
SEED = 20240817
NATION = "nacional"


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
    check_side(a)
    check_side(b)
    common = [c for c in a.covariates if c in b.covariates]
    only_a = [c for c in a.covariates if c not in b.covariates]
    only_b = [c for c in b.covariates if c not in a.covariates]
    union = common + only_a + only_b
    m = 1 + len(union)
    beta_a, cov_a = expand(a, union)
    beta_b, cov_b = expand(b, union)

    home = {str(k): str(v) for k, v in (home or {}).items()}
    codes_a, uniq_a = home_codes(a.census, home)
    codes_b, uniq_b = home_codes(b.census, home)
    units = pd.Index(sorted(set(uniq_a) | set(uniq_b)), name="cvegeo")
    ga = units.get_indexer(uniq_a)[codes_a].astype(np.int32)
    gb = units.get_indexer(uniq_b)[codes_b].astype(np.int32)
    U = len(units)

    # Covariates one spec lacks: records take their unit's mean on the side that has them.
    means_a = unit_means(a.census, only_a, ga, U)
    means_b = unit_means(b.census, only_b, gb, U)
    fill_a = {c: means_b[:, j] for j, c in enumerate(only_b)}   # for X_a's records
    fill_b = {c: means_a[:, j] for j, c in enumerate(only_a)}   # for X_b's records
    Bmat = np.column_stack([beta_a, beta_b])

    rng = np.random.default_rng(seed)
    da = rng.multivariate_normal(np.zeros(m), cov_a, size=draws, method="svd") if draws else None
    db = rng.multivariate_normal(np.zeros(m), cov_b, size=draws, method="svd") if draws else None
    if exact and draws:
        Bmat = np.column_stack([Bmat, (beta_a + da).T, (beta_b + db).T])

    acc_a = accumulate(a.census, union, fill_a, ga, U, Bmat, not exact)
    acc_b = accumulate(b.census, union, fill_b, gb, U, Bmat, not exact)

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
    mun = frame(level(ident), spec, None, exact)
    st = frame(level(agg), spec, (da, db) if draws else None, exact)
    nt = frame(level(nat), spec, (da, db) if draws else None, exact)

    mun.insert(0, "unit", units.to_numpy())
    st.insert(0, "unit", states.to_numpy())
    nt.insert(0, "unit", [NATION])
    mun, st, nt = _label(mun, st, nt, names)
    coef = {"a": dict(zip(["intercept", *union], beta_a.tolist())),
            "b": dict(zip(["intercept", *union], beta_b.tolist()))}
    return Trend(a.name, b.name, common, only_a + only_b, domains, mun, st, nt,
                 int(draws), int(seed), bool(exact), geography or a.name, coef)


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
