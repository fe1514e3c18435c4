"""Comparison of two editions through a geography crosswalk (docs/METHOD.md §6).

Edition A is aligned onto edition B's municipalities: a code present in A keeps its own row;
a municipality created after A takes its parent's A values (the from-municipality that makes
up the largest part of its area: crosswalk column ``share_to``), flagged in ``derived_from``;
a code with no parent has no A information. When A's geography is the newer one, a B
municipality that A's geography divides (some of its territory formed municipalities created
after B) takes the children-weighted A value of all its pieces (``alignment`` "aggregated",
the pieces in ``aggregated_from``), so a parent that lost territory is not compared as if
unchanged. The change ``d = P_B - P_A`` is significant when ``|d| > Z sd`` with
``sd = sqrt(se_A^2 + se_B^2)`` (independent surveys, ``Z`` the 95 % normal quantile); where
either side lacks a standard error (an imported list) the change cannot be tested and is
``None``, never "no change". Every table of a comparison counts each municipality of B's
geography once; the level counts of each edition on its own geography are kept beside the
aligned ones, with the difference explained (:attr:`Comparison.notes`).

:func:`history` follows one municipality across all editions with the same alignment and the
same test (:func:`change`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import math

import numpy as np
import pandas as pd

from .levels import LEVELS
from ..errors import InputError, NotFound
from ..jsonable import jsonable
from .rules import level_of
from .score import Z95

NO_INFO = "sin_informacion"
CHANGES = ("aumento", "disminucion", "sin_cambio", NO_INFO)
#: Level transitions (used where a change cannot be tested): the level rose, fell or stayed.
LEVEL_CHANGES = ("sube", "baja", "igual", NO_INFO)
#: The one significance threshold of a change between editions (95 %, as the intervals).
Z = Z95
#: Direction of a change in :func:`change` -> the word of :data:`CHANGES`.
CHANGE_WORDS = {"increase": "aumento", "decrease": "disminucion", "none": "sin_cambio"}
#: Rule id of the published levels of an imported (official) list.
PUBLISHED_RULE = "publicado"
CHANGE_COLUMNS = ("cvegeo", "cve_ent", "nom_ent", "nom_mun", "level_a", "level_b",
                  "probability_a", "probability_b", "diff", "sd", "z", "change",
                  "level_change", "derived_from", "alignment", "aggregated_from")
_ORDER = {"bajo": 0, "medio": 1, "alto": 2}


@dataclass
class Comparison:
    """Result of :func:`compare_editions`.

    Attributes
    ----------
    a, b : str
        Edition names.
    counts : DataFrame
        Level counts of each edition on its own geography (the edition's own figures, e.g.
        393 alto in a published list); index ``LEVELS``, columns ``[a, b]`` (edition names;
        ``"a"``/``"b"`` when both names are equal).
    transitions : DataFrame
        ``level_a`` x ``level_b`` counts on B's municipalities (all ``LEVELS``, zeros kept):
        each municipality of B's geography once.
    changes : DataFrame
        One row per B municipality (``CHANGE_COLUMNS``); ``alignment`` is ``same``,
        ``derived`` (took its parent's A value), ``aggregated`` (A value pooled from the
        pieces A's newer geography divides it into, listed in ``aggregated_from``) or
        ``unmatched`` (no A information). ``change`` is ``None`` where it cannot be tested
        (no standard error on either side); ``level_change`` (:data:`LEVEL_CHANGES`) says
        whether the level rose, fell or stayed.
    by_state : DataFrame
        Per state of B: municipalities, alto in A (aligned) and B, significant increases and
        decreases (NaN where no change of the state could be tested).
    entered_alto, left_alto : DataFrame
        Rows of ``changes`` that became alto in B / stopped being alto.
    aligned_counts : DataFrame
        Level counts on B's geography (``[a, b]`` columns as ``counts``): the row and column
        totals of ``transitions``, the sums of ``by_state`` and what entries and exits of
        alto are computed from.
    notes : list of dict
        Why A's aligned counts differ from its own: ``{"kind", "count", "codes"}`` with kind
        ``derived`` (municipalities created after A that take their parent's A level),
        ``unmatched`` (B municipalities without an A value: counted as sin_informacion),
        ``pooled`` (municipalities of A created after B, pooled with the B municipality they
        were split from; ``groups`` the number of B municipalities concerned) and ``dropped``
        (A municipalities with no place in B's geography).
    created : DataFrame
        Municipalities created between the two geographies: ``cvegeo, nom_mun, nom_ent,
        edition`` (the edition whose geography has it), ``parent`` (the municipality of the
        other geography it comes from or is pooled into), ``treatment`` (``derived``,
        ``unmatched`` or ``pooled``).
    rules : dict
        ``{"a": id, "b": id}``: the level rule of each edition (:func:`rule_id`).
    testable : bool
        Whether any change could be tested (both editions publish standard errors).
    direction : str
        ``same_geography``, ``older_to_newer`` (A's geography is the older one) or
        ``newer_to_older``.
    """

    a: str
    b: str
    counts: pd.DataFrame
    transitions: pd.DataFrame
    changes: pd.DataFrame
    by_state: pd.DataFrame
    entered_alto: pd.DataFrame
    left_alto: pd.DataFrame
    aligned_counts: pd.DataFrame | None = None
    notes: list = field(default_factory=list)
    created: pd.DataFrame | None = None
    rules: dict = field(default_factory=dict)
    testable: bool = True
    direction: str = "same_geography"

    @property
    def same_rule(self) -> bool:
        """Whether both editions classify with the same rule (unknown rules are not flagged)."""
        ra, rb = self.rules.get("a"), self.rules.get("b")
        return ra is None or rb is None or ra == rb

    def warnings(self) -> list[dict]:
        """What a reader must know before reading the counts: ``{"kind", ...}`` items.

        ``different_rules`` (with ``a`` and ``b`` rule ids) when the editions classify with
        different rules, e.g. a published list against a modelled edition: level changes
        then mix real change with the change of rule. ``untestable`` when no change can be
        tested for significance (an edition without standard errors).
        """
        out = []
        ra, rb = self.rules.get("a"), self.rules.get("b")
        if not self.same_rule:
            out.append({"kind": "different_rules", "a": ra, "b": rb,
                        "message": f"editions {self.a} and {self.b} classify with different "
                                   f"rules ({ra} vs {rb}): moves between levels mix real "
                                   "change with the change of rule"})
        if not self.testable:
            out.append({"kind": "untestable",
                        "message": "no change can be tested for significance: an edition "
                                   "publishes no standard errors; level transitions remain"})
        return out

    def summary(self) -> dict:
        """Counts of changes and alignment flags (changes are ``None`` when untestable)."""
        ch = self.changes["change"].value_counts()
        al = self.changes["alignment"].value_counts()
        lc = self.changes["level_change"].value_counts()
        tested = ("aumento", "disminucion", "sin_cambio")
        return {
            **{c: (int(ch.get(c, 0)) if self.testable or c not in tested else None)
               for c in CHANGES},
            "untested": int(self.changes["change"].isna().sum()),
            **{f"level_{c}": int(lc.get(c, 0)) for c in LEVEL_CHANGES if c != NO_INFO},
            "derived": int(al.get("derived", 0)),
            "aggregated": int(al.get("aggregated", 0)),
            "unmatched": int(al.get("unmatched", 0)),
            "entered_alto": len(self.entered_alto),
            "left_alto": len(self.left_alto),
            "municipalities": len(self.changes),
        }

    def transition_totals(self) -> dict:
        """Row totals (A, aligned), column totals (B) and the grand total of the matrix."""
        t = self.transitions
        return {"rows": {lvl: int(v) for lvl, v in t.sum(axis=1).items()},
                "columns": {lvl: int(v) for lvl, v in t.sum(axis=0).items()},
                "total": int(t.to_numpy().sum())}

    def to_dict(self) -> dict:
        """JSON-able form (NaN becomes None)."""
        ca, cb = self.counts.columns
        aligned = self.aligned_counts if self.aligned_counts is not None else self.counts
        return {
            "a": self.a,
            "b": self.b,
            "counts": {lvl: {"a": int(self.counts.at[lvl, ca]), "b": int(self.counts.at[lvl, cb]),
                             "a_aligned": int(aligned.iloc[:, 0][lvl]),
                             "b_aligned": int(aligned.iloc[:, 1][lvl])}
                       for lvl in self.counts.index},
            "notes": [dict(n) for n in self.notes],
            "transitions": {la: {lb: int(self.transitions.at[la, lb])
                                 for lb in self.transitions.columns}
                            for la in self.transitions.index},
            "transition_totals": self.transition_totals(),
            "summary": self.summary(),
            "rules": dict(self.rules),
            "same_rule": self.same_rule,
            "testable": self.testable,
            "direction": self.direction,
            "warnings": self.warnings(),
            "by_state": jsonable(self.by_state),
            "entered_alto": jsonable(self.entered_alto),
            "left_alto": jsonable(self.left_alto),
            "created": jsonable(self.created) if self.created is not None else [],
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
                z: float = Z95, rule: dict | None = None) -> pd.DataFrame:
    """A's value on B's geography for divided municipalities: children-weighted pieces.

    P = sum N_i P_i / sum N_i. Variance, conservatively: the census-sample parts are
    independent across pieces, the model parts (one fitted model) are taken as perfectly
    correlated, ``[(sum N_i sd_model_i)^2 + sum N_i^2 var_census_i] / (sum N_i)^2``; without
    that split (imported editions) ``se`` is pooled as perfectly correlated. The level
    follows A's level rule (``rule``, its card entry; :func:`riskmap.model.rules.level_of`)
    when there is an interval, else it is the level of the piece that kept B's code.

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
            level = level_of(prob, se, rule, reference, z)
        rows.append((code, prob, se, level, "+".join(members)))
    return pd.DataFrame(rows, columns=["cvegeo", "probability", "se", "level", "pieces"]
                        ).set_index("cvegeo")


def rule_id(card) -> str | None:
    """The level rule of an edition, read defensively from its model card.

    ``card["rule"]["id"]`` when present; an imported edition without one (older cards) is
    :data:`PUBLISHED_RULE`; otherwise ``None`` (unknown).
    """
    card = card if isinstance(card, dict) else {}
    rule = card.get("rule")
    if isinstance(rule, dict):
        value = rule.get("id")
        if isinstance(value, str) and value.strip():
            return value.strip()
    if card.get("kind") == "imported":
        return PUBLISHED_RULE
    return None


def significant(diff, sd, z: float = Z):
    """Whether a change ``diff`` with standard deviation ``sd`` is significant: ``|d| > z sd``.

    Works on scalars and arrays; ``NaN`` inputs give ``False`` (callers decide what an
    untestable change is).
    """
    with np.errstate(invalid="ignore"):
        return np.abs(diff) > z * sd


def level_change(level_a, level_b) -> np.ndarray:
    """:data:`LEVEL_CHANGES` word of each pair of levels (``sin_informacion`` on either side
    gives ``sin_informacion``)."""
    la = pd.Series(np.asarray(level_a, dtype=object)).map(_ORDER)
    lb = pd.Series(np.asarray(level_b, dtype=object)).map(_ORDER)
    out = np.where(lb > la, "sube", np.where(lb < la, "baja", "igual")).astype(object)
    out[(la.isna() | lb.isna()).to_numpy()] = NO_INFO
    return out


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
    groups = pieces(crosswalk, ta.index, codes_b)
    pooled = pool_pieces(ta, groups, a.national_rate, rule=a.card.get("rule"))
    aggregated_from = np.full(len(codes_b), None, dtype=object)
    alignment = alignment.astype(object)
    if len(pooled):
        at = codes_b.get_indexer(pooled.index)
        pa[at] = pooled["probability"].to_numpy()
        sa[at] = pooled["se"].to_numpy()
        level_a[at] = pooled["level"].to_numpy(dtype=object)
        alignment[at] = "aggregated"
        aggregated_from[at] = pooled["pieces"].to_numpy(dtype=object)
    level_b = tb["level"].fillna(NO_INFO).to_numpy(dtype=object)
    pb = tb["probability"].to_numpy(dtype=np.float64)
    sb = tb["se"].to_numpy(dtype=np.float64)

    diff = pb - pa
    sd = np.sqrt(sa**2 + sb**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = diff / sd
    no_level = (level_a == NO_INFO) | (level_b == NO_INFO)
    untestable = ~no_level & (np.isnan(diff) | np.isnan(sd) | (sd <= 0))
    sig = significant(diff, sd)
    change = np.where(sig, np.where(diff > 0, "aumento", "disminucion"), "sin_cambio"
                      ).astype(object)
    change[untestable] = None
    change[no_level] = NO_INFO
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
        "level_change": level_change(level_a, level_b),
        "derived_from": derived,
        "alignment": alignment,
        "aggregated_from": aggregated_from,
    }, columns=list(CHANGE_COLUMNS))
    testable = bool((~untestable & ~no_level).any()) or not untestable.any()

    name_a, name_b = (str(a.name), str(b.name)) if a.name != b.name else ("a", "b")

    def count(levels) -> pd.Series:
        return pd.Series(levels).value_counts().reindex(list(LEVELS), fill_value=0)

    counts = pd.DataFrame({name_a: count(ta["level"].fillna(NO_INFO)),
                           name_b: count(tb["level"].fillna(NO_INFO))}).astype(np.int64)
    counts.index.name = "level"
    aligned_counts = pd.DataFrame({name_a: count(changes["level_a"]),
                                   name_b: count(changes["level_b"])}).astype(np.int64)
    aligned_counts.index.name = "level"
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
        "tested": changes["change"].isin(["aumento", "disminucion", "sin_cambio"]).astype(int),
    })
    by_state = (flags.groupby(["cve_ent", "nom_ent"], sort=True, dropna=False)
                .sum().reset_index())
    # A state where no change could be tested has no count of changes, not zero changes.
    none_tested = by_state.pop("tested") == 0
    by_state[["aumento", "disminucion"]] = by_state[["aumento", "disminucion"]].astype(
        "float64").mask(none_tested)
    entered = changes[(changes["level_b"] == "alto") & (changes["level_a"] != "alto")]
    left = changes[(changes["level_a"] == "alto") & (changes["level_b"] != "alto")]
    notes, created = _explain(ta, tb, changes, groups, a, b)
    direction = _direction(a, b, created)
    return Comparison(str(a.name), str(b.name), counts, transitions, changes, by_state,
                      entered.reset_index(drop=True), left.reset_index(drop=True),
                      aligned_counts=aligned_counts, notes=notes, created=created,
                      rules={"a": rule_id(a.card), "b": rule_id(b.card)},
                      testable=testable, direction=direction)


def _direction(a, b, created: pd.DataFrame) -> str:
    """Which geography is the newer: the one holding more of the created municipalities
    (ties, e.g. a dissolved municipality only: the editions' years)."""
    if str(a.vintage) == str(b.vintage) and not len(created):
        return "same_geography"
    in_b = int((created["edition"] == str(b.name)).sum()) if len(created) else 0
    in_a = len(created) - in_b
    if in_a == in_b:
        in_a, in_b = (a.year or 0), (b.year or 0)
    return "newer_to_older" if in_a > in_b else "older_to_newer"


def _explain(ta, tb, changes, groups, a, b) -> tuple[list[dict], pd.DataFrame]:
    """Why A's counts on B's geography differ from its own, and the created municipalities."""
    notes, created = [], []

    def names(table, code):
        return (str(table.at[code, "nom_mun"]), str(table.at[code, "nom_ent"]))

    derived = changes[changes["alignment"] == "derived"]
    for r in derived.itertuples():
        created.append((r.cvegeo, r.nom_mun, r.nom_ent, str(b.name), r.derived_from, "derived"))
    unmatched = changes[changes["alignment"] == "unmatched"]
    for r in unmatched.itertuples():
        created.append((r.cvegeo, r.nom_mun, r.nom_ent, str(b.name), None, "unmatched"))
    pooled_codes = []
    for home, members in groups.items():
        for code in members:
            if code != home:
                pooled_codes.append(code)
                created.append((code, *names(ta, code), str(a.name), home, "pooled"))
    placed = set(changes["cvegeo"]) | set(pooled_codes)
    dropped = sorted(c for c in ta.index if c not in placed)
    if len(derived):
        notes.append({"kind": "derived", "count": len(derived),
                      "codes": derived["cvegeo"].astype(str).tolist()})
    if len(unmatched):
        notes.append({"kind": "unmatched", "count": len(unmatched),
                      "codes": unmatched["cvegeo"].astype(str).tolist()})
    if pooled_codes:
        notes.append({"kind": "pooled", "count": len(pooled_codes), "groups": len(groups),
                      "codes": sorted(pooled_codes)})
    if dropped:
        notes.append({"kind": "dropped", "count": len(dropped), "codes": dropped})
    table = pd.DataFrame(created, columns=["cvegeo", "nom_mun", "nom_ent", "edition", "parent",
                                           "treatment"])
    return notes, table.sort_values("cvegeo", kind="stable").reset_index(drop=True)


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


# -- one municipality across editions -------------------------------------------------------
@dataclass(frozen=True)
class EditionRows:
    """What :func:`history` needs of one edition.

    Attributes
    ----------
    name, vintage : str
    year : int or None
    rows : Mapping
        cvegeo -> dict with ``nom_mun, level, probability, ci_low, ci_high, se`` (plain
        Python values, ``None`` when missing).
    kind : str
        ``modelled`` or ``imported``.
    """

    name: str
    year: int | None
    vintage: str
    rows: Mapping
    kind: str = "modelled"


def change(a: dict, b: dict, z: float = Z) -> dict | None:
    """Change from ``a`` to ``b`` (dicts with ``probability`` and ``se``), as in
    :func:`compare_editions`: significant when ``|d| > z sd``, ``sd = sqrt(se_a^2 + se_b^2)``.

    Returns
    -------
    dict or None
        ``{diff, sd, significant, direction, change}`` with ``direction`` one of
        ``increase`` / ``decrease`` / ``none`` and ``change`` its word in :data:`CHANGES`;
        ``None`` when either side lacks a probability or a standard error (imported editions
        publish none): without both, no significance test is possible.
    """
    values = [a.get("probability"), b.get("probability"), a.get("se"), b.get("se")]
    if any(v is None or not math.isfinite(float(v)) for v in values):
        return None
    pa, pb, sa, sb = (float(v) for v in values)
    diff = pb - pa
    sd = math.sqrt(sa ** 2 + sb ** 2)
    if sd <= 0:
        return None
    is_sig = bool(significant(diff, sd, z))
    direction = ("increase" if diff > 0 else "decrease") if is_sig else "none"
    return {"diff": diff, "sd": sd, "significant": is_sig, "direction": direction,
            "change": CHANGE_WORDS[direction]}


def testable(item: dict) -> bool:
    """Whether a history row can take part in a significance test (probability and se)."""
    return all(item.get(k) is not None and math.isfinite(float(item[k]))
               for k in ("probability", "se"))


def history(cvegeo: str, editions, crosswalk) -> list[dict]:
    """A municipality across editions, oldest first, mapped through crosswalks.

    Parameters
    ----------
    cvegeo : str
        Code of the municipality in the newest geography that has it (its home).
    editions : sequence of EditionRows
        Oldest first.
    crosswalk : callable
        ``crosswalk(vintage_from, vintage_to)`` -> DataFrame (as stored), or ``None`` when
        no crosswalk is stored.

    Returns
    -------
    list of dict
        One item per edition whose geography has the municipality or its parent:
        ``edition, year, vintage, kind, cvegeo`` (the code used in that edition),
        ``derived_from`` (the parent's code when the municipality did not exist yet and takes
        its parent's value, as :func:`compare_editions` does), ``larger`` (codes of the
        municipalities later split off this one: the row covered their territory too, else
        an empty list), ``level, probability, ci_low, ci_high, se, nom_mun``, ``change``
        (:func:`change` versus ``compared_with``, ``None`` when none can be tested) and
        ``compared_with`` (the latest earlier edition with a probability and a standard
        error, so an imported list between two modelled editions does not break the chain;
        ``None`` for the first edition or when there is none).

    Raises
    ------
    NotFound
        When the code is in no edition's geography.
    """
    cvegeo = str(cvegeo)
    home = next((e.vintage for e in reversed(list(editions)) if cvegeo in e.rows), None)
    if home is None:
        raise NotFound(f"municipality {cvegeo!r} is in no published edition",
                       errors=["cvegeo: a 5-digit INEGI code"])
    out, reference = [], None
    for ed in editions:
        code, parent = _map_code(cvegeo, home, ed.vintage, ed.rows, crosswalk)
        if code is None:
            continue
        row = ed.rows[code]
        item = {"edition": ed.name, "year": ed.year, "vintage": ed.vintage, "kind": ed.kind,
                "cvegeo": code, "derived_from": parent,
                "larger": _split_off(code, ed.vintage, home, crosswalk) if parent is None else [],
                **{k: row.get(k) for k in ("nom_mun", "level", "probability", "ci_low",
                                           "ci_high", "se", "level_rule")}}
        item["change"] = None if reference is None else change(reference, item)
        item["compared_with"] = (reference["edition"] if item["change"] is not None else None)
        out.append(item)
        if testable(item):
            reference = item
    return out


def _load(crosswalk, src: str, dst: str):
    try:
        table = crosswalk(src, dst)
    except NotFound:
        return None
    return table if table is not None and len(table) else None


def _map_code(code: str, home: str, vintage: str, rows: Mapping, crosswalk):
    """Code of municipality ``code`` (of vintage ``home``) in ``vintage``: (code, parent)."""
    if code in rows:
        return code, None
    for src, dst in ((vintage, home), (home, vintage)):
        cw = _load(crosswalk, src, dst)
        if cw is None:
            continue
        if src == vintage:
            # The edition's geography is older: the parent is the municipality that made up
            # most of this one's area (the rule of compare_editions).
            parent = parents(cw[cw["cvegeo_to"].astype(str) == code],
                             pd.Index(list(rows))).get(code)
            if parent is not None:
                return parent, parent
            continue
        # The edition's geography is newer: the piece that got most of this one's area.
        part = cw[cw["cvegeo_from"].astype(str) == code].sort_values("share", ascending=False)
        for other in part["cvegeo_to"].astype(str):
            if other in rows:
                return other, other
    return None, None


def _split_off(code: str, vintage: str, home: str, crosswalk) -> list[str]:
    """Municipalities of ``home`` created after ``vintage`` out of ``code``'s territory there.

    The same rule as :func:`parents`: a new municipality belongs to the old one that made up
    most of its area.
    """
    if vintage == home:
        return []
    cw = _load(crosswalk, vintage, home)
    if cw is None:
        inverse = _load(crosswalk, home, vintage)
        if inverse is None:
            return []
        cw = invert(inverse)
    old = set(cw["cvegeo_from"].astype(str))
    new = sorted(set(cw["cvegeo_to"].astype(str)) - old)
    if not new:
        return []
    parent = parents(cw[cw["cvegeo_to"].astype(str).isin(new)], pd.Index(sorted(old)))
    return sorted(str(k) for k, v in parent.items() if v == code)
