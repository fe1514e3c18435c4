"""Fictional Spanish-sounding names for the demo country's states and municipalities.

Names carry accents on purpose ("San José", "Tlacotlán") so that accent-insensitive search is
exercised by the demo. They are invented: any resemblance to a real place is a coincidence of
the syllables, and the demo never claims otherwise.
"""

from __future__ import annotations

import unicodedata

import numpy as np

#: 32 invented state names (INEGI numbers states alphabetically; so does the demo).
STATE_NAMES = (
    "Altamira", "Arenales", "Bahía Dorada", "Barranca Honda", "Cañadas", "Cerro Azul",
    "Costa Esmeralda", "Cuautepec", "Huasteca Norte", "Itzamná", "Laguna Grande",
    "Llanos de Orión", "Mesa Central", "Mixtlán", "Montenegro", "Nueva Castilla",
    "Nueva Galicia del Sur", "Ocotepec", "Palmares", "Petatlán", "Río Bravo Alto",
    "San Cristóbal", "Santa Lucía", "Sierra Madre", "Soconusco Alto", "Tamaulán",
    "Tierra Blanca", "Tlacoyán", "Valle de Anáhuac", "Valle Verde", "Xalcotán", "Zapotal",
)

_SAINTS = (
    "San José", "San Juan", "San Pedro", "San Miguel", "San Andrés", "San Martín",
    "San Francisco", "San Bartolomé", "San Mateo", "San Lucas", "San Sebastián", "San Simón",
    "San Agustín", "San Jerónimo", "San Ildefonso", "San Nicolás", "San Pablo", "San Tomás",
    "Santa María", "Santa Ana", "Santa Cruz", "Santa Inés", "Santa Catarina", "Santa Lucía",
    "Santa Mónica", "Santa Bárbara", "Santo Domingo", "Santiago", "Santo Tomás",
)
_ONSET = ("Tla", "Te", "Ix", "Cha", "Hua", "Xo", "Co", "Ma", "Ozu", "A", "Zi", "Ca", "Te",
          "Mi", "Ya", "Po", "To", "Tzi", "Cuau", "Ji", "Ta", "Ocu", "Nau", "Ato")
_MIDDLE = ("co", "pe", "ma", "hui", "tla", "lo", "xi", "ca", "mal", "cal", "nan", "zon", "pil",
           "to", "ya", "ho", "tzo", "mi", "qui", "ta")
_CODA = ("tlán", "pan", "tepec", "co", "huacán", "tzingo", "apan", "titlán", "nápam", "lán",
         "cuaro", "hualco", "tla", "cán", "zingo", "mulco", "potla", "tengo", "quila", "rámbaro")
_NATURE = (
    "Valle de los Álamos", "Río Frío", "Ojo de Agua", "Piedras Negras", "Los Encinos",
    "Las Ánimas", "Cerro Gordo", "La Ciénega", "Agua Blanca", "El Mezquital", "Los Pinos",
    "Tierra Colorada", "Loma Bonita", "Peñasco", "Las Palomas", "El Nogal", "Arroyo Seco",
    "Puerto Escondido", "La Cañada", "El Sabinal", "Los Reyes", "Buenavista", "Tres Valles",
    "Laguna Seca", "Huertas Viejas", "Mina de Plata", "El Limón", "Palo Alto", "Ciénaga Larga",
)
_PREFIX = ("Villa de", "Real de", "Ciudad", "Villa", "Heroica", "Valle de", "Mineral de",
           "Puerto", "Nuevo", "Villa Hidalgo de")


def _native(rng: np.random.Generator) -> str:
    """An invented Nahuatl-flavoured word such as 'Tlacotepec' or 'Ixmalhuacán'."""
    word = rng.choice(_ONSET)
    for _ in range(int(rng.integers(0, 3))):
        word += rng.choice(_MIDDLE)
    return word + rng.choice(_CODA)


def municipality_name(rng: np.random.Generator) -> str:
    """Draw one plausible fictional municipality name."""
    kind = rng.random()
    if kind < 0.30:
        return f"{rng.choice(_SAINTS)} {_native(rng)}"
    if kind < 0.60:
        return _native(rng)
    if kind < 0.75:
        return f"{rng.choice(_PREFIX)} {_native(rng)}"
    if kind < 0.88:
        return str(rng.choice(_NATURE))
    return f"{rng.choice(_SAINTS)} de {rng.choice(_NATURE)}"


def municipality_names(rng: np.random.Generator, n: int, taken=()) -> list[str]:
    """``n`` distinct names, none of them in ``taken`` (names are unique within a state).

    Parameters
    ----------
    rng : numpy.random.Generator
    n : int
    taken : iterable of str, optional
        Names already used in the state.
    """
    used = set(taken)
    names: list[str] = []
    attempts = 0
    while len(names) < n:
        name = municipality_name(rng)
        attempts += 1
        if attempts > 50 * (n + 10):
            # Astronomically unlikely, but never loop forever: number the duplicate.
            name = f"{name} {attempts}"
        if name not in used:
            used.add(name)
            names.append(name)
    return names


def sort_key(name: str) -> str:
    """Alphabetical key ignoring case and accents ("Ávila" sorts with "Avila", before "B")."""
    folded = unicodedata.normalize("NFKD", name.casefold())
    return "".join(ch for ch in folded if not unicodedata.combining(ch))


def state_names(n: int) -> list[str]:
    """The first ``n`` fictional state names (at most 32), in alphabetical order."""
    if not 1 <= n <= len(STATE_NAMES):
        raise ValueError(f"the demo country has between 1 and {len(STATE_NAMES)} states")
    return sorted(STATE_NAMES[:n], key=sort_key)
