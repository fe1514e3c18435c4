"""Comparison of two editions through a geography crosswalk (METHOD.md section 6).

Edition A is aligned onto edition B's municipalities: a code present in A keeps its own row;
a municipality created after A takes its parent's A values (the from-municipality that makes
up the largest part of its area: crosswalk column ``share_to``), flagged in ``derived_from``;
a code with no parent has no A information. When A's geography is the newer one, a B
municipality that A's geography divides (some of its territory formed municipalities created
after B) takes the children-weighted A value of all its pieces (``alignment`` "aggregated",
the pieces in ``aggregated_from``), so a parent that lost territory is not compared as if
unchanged. The change ``d = P_B - P_A`` is significant when ``|d| > 1.96 sd`` with
``sd = sqrt(se_A^2 + se_B^2)`` (independent surveys).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .levels import LEVELS
from ..errors import InputError, NotFound
from ..jsonable import jsonable
from .score import Z95, logit_interval

NO_INFO = "sin_informacion"
CHANGES = ("aumento", "disminucion", "sin_cambio", NO_INFO)
#: Significance threshold of a change between editions, |d| > Z sd (docs/METHOD.md §6).
Z = Z95
CHANGE_COLUMNS = ("cvegeo", "cve_ent", "nom_ent", "nom_mun", "level_a", "level_b",
                  "probability_a", "probability_b", "diff", "sd", "z", "change",
                  "derived_from", "alignment", "aggregated_from")


@dataclass
class Comparison:
    """Result of :func:`compare_editions`.

    Attributes
    ----------
    a, b : str
        Edition names.
    counts : DataFrame
        Level counts of each edition on its own geography; index ``LEVELS``, columns
        ``[a, b]`` (edition names; ``"a"``/``"b"`` when both names are equal).
    transitions : DataFrame
        ``level_a`` x ``level_b`` counts on B's municipalities (all ``LEVELS``, zeros kept).
    changes : DataFrame
        One row per B municipality (``CHANGE_COLUMNS``); ``alignment`` is ``same``,
        ``derived`` (took its parent's A value), ``aggregated`` (A value pooled from the
        pieces A's newer geography divides it into, listed in ``aggregated_from``) or
        ``unmatched`` (no A information).
    by_state : DataFrame
        Per state: municipalities, alto in A and B, significant increases and decreases.
    entered_alto, left_alto : DataFrame
        Rows of ``changes`` that became alto in B / stopped being alto.
    """

    a: str
    b: str
    counts: pd.DataFrame
    transitions: pd.DataFrame
    changes: pd.DataFrame
    by_state: pd.DataFrame
    entered_alto: pd.DataFrame
    left_alto: pd.DataFrame

    def summary(self) -> dict:
        """Counts of changes and alignment flags."""
        ch = self.changes["change"].value_counts()
        al = self.changes["alignment"].value_counts()
        return {
            **{c: int(ch.get(c, 0)) for c in CHANGES},
            "derived": int(al.get("derived", 0)),
            "aggregated": int(al.get("aggregated", 0)),
            "unmatched": int(al.get("unmatched", 0)),
            "entered_alto": len(self.entered_alto),
            "left_alto": len(self.left_alto),
        }

    def to_dict(self) -> dict:
        """JSON-able form (NaN becomes None)."""
        ca, cb = self.counts.columns
        return {
            "a": self.a,
            "b": self.b,
            "counts": {lvl: {"a": int(self.counts.at[lvl, ca]), "b": int(self.counts.at[lvl, cb])}
                       for lvl in self.counts.index},
            "transitions": {la: {lb: int(self.transitions.at[la, lb])
                                 for lb in self.transitions.columns}
                            for la in self.transitions.index},
            "summary": self.summary(),
            "by_state": jsonable(self.by_state),
            "entered_alto": jsonable(self.entered_alto),
            "left_alto": jsonable(self.left_alto),
            "changes": jsonable(self.changes),
        }


def _table(edition) -> pd.DataFrame:
    rows = pd.DataFrame(edition.rows).drop(columns="geometry", errors="ignore")
    missing = [c for c in ("cvegeo", "level", "probability") if c not in rows.columns]
    if missing:
        raise InputError(f"edition {edition.name} lacks column(s): " + ", ".join(missing))
    rows = rows.copy()
    rows["cvegeo"] = rows["cvegeo"].astype(str)
    if "se" not in rows.columns:
        rows["se"] = np.nan  # imported editions publish no standard errors
    for col in ("probability", "se"):
        rows[col] = pd.to_numeric(rows[col], errors="coerce").astype("float64")
    for col in ("cve_ent", "nom_ent", "nom_mun"):
        if col not in rows.columns:
            rows[col] = rows["cvegeo"].str[:2] if col == "cve_ent" else ""
    return rows.drop_duplicates("cvegeo").set_index("cvegeo")


def parents(crosswalk, codes_a: pd.Index) -> pd.Series:
    """Parent in A of each to-code: the from-code that makes up most of its area.

    Ranked by ``share_to`` (fraction of the to-municipality's area coming from the
    from-municipality); crosswalks without it (e.g. user-supplied CSVs) fall back to
    ``share`` (fraction of the from-municipality's area). Ties: lowest code.
    """
    if crosswalk is None or len(crosswalk) == 0:
        return pd.Series(dtype=object)
    missing = [c for c in ("cvegeo_from", "cvegeo_to", "share") if c not in crosswalk.columns]
    if missing:
        raise InputError("crosswalk lacks column(s): " + ", ".join(missing))
    rank = "share"
    if "share_to" in crosswalk.columns and crosswalk["share_to"].notna().any():
        rank = "share_to"
    cw = pd.DataFrame({"cvegeo_from": crosswalk["cvegeo_from"].astype(str),
                       "cvegeo_to": crosswalk["cvegeo_to"].astype(str),
                       "rank": pd.to_numeric(crosswalk[rank], errors="coerce")})
    cw = cw[cw["cvegeo_from"].isin(codes_a) & cw["rank"].notna()]
    cw = cw.sort_values(["cvegeo_to", "rank", "cvegeo_from"],
                        ascending=[True, False, True], kind="stable")
    first = cw.drop_duplicates("cvegeo_to")
    return pd.Series(first["cvegeo_from"].to_numpy(), index=first["cvegeo_to"].to_numpy(),
                     dtype=object)


def pieces(crosswalk, codes_a: pd.Index, codes_b: pd.Index) -> dict:
    """B municipalities that A's newer geography divides, with their pieces in A.

    A code of A that B does not have was created after B; it belongs to the B municipality
    holding the largest part of its area (``share``). Returns ``{b: [b, a1, a2...]}`` (``b``
    itself first when A still has that code); empty when A's geography is not newer.
    """
    if crosswalk is None or len(crosswalk) == 0:
        return {}
    newer = codes_a.difference(codes_b)
    if len(newer) == 0:
        return {}
    cw = pd.DataFrame({"a": crosswalk["cvegeo_from"].astype(str),
                       "b": crosswalk["cvegeo_to"].astype(str),
                       "share": pd.to_numeric(crosswalk["share"], errors="coerce")})
    cw = cw[cw["a"].isin(newer) & cw["b"].isin(codes_b) & cw["share"].notna()]
    home = (cw.sort_values(["a", "share", "b"], ascending=[True, False, True], kind="stable")
            .drop_duplicates("a"))
    out = {}
    for b, group in home.groupby("b", sort=True):
        members = ([b] if b in codes_a else []) + sorted(group["a"])
        out[str(b)] = members
    return out


def pool_pieces(ta: pd.DataFrame, groups: dict, reference: float | None,
                z: float = Z95) -> pd.DataFrame:
    """A's value on B's geography for divided municipalities: children-weighted pieces.

    P = sum N_i P_i / sum N_i. Variance, conservatively: the census-sample parts are
    independent across pieces, the model parts (one fitted model) are taken as perfectly
    correlated, ``[(sum N_i sd_model_i)^2 + sum N_i^2 var_census_i] / (sum N_i)^2``; without
    that split (imported editions) ``se`` is pooled as perfectly correlated. The level
    follows METHOD.md section 4 against A's national rate when there is an interval, else it
    is the level of the piece that kept B's code.

    Returns
    -------
    DataFrame indexed by B code: ``probability, se, level, pieces`` ("b+a1+a2").
    """
    rows = []
    for code, members in groups.items():
        part = ta.reindex(members)
        p = part["probability"].to_numpy(dtype=np.float64)
        # Children 5-17 weight the pieces; a table without them (a bare imported list)
        # weights them equally.
        w = (pd.to_numeric(part["children"], errors="coerce").to_numpy(dtype=np.float64)
             if "children" in part.columns else np.ones(len(part)))
        ok = np.isfinite(p) & np.isfinite(w) & (w > 0)
        level = part["level"].iloc[0] if code in ta.index else NO_INFO
        if not ok.any():
            rows.append((code, np.nan, np.nan, NO_INFO, "+".join(members)))
            continue
        w, p = w[ok], p[ok]
        prob = float(np.sum(w * p) / np.sum(w))
        if {"var_model", "var_census"} <= set(part.columns):
            vm = pd.to_numeric(part["var_model"], errors="coerce").to_numpy(np.float64)[ok]
            vc = pd.to_numeric(part["var_census"], errors="coerce").to_numpy(np.float64)[ok]
            var = (np.sum(w * np.sqrt(vm)) ** 2 + np.sum(w**2 * vc)) / np.sum(w) ** 2
        else:
            se_i = part["se"].to_numpy(dtype=np.float64)[ok]
            var = (np.sum(w * se_i) / np.sum(w)) ** 2
        se = float(np.sqrt(var)) if np.isfinite(var) else np.nan
        if np.isfinite(se) and se > 0 and reference is not None and 0 < prob < 1:
            low, high = logit_interval(prob, se, z)
            level = "alto" if low > reference else "bajo" if high < reference else "medio"
        rows.append((code, prob, se, level, "+".join(members)))
    return pd.DataFrame(rows, columns=["cvegeo", "probability", "se", "level", "pieces"]
                        ).set_index("cvegeo")


def compare_editions(a, b, crosswalk=None) -> Comparison:
    """Compare edition A with edition B on B's municipalities.

    Parameters
    ----------
    a, b : riskmap.publish.edition.Edition
    crosswalk : DataFrame, optional
        ``cvegeo_from`` (A's vintage), ``cvegeo_to`` (B's vintage), ``share`` (fraction of
        the from-municipality's area in the to-municipality) and optionally ``share_to``
        (fraction of the to-municipality's area from the from-municipality), which picks
        the parent; without it ``share`` does. Needed only for codes of B that do not
        exist in A.

    Returns
    -------
    Comparison

    Raises
    ------
    InputError
        An edition or the crosswalk lacks required columns.
    """
    ta, tb = _table(a), _table(b)
    codes_b = tb.index
    same = codes_b.isin(ta.index)
    parent_of = parents(crosswalk, ta.index)
    source = pd.Series(np.where(same, codes_b, None), index=codes_b, dtype=object)
    new = ~same
    source[new] = parent_of.reindex(codes_b[new]).to_numpy()
    alignment = np.where(same, "same", np.where(source.notna(), "derived", "unmatched"))

    aligned = ta.reindex(source.fillna("").to_numpy())
    level_a = aligned["level"].fillna(NO_INFO).to_numpy(dtype=object, copy=True)
    pa = aligned["probability"].to_numpy(dtype=np.float64, copy=True)
    sa = aligned["se"].to_numpy(dtype=np.float64, copy=True)
    pooled = pool_pieces(ta, pieces(crosswalk, ta.index, codes_b), a.national_rate)
    aggregated_from = np.full(len(codes_b), None, dtype=object)
    if len(pooled):
        at = codes_b.get_indexer(pooled.index)
        pa[at] = pooled["probability"].to_numpy()
        sa[at] = pooled["se"].to_numpy()
        level_a[at] = pooled["level"].to_numpy(dtype=object)
        alignment = alignment.astype(object)
        alignment[at] = "aggregated"
        aggregated_from[at] = pooled["pieces"].to_numpy(dtype=object)
    level_b = tb["level"].fillna(NO_INFO).to_numpy(dtype=object)
    pb = tb["probability"].to_numpy(dtype=np.float64)
    sb = tb["se"].to_numpy(dtype=np.float64)

    diff = pb - pa
    sd = np.sqrt(sa**2 + sb**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = diff / sd
    change = np.full(len(codes_b), "sin_cambio", dtype=object)
    change[np.abs(diff) > Z * sd] = np.where(diff > 0, "aumento", "disminucion")[
        np.abs(diff) > Z * sd]
    unknown = (np.isnan(diff) | np.isnan(sd) | (sd <= 0) | (level_a == NO_INFO)
               | (level_b == NO_INFO))
    change[unknown] = NO_INFO
    derived = np.where(alignment == "derived", source.to_numpy(), None)

    changes = pd.DataFrame({
        "cvegeo": codes_b.to_numpy(),
        "cve_ent": tb["cve_ent"].astype(str).to_numpy(),
        "nom_ent": tb["nom_ent"].to_numpy(),
        "nom_mun": tb["nom_mun"].to_numpy(),
        "level_a": level_a,
        "level_b": level_b,
        "probability_a": pa,
        "probability_b": pb,
        "diff": diff,
        "sd": sd,
        "z": z,
        "change": change,
        "derived_from": derived,
        "alignment": alignment.astype(object),
        "aggregated_from": aggregated_from,
    }, columns=list(CHANGE_COLUMNS))

    name_a, name_b = (str(a.name), str(b.name)) if a.name != b.name else ("a", "b")
    counts = pd.DataFrame({
        name_a: ta["level"].value_counts().reindex(list(LEVELS), fill_value=0),
        name_b: tb["level"].value_counts().reindex(list(LEVELS), fill_value=0),
    }).astype(np.int64)
    counts.index.name = "level"
    transitions = pd.crosstab(
        pd.Categorical(changes["level_a"], categories=list(LEVELS)),
        pd.Categorical(changes["level_b"], categories=list(LEVELS)), dropna=False,
    ).reindex(index=list(LEVELS), columns=list(LEVELS), fill_value=0).astype(np.int64)
    transitions.index.name, transitions.columns.name = "level_a", "level_b"

    flags = pd.DataFrame({
        "cve_ent": changes["cve_ent"], "nom_ent": changes["nom_ent"],
        "municipios": 1,
        "alto_a": (changes["level_a"] == "alto").astype(int),
        "alto_b": (changes["level_b"] == "alto").astype(int),
        "aumento": (changes["change"] == "aumento").astype(int),
        "disminucion": (changes["change"] == "disminucion").astype(int),
    })
    by_state = (flags.groupby(["cve_ent", "nom_ent"], sort=True, dropna=False)
                .sum().reset_index())
    entered = changes[(changes["level_b"] == "alto") & (changes["level_a"] != "alto")]
    left = changes[(changes["level_a"] == "alto") & (changes["level_b"] != "alto")]
    return Comparison(str(a.name), str(b.name), counts, transitions, changes, by_state,
                      entered.reset_index(drop=True), left.reset_index(drop=True))


def compare(a, b, store=None) -> Comparison:
    """Compare editions, loading the crosswalk between their vintages from ``store``.

    Only the opposite direction stored: it is inverted (``share`` and ``share_to`` swap).
    Without any stored crosswalk between different vintages, codes of B that are not in A
    get no A information (a warning says so).
    """
    crosswalk = None
    if store is not None and a.vintage != b.vintage:
        try:
            crosswalk = store.load_crosswalk(a.vintage, b.vintage)
        except NotFound:
            try:
                crosswalk = invert(store.load_crosswalk(b.vintage, a.vintage))
            except NotFound:
                warnings.warn(f"no crosswalk between vintages {a.vintage} and {b.vintage}; "
                              "new municipalities get no earlier value", RuntimeWarning,
                              stacklevel=2)
    return compare_editions(a, b, crosswalk=crosswalk)


def invert(crosswalk: pd.DataFrame) -> pd.DataFrame:
    """The crosswalk in the other direction: from and to swap, and so do ``share`` and
    ``share_to``. Without ``share_to`` the inverted ``share`` is unknown; ``share`` is kept as
    the best available ranking (the pairs and their order stay right for splits)."""
    out = crosswalk.rename(columns={"cvegeo_from": "cvegeo_to", "cvegeo_to": "cvegeo_from"})
    if "share_to" in crosswalk.columns:
        out = out.rename(columns={"share": "share_to", "share_to": "share"})
    return out[["cvegeo_from", "cvegeo_to", "share"]
               + (["share_to"] if "share_to" in out.columns else [])]
