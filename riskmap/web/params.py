"""Validation of query parameters shared by pages and the API.

Each helper takes the raw string (``None`` when absent) and returns a clean value or raises
:class:`~riskmap.errors.BadParameter`, whose message and ``errors`` list the allowed values,
so that every route answers a bad parameter with the same 400 shape. Values match the allowed
ones ignoring case and accents (:mod:`riskmap.choices`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from ..publish.edition import LEVELS, ROW_COLUMNS
from ..choices import match_choice, match_state
from ..errors import BadParameter

#: Map layers of the national and state maps, in menu order (query parameter ``capa``).
LAYERS = ("nivel", "probabilidad", "esperados", "incertidumbre", "certeza")
#: Targeting criteria: rank by expected children in child labour or by probability.
CRITERIA = ("conteo", "tasa")
#: Formats of the municipality listing and of the comparison.
LIST_FORMATS = ("json", "geojson", "csv")
#: Columns of the API's municipality listings (the edition output row + uncertainty detail);
#: the API writes them and the OpenAPI document describes them.
LIST_COLUMNS = list(ROW_COLUMNS) + ["se", "n_records", "vintage"]


def _blank(value) -> bool:
    return value is None or str(value).strip() == ""


def choice(name: str, value, allowed: Sequence[str], default=None):
    """Return ``value`` if it is one of ``allowed`` (``default`` when absent).

    Raises
    ------
    BadParameter
        If the value is present and not allowed, or absent with no default.
    """
    if _blank(value):
        if default is None:
            raise BadParameter(name, value, allowed, message=f"missing parameter '{name}'")
        return default
    return match_choice(name, value, allowed)


def choices(name: str, values, allowed: Sequence[str]) -> list[str]:
    """Parse a multi-valued parameter (repeated and/or comma-separated) into a checked list.

    ``values`` is a string, an iterable of strings, or ``None``; the result keeps the order of
    first appearance and is empty when nothing was given (meaning "no restriction").
    """
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for raw in values:
        for item in str(raw).split(","):
            item = item.strip()
            if not item:
                continue
            item = match_choice(name, item, allowed)
            if item not in out:
                out.append(item)
    return out


def edition(value, allowed: Sequence[str], default: str | None = None) -> str:
    """A published edition name (``default``, usually the latest, when absent)."""
    return choice("edicion", value, list(allowed), default)


def estado(value, allowed: Iterable[str] | Mapping[str, str]) -> str | None:
    """A 2-digit state code among ``allowed`` or ``None`` when absent.

    ``"7"`` means ``"07"``; with ``allowed`` a mapping ``{code: name}`` the value may also be
    the state's name, in any case and with or without accents (``chiapas``, ``Mexico``).
    """
    if _blank(value):
        return None
    states = dict(allowed) if isinstance(allowed, Mapping) else {c: "" for c in allowed}
    return match_state("estado", value, states)


def nivel(value) -> str | None:
    """A risk level (``alto``, ``medio``, ``bajo``, ``sin_informacion``) or ``None``."""
    if _blank(value):
        return None
    return choice("nivel", value, LEVELS)


def layer(value, default: str = "nivel") -> str:
    """A map layer among :data:`LAYERS`."""
    return choice("capa", value, LAYERS, default)


def integer(name: str, value, *, minimum: int, maximum: int, default: int | None = None) -> int:
    """An integer in ``[minimum, maximum]``; ``default`` when absent."""
    if _blank(value):
        if default is None:
            raise BadParameter(name, value, message=f"missing parameter '{name}': "
                               f"an integer from {minimum} to {maximum}")
        return default
    try:
        number = int(str(value).strip())
    except ValueError:
        number = None
    if number is None or not minimum <= number <= maximum:
        raise BadParameter(name, value, message=f"invalid value {str(value)!r} for '{name}': "
                           f"expected an integer from {minimum} to {maximum}")
    return number


def number(name: str, value, *, minimum: float, maximum: float, default: float | None = None,
           open_low: bool = False) -> float:
    """A finite real number in ``[minimum, maximum]`` (``(minimum, maximum]`` if ``open_low``)."""
    if _blank(value):
        if default is None:
            raise BadParameter(name, value, message=f"missing parameter '{name}'")
        return default
    try:
        x = float(str(value).strip())
    except ValueError:
        x = math.nan
    low_ok = x > minimum if open_low else x >= minimum
    if not (math.isfinite(x) and low_ok and x <= maximum):
        bracket = "(" if open_low else "["
        raise BadParameter(name, value, message=f"invalid value {str(value)!r} for '{name}': "
                           f"expected a number in {bracket}{minimum}, {maximum}]")
    return x


def comparison_pair(a, b, names: Sequence[str]) -> tuple[str, str]:
    """The two editions of a comparison (``a`` first, ``b`` final), page and API alike.

    Both absent: the second latest and the latest edition. ``b`` alone: ``a`` is the edition
    before it. ``a`` alone: ``b`` is the latest edition; when ``a`` is itself the latest
    there is nothing newer to compare it with, and rather than compare it silently with
    itself the request is refused (400 naming the editions ``b`` can take).

    Raises
    ------
    BadParameter
        Unknown edition, or a missing partner as above (also when only one edition exists).
    """
    names = list(names)
    a_given, b_given = not _blank(a), not _blank(b)
    if a_given:
        a = choice("a", a, names)
    if b_given:
        b = choice("b", b, names)
    if not a_given and not b_given:
        if len(names) < 2:
            raise BadParameter("b", b, names, message="a comparison needs two published "
                               "editions; published: " + (", ".join(names) or "none"))
        return names[-2], names[-1]
    others = [n for n in names if n != (a if a_given else b)]
    if a_given and not b_given:
        if a == names[-1]:
            raise BadParameter("b", b, others, message=f"missing parameter 'b': {a} is the "
                               "latest edition; give the edition to compare it with")
        return a, names[-1]
    if b_given and not a_given:
        if b == names[0]:
            raise BadParameter("a", a, others, message=f"missing parameter 'a': {b} is the "
                               "oldest edition; give the edition to compare it with")
        return names[names.index(b) - 1], b
    return a, b


def rule(value) -> str:
    """A level rule (query parameter ``regla``): ``mirti`` when absent, ``significance`` or
    ``cortes:A,B``; returned as its normalised spec."""
    from ..model.rules import get_rule

    return get_rule(None if _blank(value) else str(value), "regla").spec


# -- targeting: one parser for the page, its downloads and the API ---------------------------
#: Limits and defaults of the targeting parameters (page, CSV/XLSX and API alike).
MAX_VISITS = 100_000
DEFAULT_VISITS = 2000
DEFAULT_COOLDOWN = 180
MAX_COOLDOWN = 3650
#: Levels a national plan targets when the request names none and is not a submitted form.
DEFAULT_LEVELS = ("alto", "medio")


def targeting(args, editions: Sequence[str], default_edition: str | None, states_of) -> dict:
    """Validated targeting parameters from a request's query ``args`` (a werkzeug MultiDict).

    Parameters
    ----------
    args : MultiDict
        ``edicion``, ``visitas`` (1–100,000, default 2,000), ``criterio`` (conteo|tasa),
        ``estados`` and ``niveles`` (repeated or comma-separated), ``enfriamiento`` (cool-down
        in days, 0–3,650, default 180), ``recientes`` (1 = keep recently visited
        municipalities) and ``enviado`` (1 = a submitted form: no level ticked means all).
    editions : sequence of str
    default_edition : str or None
    states_of : callable
        ``states_of(edition)`` returns the state codes of that edition.

    Returns
    -------
    dict
        ``edicion, visitas, criterio, estados, niveles, enfriamiento, recientes``.
    """
    edicion = edition(args.get("edicion"), editions, default_edition)
    visitas = integer("visitas", args.get("visitas"), minimum=1, maximum=MAX_VISITS,
                      default=DEFAULT_VISITS)
    criterio = choice("criterio", args.get("criterio"), CRITERIA, "conteo")
    estados = choices("estados", args.getlist("estados"), sorted(states_of(edicion)))
    niveles = choices("niveles", args.getlist("niveles"), LEVELS)
    if not niveles and not args.get("enviado"):
        niveles = list(DEFAULT_LEVELS)
    enfriamiento = integer("enfriamiento", args.get("enfriamiento"), minimum=0,
                           maximum=MAX_COOLDOWN, default=DEFAULT_COOLDOWN)
    recientes = choice("recientes", args.get("recientes"), ("0", "1"), "0") == "1"
    return {"edicion": edicion, "visitas": visitas, "criterio": criterio, "estados": estados,
            "niveles": niveles, "enfriamiento": enfriamiento, "recientes": recientes}


def targeting_query_string(query: Mapping) -> str:
    """The normalised query string of validated targeting values (:func:`targeting`'s result):
    fixed key order, lists repeated and sorted, ``enviado=1`` so that an empty level list stays
    empty. Two requests for the same plan give the same string (the plan's permalink)."""
    from urllib.parse import urlencode

    pairs = [("edicion", query["edicion"]), ("visitas", int(query["visitas"])),
             ("criterio", query["criterio"])]
    pairs += [("estados", s) for s in sorted(query["estados"])]
    pairs += [("niveles", n) for n in sorted(query["niveles"])]
    pairs += [("enfriamiento", int(query["enfriamiento"])),
              ("recientes", int(bool(query["recientes"]))), ("enviado", 1)]
    return urlencode(pairs)
