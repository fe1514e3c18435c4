"""Level rules: the registry, level certainty and re-classification (docs/METHOD.md section 4).

A *level rule* is a named, documented function of an edition's municipal results, taken from
a registry keyed by a normalised name (in the style of mapclassify's ``classify``):

``mirti`` (default)
    bajo if P <= r (the national survey rate); alto if P > mu + sigma (unweighted mean and
    standard deviation of P over municipalities with information); medio otherwise.
    Inferred from the legends of the 2018 MIRTI state fact sheets, not published.
``significance``
    alto if the 95 % interval lies above r, bajo if below, medio otherwise.
``cortes:A,B``
    bajo if 100 P <= A, alto if 100 P > B, medio otherwise (a published legend, in percent).

Municipalities without census records or with fewer than ``min_records`` are
``sin_informacion`` under every rule. :func:`level_certainty` is the probability that a
municipality's true P lies in the band of its level. Everything here is also reachable as
``riskmap.model.levels.<name>``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.special import ndtr

from ..errors import BadParameter, InputError
from .levels import NO_INFO, normalise_key
from .score import Z95, logit_interval

#: The rule of every new edition unless another is asked for.
DEFAULT_RULE = "mirti"
#: Levels whose certainty is below this are flagged uncertain (docs/METHOD.md section 4).
UNCERTAIN_BELOW = 0.8
#: ``level_rule`` of imported editions: their levels are kept as published.
PUBLISHED = "publicado"


def _pct(value, lang: str) -> str:
    """A proportion as a percentage for rule texts ("13.1 %" in Spanish, "13.1%" in English)."""
    if value is None or not math.isfinite(value):
        return "–"
    text = f"{100 * value:.1f}"
    return f"{text} %" if lang == "es" else f"{text}%"


def _min_text(min_records: int) -> dict:
    return {"es": f"sin información: sin registros censales o con menos de {min_records}.",
            "en": f"no information: no census records or fewer than {min_records}."}


class LevelRule:
    """A level rule of the registry (see :func:`get_rule`).

    Subclasses set ``id``, ``inferred`` and ``defaults`` and implement :meth:`_cutoffs`,
    :meth:`_texts` and, when the classification is not by cut-offs on P, :meth:`_classify`.

    Attributes
    ----------
    id : str
        Registry name.
    parameters : dict
        The rule's own parameters (e.g. the two cut-offs of ``cortes`` in percent).
    inferred : bool
        True when the rule reconstructs an unpublished method (``mirti``).
    """

    id = ""
    inferred = False
    #: Columns the classification reads besides ``n_records``.
    needs: tuple = ("probability",)

    def __init__(self, **parameters):
        self.parameters = dict(parameters)

    def __repr__(self) -> str:
        return f"LevelRule({self.spec!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, LevelRule) and self.spec == other.spec

    def __hash__(self) -> int:
        return hash(self.spec)

    @property
    def spec(self) -> str:
        """The rule as written on the command line and stored in ``level_rule``."""
        return self.id

    # -- classification -----------------------------------------------------------------------
    def apply(self, scores: pd.DataFrame, reference: float,
              min_records: int = 30) -> tuple[pd.Series, dict]:
        """Classify municipalities.

        Parameters
        ----------
        scores : DataFrame
            ``probability``, ``ci_low``, ``ci_high``, ``se`` and ``n_records`` per
            municipality (as from ``score_municipalities`` or a published edition's rows).
        reference : float
            National rate r, in (0, 1).
        min_records : int, default 30
            Fewer census records than this gives ``sin_informacion``.

        Returns
        -------
        levels : Series
            Named ``level``, same index as ``scores``, values in :data:`LEVELS`.
        cutoffs : dict
            The cut-offs applied, in probability units: ``low`` (bajo if P <= low) and
            ``high`` (alto if P > high), plus what the rule derived them from.

        Raises
        ------
        InputError
            A reference rate outside (0, 1) or a missing column.
        """
        if reference is None or not np.isfinite(reference) or not 0 < reference < 1:
            raise InputError(f"the national reference rate must be in (0, 1), got {reference!r}")
        missing = [c for c in ("n_records",) + self.needs if c not in scores.columns]
        if missing:
            raise InputError("scores lack column(s) " + ", ".join(missing))
        p = _floats(scores, "probability")
        n = scores["n_records"].to_numpy(dtype=np.float64, na_value=0.0)
        informed = (n >= min_records) & self._informed(scores)
        cutoffs = self._cutoffs(p[informed], float(reference))
        level = self._classify(scores, p, cutoffs)
        level[~informed] = NO_INFO
        return pd.Series(level, index=scores.index, name="level", dtype=object), cutoffs

    def _informed(self, scores) -> np.ndarray:
        return np.isfinite(_floats(scores, "probability"))

    def _cutoffs(self, p: np.ndarray, reference: float) -> dict:
        raise NotImplementedError

    def _classify(self, scores, p: np.ndarray, cutoffs: dict) -> np.ndarray:
        level = np.full(len(p), "medio", dtype=object)
        level[p <= cutoffs["low"]] = "bajo"
        level[p > cutoffs["high"]] = "alto"
        return level

    # -- description --------------------------------------------------------------------------
    def _texts(self, cutoffs: dict, reference: float) -> dict:
        raise NotImplementedError

    def describe(self, cutoffs: dict, reference: float | None = None,
                 min_records: int = 30) -> dict:
        """The ``rule`` entry of a model card.

        Returns
        -------
        dict
            ``id``, ``spec``, ``parameters`` (the rule's own, plus ``min_records`` and the
            ``reference_value``), ``cutoffs`` (probability units, as applied), ``text``
            {es, en} with the cut-offs written out, and ``inferred``.
        """
        texts = self._texts(cutoffs, reference)
        tail = _min_text(int(min_records))
        parameters = dict(self.parameters, min_records=int(min_records), reference="national_rate")
        if reference is not None:
            parameters["reference_value"] = float(reference)
        return {"id": self.id, "spec": self.spec, "parameters": parameters,
                "cutoffs": {k: (None if v is None or not np.isfinite(v) else float(v))
                            for k, v in cutoffs.items()},
                "text": {lang: f"{texts[lang]} {tail[lang][0].upper()}{tail[lang][1:]}"
                         for lang in ("es", "en")},
                "inferred": bool(self.inferred)}


def _floats(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64,
                                                                  na_value=np.nan)


class MirtiRule(LevelRule):
    """MIRTI's rule as inferred from the 2018 state fact sheets (docs/METHOD.md section 4).

    bajo if P <= r; alto if P > mu + sigma, with mu and sigma the unweighted mean and
    standard deviation (ddof = 1) of P over municipalities with information; medio otherwise.
    If mu + sigma fell below r (never seen), the upper cut-off is r, so no municipality is
    both bajo and alto. The fact sheets' legends ("Bajo (2.6 - 7.5)" with r = 7.5 %) show one
    national pair of cut-offs whose lower one is the national rate; the 2017 counts (20.1 %
    bajo, 16.1 % alto) put the upper one where mean + 1 SD of a near-normal spread falls.
    Inferred, not published.
    """

    id = "mirti"
    inferred = True

    def _cutoffs(self, p, reference):
        mean = float(np.mean(p)) if p.size else math.nan
        sd = float(np.std(p, ddof=1)) if p.size > 1 else 0.0
        high = max(mean + sd, reference) if p.size else reference
        return {"low": reference, "high": high, "mean": mean, "sd": sd}

    def _texts(self, cutoffs, reference):
        low, high = cutoffs["low"], cutoffs["high"]
        return {
            "es": (f"Regla MIRTI (inferida de las leyendas de las fichas estatales MIRTI 2018; "
                   f"no publicada): alto si la probabilidad municipal es mayor que la media "
                   f"más una desviación estándar de las probabilidades municipales "
                   f"({_pct(high, 'es')}); bajo si es menor o igual que la tasa nacional "
                   f"({_pct(low, 'es')}); medio en otro caso."),
            "en": (f"MIRTI rule (inferred from the legends of the 2018 MIRTI state fact "
                   f"sheets; not published): high if the municipal probability exceeds the "
                   f"mean plus one standard deviation of the municipal probabilities "
                   f"({_pct(high, 'en')}); low if it is at most the national rate "
                   f"({_pct(low, 'en')}); medium otherwise."),
        }


class SignificanceRule(LevelRule):
    """alto if the 95 % interval lies entirely above r, bajo if entirely below, else medio.

    Its bands for :func:`level_certainty` are P <= r (bajo) and P > r (alto); medio ("not
    distinguishable from r") has no band of its own, so its certainty is 0.
    """

    id = "significance"
    needs = ("ci_low", "ci_high")

    def __init__(self, **parameters):
        super().__init__(confidence=0.95,
                         interval="logit-scale, delta method plus census-sample variance",
                         **parameters)

    def _informed(self, scores):
        return np.isfinite(_floats(scores, "ci_low")) & np.isfinite(_floats(scores, "ci_high"))

    def _cutoffs(self, p, reference):
        return {"low": reference, "high": reference}

    def _classify(self, scores, p, cutoffs):
        r = cutoffs["low"]
        level = np.full(len(p), "medio", dtype=object)
        level[_floats(scores, "ci_low") > r] = "alto"
        level[_floats(scores, "ci_high") < r] = "bajo"
        return level

    def _texts(self, cutoffs, reference):
        r = cutoffs["low"]
        return {
            "es": (f"Regla de significancia: alto si el intervalo de confianza al 95 % de la "
                   f"probabilidad municipal está por completo sobre la tasa nacional "
                   f"({_pct(r, 'es')}); bajo si está por completo debajo; medio si la "
                   "contiene (diferencia no significativa)."),
            "en": (f"Significance rule: high if the municipal probability's 95 % confidence "
                   f"interval lies entirely above the national rate ({_pct(r, 'en')}); low "
                   "if entirely below; medium if it contains the rate (difference not "
                   "significant)."),
        }


class CortesRule(LevelRule):
    """Fixed cut-offs in percent, to reproduce a published legend: ``cortes:A,B`` gives bajo
    if 100 P <= A, alto if 100 P > B, medio otherwise (0 <= A < B <= 100)."""

    id = "cortes"

    def __init__(self, low_pct: float, high_pct: float):
        super().__init__(low_pct=float(low_pct), high_pct=float(high_pct))

    @property
    def spec(self) -> str:
        return f"cortes:{self.parameters['low_pct']:g},{self.parameters['high_pct']:g}"

    def _cutoffs(self, p, reference):
        return {"low": self.parameters["low_pct"] / 100, "high": self.parameters["high_pct"] / 100}

    def _classify(self, scores, p, cutoffs):
        # In percent, as the legend is written (100 P <= A), rounded far below any published
        # precision so that 0.122 is 12.2 and not 12.200000000000001.
        pct = np.round(100 * p, 9)
        level = np.full(len(p), "medio", dtype=object)
        level[pct <= self.parameters["low_pct"]] = "bajo"
        level[pct > self.parameters["high_pct"]] = "alto"
        return level

    def _texts(self, cutoffs, reference):
        a, b = cutoffs["low"], cutoffs["high"]
        return {
            "es": (f"Cortes fijos ({self.spec}): bajo si la probabilidad municipal es menor o "
                   f"igual que {_pct(a, 'es')}; alto si es mayor que {_pct(b, 'es')}; medio "
                   "en otro caso."),
            "en": (f"Fixed cut-offs ({self.spec}): low if the municipal probability is at most "
                   f"{_pct(a, 'en')}; high if it exceeds {_pct(b, 'en')}; medium otherwise."),
        }


#: The registry: normalised name -> rule class.
RULES = {"mirti": MirtiRule, "significance": SignificanceRule, "cortes": CortesRule}
#: How each rule is written (the allowed values of ``--levels`` and ``regla=``).
RULE_NAMES = ("mirti", "significance", "cortes:A,B")


def get_rule(spec=None, name: str = "levels") -> LevelRule:
    """The level rule named by ``spec``.

    Parameters
    ----------
    spec : str or LevelRule, optional
        ``mirti`` (default), ``significance`` or ``cortes:A,B`` (cut-offs in percent, e.g.
        ``cortes:7.5,12.2``); case, spaces and hyphens in the name do not matter.
    name : str, default "levels"
        The option or query parameter named in error messages (``regla`` on the web).

    Returns
    -------
    LevelRule

    Raises
    ------
    BadParameter
        Unknown name (lists :data:`RULE_NAMES`), parameters given to a rule that takes none,
        cut-offs that are not two numbers in [0, 100] with A < B.
    """
    if isinstance(spec, LevelRule):
        return spec
    if spec is None or str(spec).strip() == "":
        spec = DEFAULT_RULE
    text = str(spec).strip()
    head, sep, args = text.partition(":")
    key = normalise_key(head)
    if key not in RULES:
        raise BadParameter(name, text, RULE_NAMES)
    if key != "cortes":
        if sep:
            raise BadParameter(name, text, RULE_NAMES,
                               message=f"invalid value {text!r} for '{name}': rule {key!r} "
                                       "takes no parameters")
        return RULES[key]()
    return CortesRule(*_cut_offs(text, args if sep else "", name))


def _cut_offs(text: str, args: str, name: str) -> tuple[float, float]:
    def bad(why: str):
        return BadParameter(name, text, message=f"invalid value {text!r} for '{name}': {why}; "
                            "write cortes:A,B with 0 <= A < B <= 100 in percent, e.g. "
                            "cortes:7.5,12.2")

    parts = [a.strip() for a in args.split(",")] if args.strip() else []
    if len(parts) != 2:
        raise bad("expected two cut-offs")
    try:
        low, high = (float(x) for x in parts)
    except ValueError:
        raise bad("the cut-offs must be numbers") from None
    if not (math.isfinite(low) and math.isfinite(high)) or not (0 <= low <= 100
                                                                and 0 <= high <= 100):
        raise bad("the cut-offs must lie between 0 and 100")
    if low >= high:
        raise bad("the lower cut-off must be below the upper one")
    return low, high


def level_certainty(probability, se, levels, cutoffs: dict) -> pd.Series:
    """Probability that each municipality's true P lies in the band of its level.

    The true P is taken as normal on the logit scale around logit(P) with standard error
    ``se / (P (1 - P))`` (delta method). Bands: bajo (0, low], medio (low, high], alto
    (high, 1), with ``low`` and ``high`` from the rule's cut-offs.

    Parameters
    ----------
    probability, se : array-like
        Point estimates and their standard errors (probability scale).
    levels : Series or array-like
        Levels as assigned; ``sin_informacion`` (or anything else) gives NaN.
    cutoffs : dict
        ``low`` and ``high`` in probability units (:meth:`LevelRule.apply`).

    Returns
    -------
    Series
        Named ``level_certainty``, in [0, 1] or NaN; the index of ``levels`` when it is a
        Series. A zero standard error gives 1 inside the band and 0 outside.
    """
    index = levels.index if isinstance(levels, pd.Series) else None
    lev = np.asarray(levels, dtype=object)
    p = np.asarray(pd.to_numeric(pd.Series(np.asarray(probability)), errors="coerce"),
                   dtype=np.float64)
    s = np.asarray(pd.to_numeric(pd.Series(np.asarray(se)), errors="coerce"), dtype=np.float64)
    low, high = float(cutoffs["low"]), float(cutoffs["high"])
    lower = np.select([lev == "bajo", lev == "medio", lev == "alto"], [0.0, low, high], np.nan)
    upper = np.select([lev == "bajo", lev == "medio", lev == "alto"], [low, high, 1.0], np.nan)
    out = np.full(len(lev), np.nan)
    ok = np.isfinite(p) & (p > 0) & (p < 1) & np.isfinite(s) & (s >= 0) & np.isfinite(lower)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.log(p / (1 - p))
        s_logit = s / (p * (1 - p))
        lo = np.log(lower / (1 - lower))  # -inf at 0
        hi = np.log(upper / (1 - upper))  # +inf at 1
        spread = ok & (s_logit > 0)
        out[spread] = (ndtr((hi[spread] - z[spread]) / s_logit[spread])
                       - ndtr((lo[spread] - z[spread]) / s_logit[spread]))
    exact = ok & ~(s_logit > 0)
    out[exact] = ((p[exact] > lower[exact]) & (p[exact] <= upper[exact])).astype(float)
    out = np.clip(out, 0.0, 1.0)
    return pd.Series(out, index=index, name="level_certainty")


def uncertain(certainty) -> pd.Series:
    """True where a level's certainty is below :data:`UNCERTAIN_BELOW` (NaN: False)."""
    c = pd.to_numeric(pd.Series(certainty), errors="coerce")
    return (c < UNCERTAIN_BELOW).fillna(False).astype(bool)


def level_of(probability: float, se: float, rule: dict | None, reference: float,
             z: float = Z95) -> str:
    """The level of one pooled estimate under an edition's stored rule (its card's ``rule``).

    Cut-off rules (``mirti``, ``cortes``) compare P with the edition's stored cut-offs; the
    significance rule (and a card without cut-offs) tests the logit-scale interval against
    ``reference``. Used for municipalities whose pieces are pooled in a comparison.
    """
    cutoffs = (rule or {}).get("cutoffs") or {}
    if (rule or {}).get("id") != "significance" and cutoffs.get("low") is not None \
            and cutoffs.get("high") is not None:
        return ("bajo" if probability <= cutoffs["low"] else
                "alto" if probability > cutoffs["high"] else "medio")
    low, high = logit_interval(probability, se, z)
    return "alto" if low > reference else "bajo" if high < reference else "medio"


def relevel(rows: pd.DataFrame, card: dict, spec=None,
            name: str = "levels") -> tuple[pd.Series, pd.Series, dict]:
    """Re-classify a published modelled edition under another rule, without refitting.

    Parameters
    ----------
    rows : DataFrame
        The edition's rows: ``probability``, ``se``, ``ci_low``, ``ci_high``, ``n_records``.
    card : dict
        Its model card: the national rate and the ``min_records`` the edition used.
    spec : str or LevelRule, optional
        The rule (default ``mirti``).
    name : str
        Parameter named in error messages.

    Returns
    -------
    levels : Series
    certainty : Series
        :func:`level_certainty` under the new rule.
    rule : dict
        The card's new ``rule`` entry (:meth:`LevelRule.describe`).

    Raises
    ------
    BadParameter
        Unknown or malformed rule.
    InputError
        An imported edition (its published levels are kept), or rows or card lacking
        what the rules need.
    """
    rule = get_rule(spec, name)
    edition = card.get("edition", "?")
    if card.get("kind") == "imported":
        raise InputError(f"edition {edition} is imported: its levels are kept as published "
                         "(no probabilities with standard errors to re-classify)")
    missing = [c for c in ("probability", "se", "ci_low", "ci_high", "n_records")
               if c not in rows.columns]
    if missing:
        raise InputError(f"edition {edition} lacks column(s) " + ", ".join(missing))
    rate = (card.get("national_rate") or {}).get("estimate")
    if rate is None:
        raise InputError(f"edition {edition}: the model card has no national rate")
    stored = card.get("rule") or {}
    min_records = (stored.get("parameters") or {}).get("min_records",
                                                      stored.get("min_records", 30))
    levels, cutoffs = rule.apply(rows, float(rate), int(min_records))
    certainty = level_certainty(rows["probability"], rows["se"], levels, cutoffs)
    return levels, certainty, rule.describe(cutoffs, float(rate), int(min_records))


__all__ = ["DEFAULT_RULE", "PUBLISHED", "RULES", "RULE_NAMES", "UNCERTAIN_BELOW",
           "CortesRule", "LevelRule", "MirtiRule", "SignificanceRule", "get_rule",
           "level_certainty", "level_of", "relevel", "uncertain"]
