"""Model specifications: which covariates a model uses, their policy domains and labels.

A spec is a TOML file (``models/mirti.toml`` is the default). Loading validates it; an
unknown domain, a duplicate covariate or a missing field raises :class:`InputError`.

A covariate may declare its valid values, which the record readers enforce
(:func:`riskmap.ingest.records.read_records`): ``values = [0, 1]`` for an indicator,
``min``/``max`` for a range (``min = 5``, ``max = 17`` for age; ``min = 0`` for a count).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError
from .fileio import read_toml
from .paths import DEFAULT_SPEC

KINDS = ("record", "territorial")
_REQUIRED = ("name", "kind", "domain", "label_es", "label_en", "definition_es", "definition_en")


@dataclass(frozen=True)
class Covariate:
    """One covariate of a model spec.

    ``min``, ``max`` (inclusive) and ``values`` (the only values allowed, e.g. ``(0.0, 1.0)``
    for an indicator) are the valid range the readers enforce; ``None`` means unrestricted.
    """

    name: str
    kind: str
    domain: str
    label_es: str
    label_en: str
    definition_es: str
    definition_en: str
    min: float | None = None
    max: float | None = None
    values: tuple[float, ...] | None = None

    def label(self, lang: str = "es") -> str:
        return self.label_en if lang == "en" else self.label_es

    def valid_text(self) -> str:
        """The valid values in words ("0 or 1", "from 5 to 17", "at least 0"), or ""."""
        def num(x):
            return f"{x:g}"

        if self.values is not None:
            shown = [num(v) for v in self.values]
            return (", ".join(shown[:-1]) + " or " + shown[-1]) if len(shown) > 1 else shown[0]
        if self.min is not None and self.max is not None:
            return f"from {num(self.min)} to {num(self.max)}"
        if self.min is not None:
            return f"at least {num(self.min)}"
        if self.max is not None:
            return f"at most {num(self.max)}"
        return ""


@dataclass(frozen=True)
class ModelSpec:
    """A validated model specification.

    Attributes
    ----------
    name : str
    covariates : tuple of Covariate
        In model order (the intercept is added by the estimator, not listed here).
    domains : dict
        Domain key -> {"es": label, "en": label}.
    source : str
        The file it came from (for the model card).
    """

    name: str
    covariates: tuple[Covariate, ...]
    domains: dict = field(default_factory=dict)
    description_es: str = ""
    description_en: str = ""
    source: str = ""

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.covariates]

    @property
    def record_names(self) -> list[str]:
        return [c.name for c in self.covariates if c.kind == "record"]

    @property
    def territorial_names(self) -> list[str]:
        return [c.name for c in self.covariates if c.kind == "territorial"]

    def covariate(self, name: str) -> Covariate:
        for c in self.covariates:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "description_es": self.description_es,
            "description_en": self.description_en,
            "domains": self.domains,
            "covariates": [{k: (list(v) if isinstance(v, tuple) else v)
                            for k, v in c.__dict__.items() if v is not None}
                           for c in self.covariates],
        }

    @classmethod
    def from_dict(cls, data: dict, source: str = "") -> "ModelSpec":
        return _build(data, source or "<dict>")


def load_spec(path: str | Path | None = None) -> ModelSpec:
    """Read and validate a model spec TOML file (default ``models/mirti.toml``).

    Raises
    ------
    InputError
        If the file is missing, is not TOML, or a covariate is ill-formed.
    """
    path = Path(path) if path is not None else DEFAULT_SPEC
    return _build(read_toml(path, "model spec file"), str(path))


def _build(data: dict, source: str) -> ModelSpec:
    domains = data.get("domains") or {}
    raw = data.get("covariates")
    if not raw:
        raise InputError("the spec lists no [[covariates]]", file=source)
    covs, seen = [], set()
    for i, item in enumerate(raw, start=1):
        missing = [k for k in _REQUIRED if k not in item]
        if missing:
            raise InputError(f"covariate {i} lacks {', '.join(missing)}", file=source)
        if item["kind"] not in KINDS:
            raise InputError(f"covariate {item['name']!r}: kind must be one of {', '.join(KINDS)}",
                             file=source)
        if domains and item["domain"] not in domains:
            raise InputError(f"covariate {item['name']!r}: unknown domain {item['domain']!r}; "
                             f"known: {', '.join(domains)}", file=source)
        if item["name"] in seen:
            raise InputError(f"covariate {item['name']!r} is listed twice", file=source)
        seen.add(item["name"])
        covs.append(Covariate(**{k: str(item[k]) for k in _REQUIRED},
                              **_valid_range(item, source)))
    return ModelSpec(name=str(data.get("name", Path(source).stem)), covariates=tuple(covs),
                     domains=domains, description_es=data.get("description_es", ""),
                     description_en=data.get("description_en", ""), source=source)


def _valid_range(item: dict, source: str) -> dict:
    """``min``, ``max`` and ``values`` of a spec covariate, checked to be numbers."""
    out = {}
    where = f"covariate {item['name']!r}"

    def number(value, key):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise InputError(f"{where}: {key} must be a number, not {value!r}", file=source)
        return float(value)

    for key in ("min", "max"):
        if key in item:
            out[key] = number(item[key], key)
    if "values" in item:
        values = item["values"]
        if not isinstance(values, list) or not values:
            raise InputError(f"{where}: values must be a list of numbers", file=source)
        out["values"] = tuple(number(v, "values") for v in values)
    if "min" in out and "max" in out and out["min"] > out["max"]:
        raise InputError(f"{where}: min {out['min']:g} is above max {out['max']:g}", file=source)
    return out
