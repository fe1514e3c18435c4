"""Matching what people type against a closed vocabulary: levels, states, formats.

Every parameter with allowed values (web query parameters, API, command-line options) is
matched case- and accent-insensitively (``Alto``, ``ALTO`` and ``alto`` are one level;
``estado=Mexico`` is México), and a state may be given by code or by name. An unknown or
ambiguous value raises the one :class:`~riskmap.errors.BadParameter` that lists the valid
values.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

from .errors import BadParameter


def fold(text) -> str:
    """Lower-case, accent-free form of ``text`` for accent-insensitive matching."""
    decomposed = unicodedata.normalize("NFKD", str(text))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold().strip()


def _key(text) -> str:
    # "Sin información", "sin-informacion" and "sin_informacion" are one value.
    return re.sub(r"[\s_-]+", "_", fold(text))


def match_choice(name: str, value, allowed: Sequence[str]) -> str:
    """The element of ``allowed`` that ``value`` names, ignoring case, accents and separators.

    Parameters
    ----------
    name : str
        Parameter name, for the error message.
    value : str
    allowed : sequence of str

    Returns
    -------
    str
        The canonical spelling, as in ``allowed``.

    Raises
    ------
    BadParameter
        Listing ``allowed``.
    """
    text = str(value).strip()
    if text in allowed:
        return text
    hits = [a for a in allowed if _key(a) == _key(text)]
    if len(hits) != 1:
        raise BadParameter(name, value, allowed)
    return hits[0]


def match_state(name: str, value, states: Mapping[str, str]) -> str:
    """The 2-digit code of the state ``value`` names: a code (``7`` is ``07``) or a name.

    Names match ignoring case and accents (``chiapas``, ``Mexico`` for México); a name that
    is not exact may be the unique start of one (``Veracruz`` for Veracruz de Ignacio de la
    Llave).

    Parameters
    ----------
    name : str
        Parameter name, for the error message.
    value : str
    states : mapping
        ``{cve_ent: nom_ent}`` of the valid states.

    Returns
    -------
    str

    Raises
    ------
    BadParameter
        Unknown or ambiguous value; lists the valid codes with their names.
    """
    text = str(value).strip()
    if text.isdigit() and len(text) == 1:
        text = "0" + text
    if text in states:
        return text
    key = _key(text)
    hits = [c for c, n in states.items() if key and _key(n) == key]
    if not hits and key:
        hits = [c for c, n in states.items() if _key(n).startswith(key)]
    if len(hits) != 1:
        if text.isdigit():
            raise BadParameter(name, value, sorted(states))
        what = "ambiguous" if hits else "invalid"
        names = ", ".join(states[c] for c in sorted(hits or states) if states[c])
        raise BadParameter(name, value, sorted(states), message=(
            f"{what} value {str(value)!r} for '{name}': a state code or name"
            + (f" ({names})" if names else "")))
    return hits[0]
