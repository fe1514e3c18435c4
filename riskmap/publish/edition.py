"""The published edition: what every downstream consumer (web, exports, comparison) reads.

An edition is one survey edition's municipal results on one geography vintage:
``rows`` (one row per municipality of the vintage, with geometry), ``factors`` (long table of
factor contributions) and ``card`` (the model card, a JSON-able dict).
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import pandas as pd

from ..model.factors import FACTOR_COLUMNS
from ..model.levels import LEVELS
from ..model.rules import PUBLISHED

__all__ = ["Edition", "ROW_COLUMNS", "EXTRA_COLUMNS", "ESTIMATOR_COLUMNS", "FACTOR_COLUMNS",
           "LEVELS", "KINDS", "rule_of"]


#: The edition output row of docs/DESIGN.md, in order (exports and the API return these).
ROW_COLUMNS = (
    "edition", "cvegeo", "cve_ent", "nom_ent", "nom_mun", "children", "probability",
    "ci_low", "ci_high", "level", "level_rule", "level_certainty", "expected_child_labour",
    "rank_national", "rank_state", "top_factors",
)

#: Extra per-municipality columns kept in the store (not all exported).
EXTRA_COLUMNS = (
    "cve_mun",      # 3-digit municipal code
    "vintage",      # geography vintage name, e.g. "2015"
    "se",           # standard error of probability: sqrt(var_model + var_census)
    "var_model",    # delta-method variance from coefficient uncertainty
    "var_census",   # census-sample variance (0 for a full count)
    "n_records",    # census child records behind the estimate
)

#: Columns an edition built with the EBP estimator adds (riskmap.model.ebp_predict): whether
#: the survey reached the municipality, its survey children, the direct survey estimate, and
#: the synthetic estimate kept beside the EBP one.
ESTIMATOR_COLUMNS = ("sampled", "n_survey", "probability_direct", "probability_synthetic",
                     "ci_low_synthetic", "ci_high_synthetic")

KINDS = ("modelled", "imported")


def rule_of(card: dict) -> str:
    """The ``level_rule`` of an edition's rows: ``publicado`` for imported editions, else the
    card rule's spec (``mirti``, ``cortes:7.5,12.2``...)."""
    if card.get("kind") == "imported":
        return PUBLISHED
    rule = card.get("rule") or {}
    if isinstance(rule, str):
        return rule
    return str(rule.get("spec") or rule.get("id") or rule.get("name") or "")


@dataclass
class Edition:
    """One published edition.

    Attributes
    ----------
    name : str
        Edition name, e.g. ``"2023"``.
    rows : geopandas.GeoDataFrame
        ROW_COLUMNS + EXTRA_COLUMNS + geometry, EPSG:4326, one row per municipality of the
        vintage (``level == "sin_informacion"`` where there is no estimate; never dropped).
    factors : pandas.DataFrame
        FACTOR_COLUMNS, one row per municipality and covariate (empty for imported editions).
    card : dict
        The model card (docs/DESIGN.md). Always has ``edition``, ``kind``, ``vintage``,
        ``synthetic``, ``sources``, ``rule``, ``created``, ``year``; modelled editions add
        ``coefficients``, ``covariance``, ``national_rate``, ``diagnostics``, ``spec``...
    census : pandas.DataFrame, optional
        The census records the edition was scored on (``cvegeo``, ``weight``, covariates),
        kept when it is published so that the trend decomposition can re-score them; None
        for imported editions and for editions loaded from the store.
    """

    name: str
    rows: gpd.GeoDataFrame
    factors: pd.DataFrame
    card: dict
    census: pd.DataFrame | None = None

    def __post_init__(self):
        # Editions published before level rules had a registry lack the two level columns:
        # their rule is the card's, their certainty unknown.
        missing = {}
        if "level_rule" not in self.rows.columns:
            missing["level_rule"] = rule_of(self.card)
        if "level_certainty" not in self.rows.columns:
            missing["level_certainty"] = float("nan")
        if missing:
            self.rows = self.rows.assign(**missing)

    @property
    def vintage(self) -> str:
        return str(self.card["vintage"])

    @property
    def synthetic(self) -> bool:
        return bool(self.card.get("synthetic", False))

    @property
    def kind(self) -> str:
        return self.card.get("kind", "modelled")

    @property
    def year(self) -> int:
        return int(self.card.get("year") or 0)

    @property
    def national_rate(self) -> float | None:
        rate = self.card.get("national_rate")
        return None if rate is None else float(rate["estimate"])

    def level_counts(self) -> dict[str, int]:
        counts = self.rows["level"].value_counts()
        return {level: int(counts.get(level, 0)) for level in LEVELS}
