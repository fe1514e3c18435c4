"""Model specifications: which covariates a model uses, their policy domains and labels.

A spec is a TOML file (``models/mirti.toml`` is the default). Loading validates it; an
unknown domain, a duplicate covariate or a missing field raises :class:`InputError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError
from .fileio import read_toml
from .paths import DEFAULT_SPEC

KINDS = ("record", "territorial")
_REQUIRED = ("name", "kind", "domain", "label_es", "label_en", "definition_es", "definition_en")


@dataclass(frozen=True)
class Covariate:
    name: str
    kind: str
    domain: str
    label_es: str
    label_en: str
    definition_es: str
    definition_en: str

    def label(self, lang: str = "es") -> str:
        return self.label_en if lang == "en" else self.label_es


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

    def domain_of(self, name: str) -> str:
        return self.covariate(name).domain

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "description_es": self.description_es,
            "description_en": self.description_en,
            "domains": self.domains,
            "covariates": [c.__dict__.copy() for c in self.covariates],
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
        covs.append(Covariate(**{k: str(item[k]) for k in _REQUIRED}))
    return ModelSpec(name=str(data.get("name", Path(source).stem)), covariates=tuple(covs),
                     domains=domains, description_es=data.get("description_es", ""),
                     description_en=data.get("description_en", ""), source=source)
