"""Imported editions: a published list of municipal risk levels (e.g. MIRTI 2017 or 2023 as
published by STPS/ILO) turned into an :class:`~riskmap.publish.edition.Edition`.

The list is a CSV (any separator, UTF-8 or latin-1) or an .xlsx sheet with ``cvegeo`` (or
``cve_ent`` + ``cve_mun``) and ``level`` (or ``nivel``), optionally ``probability``,
``ci_low``, ``ci_high``. Levels are accepted in the published
spellings ("Alto", "ALTO", "Medio", "No significativo" = medio, "Bajo", "Sin información").
The edition carries no model: card ``kind = "imported"``, no coefficients, no factors.
Every municipality of the boundaries appears; codes absent from the list are
``sin_informacion``; codes in the list but not in the boundaries are an error.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from datetime import datetime, timezone
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from ..publish.edition import EXTRA_COLUMNS, LEVELS, ROW_COLUMNS, Edition
from ..errors import InputError
from ..model.rules import PUBLISHED
from ..fileio import pad_code, read_csv_text
from ..publish.store import check_name

#: Normalised spelling -> level. Keys are lower case, without accents, single spaces.
LEVEL_SPELLINGS = {
    "alto": "alto", "alta": "alto", "high": "alto",
    "medio": "medio", "media": "medio", "medium": "medio", "no significativo": "medio",
    "no significativa": "medio", "not significant": "medio",
    "bajo": "bajo", "baja": "bajo", "low": "bajo",
    "sin informacion": "sin_informacion", "sin_informacion": "sin_informacion",
    "sin dato": "sin_informacion", "sin datos": "sin_informacion", "nd": "sin_informacion",
    "n/d": "sin_informacion", "no data": "sin_informacion", "": "sin_informacion",
}
_LEVEL_COLUMNS = ("level", "nivel", "nivel_riesgo", "riesgo", "categoria")
_PROB_COLUMNS = {"probability": ("probability", "probabilidad", "p"),
                 "ci_low": ("ci_low", "li", "lim_inf", "limite_inferior"),
                 "ci_high": ("ci_high", "ls", "lim_sup", "limite_superior")}


def normalise_level(value) -> str | None:
    """Return the riskmap level of a published spelling, or None when unknown."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "sin_informacion"
    text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode()
    text = re.sub(r"[\s_]+", " ", text.strip().lower())
    return LEVEL_SPELLINGS.get(text) or LEVEL_SPELLINGS.get(text.replace(" ", "_"))


def read_levels(path) -> pd.DataFrame:
    """Read and validate a published list of levels.

    Returns
    -------
    pandas.DataFrame
        ``cvegeo, level`` and, when given, ``probability, ci_low, ci_high`` (floats in 0-1).

    Raises
    ------
    InputError
        Missing columns, malformed or duplicated codes, unknown level spellings, probabilities
        outside [0, 1] (or [0, 100] for percentages).

    Warns
    -----
    UserWarning
        Codes zero-padded; probabilities read as percentages.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", file=path)
    raw = _read_table(path)
    cols = {c.strip().lower(): c for c in raw.columns}
    if "cvegeo" in cols:
        codes, padded = pad_code(raw[cols["cvegeo"]], 5, cols["cvegeo"], path)
    elif "cve_ent" in cols and "cve_mun" in cols:
        ent, p1 = pad_code(raw[cols["cve_ent"]], 2, cols["cve_ent"], path)
        mun, p2 = pad_code(raw[cols["cve_mun"]], 3, cols["cve_mun"], path)
        codes, padded = ent + mun, p1 or p2
    else:
        raise InputError("expected a cvegeo column (or cve_ent and cve_mun); found "
                         + ", ".join(raw.columns), file=path)
    if padded:
        warnings.warn(f"{path.name}: municipal codes had lost their leading zeros; "
                      "zero-padded them", stacklevel=2)
    level_col = next((cols[c] for c in _LEVEL_COLUMNS if c in cols), None)
    if level_col is None:
        raise InputError("expected a level column (level or nivel); found "
                         + ", ".join(raw.columns), file=path)
    levels = raw[level_col].map(normalise_level)
    bad = levels.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"unknown level {raw[level_col].iloc[row]!r}; allowed: alto, medio "
                         "(or 'no significativo'), bajo, sin información (any case)",
                         file=path, column=level_col, row=row + 2)
    out = pd.DataFrame({"cvegeo": codes, "level": levels})
    dup = out["cvegeo"][out["cvegeo"].duplicated()].unique()
    if len(dup):
        raise InputError("code(s) listed more than once: " + ", ".join(dup[:10]), file=path)
    for target, names in _PROB_COLUMNS.items():
        src = next((cols[c] for c in names if c in cols), None)
        if src is None:
            continue
        text = raw[src].str.strip().str.replace(",", ".", regex=False).str.rstrip("%")
        values = pd.to_numeric(text.replace("", np.nan), errors="coerce")
        bad = values.isna() & text.ne("")
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"expected a number, found {raw[src].iloc[row]!r}", file=path,
                             column=src, row=row + 2)
        out[target] = values.astype(float)
    prob_cols = [c for c in _PROB_COLUMNS if c in out.columns]
    if prob_cols:
        top = out[prob_cols].max().max()
        if top > 1:
            if top > 100:
                raise InputError("probabilities must be in [0, 1] or percentages in [0, 100]",
                                 file=path)
            warnings.warn(f"{path.name}: probabilities read as percentages (max {top:g})",
                          stacklevel=2)
            out[prob_cols] = out[prob_cols] / 100
        if (out[prob_cols] < 0).any().any():
            raise InputError("negative probability", file=path)
    return out


def import_edition(name: str, levels: pd.DataFrame, boundaries: gpd.GeoDataFrame, *,
                   vintage: str, year=None, sources=None, national_rate=None,
                   file="levels") -> Edition:
    """Build an imported :class:`Edition` from a list of levels.

    Parameters
    ----------
    name : str
    levels : pandas.DataFrame
        Output of :func:`read_levels`.
    boundaries : geopandas.GeoDataFrame
        Normalised boundaries of the list's vintage.
    vintage : str
    year : int, optional
        Defaults to the first 4-digit number in ``name``.
    sources : list, optional
    national_rate : float, optional
        The published national reference rate, when known.
    file : str
        For error messages.

    Raises
    ------
    InputError
        Codes of the list absent from the boundaries (listed by name).
    """
    name = check_name(name)
    vintage = check_name(vintage, "vintage")
    codes = boundaries["cvegeo"].astype(str)
    unknown = sorted(set(levels["cvegeo"]) - set(codes))
    if unknown:
        raise InputError(f"{len(unknown)} code(s) of the list are not in the {vintage} "
                         "boundaries: " + ", ".join(unknown[:15]), file=file,
                         errors=unknown)
    if year is None:
        match = re.search(r"(19|20)\d\d", name)
        year = int(match.group(0)) if match else None
    lv = levels.set_index("cvegeo").reindex(codes)
    level = lv["level"].fillna("sin_informacion")

    def published(column):  # positional values (lv is indexed by code, rows by position)
        return lv[column].to_numpy(dtype=float) if column in lv.columns else np.nan

    rows = pd.DataFrame({
        "edition": name,
        "cvegeo": codes.to_numpy(),
        "cve_ent": boundaries["cve_ent"].astype(str).to_numpy(),
        "nom_ent": boundaries["nom_ent"].astype(str).to_numpy(),
        "nom_mun": boundaries["nom_mun"].astype(str).to_numpy(),
        "children": np.nan,
        "probability": published("probability"),
        "ci_low": published("ci_low"),
        "ci_high": published("ci_high"),
        "level": level.to_numpy(),
        "level_rule": PUBLISHED,  # kept as published, never re-classified
        "level_certainty": np.nan,
        "expected_child_labour": np.nan,
        "top_factors": "",
        "cve_mun": boundaries["cve_mun"].astype(str).to_numpy(),
        "vintage": vintage,
        "se": np.nan, "var_model": np.nan, "var_census": np.nan,
        "n_records": 0,
    }, index=codes.index)
    ranked = rows[["probability", "level", "cve_ent"]]
    prob_ok = ranked["probability"].where(ranked["level"] != "sin_informacion")
    rows["rank_national"] = prob_ok.rank(ascending=False, method="min").astype("Int64")
    rows["rank_state"] = prob_ok.groupby(ranked["cve_ent"]).rank(
        ascending=False, method="min").astype("Int64")
    rows = gpd.GeoDataFrame(rows[list(ROW_COLUMNS + EXTRA_COLUMNS)].reset_index(drop=True),
                            geometry=boundaries.geometry.to_numpy(), crs=boundaries.crs)
    counts = rows["level"].value_counts()
    rate = None if national_rate is None else {"estimate": float(national_rate),
                                               "se": None, "ci_low": None, "ci_high": None}
    card = {
        "edition": name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "year": year,
        "kind": "imported",
        "vintage": vintage,
        "synthetic": False,
        "sources": list(sources or [str(file)]),
        "national_rate": rate,
        "coefficients": [],
        "covariance": [],
        "rule": {"id": PUBLISHED, "spec": PUBLISHED, "name": "imported",
                 "text": {"es": "Niveles tal como fueron publicados (edición importada); "
                                "riskmap no los recalcula.",
                          "en": "Levels as published (imported edition); riskmap does not "
                                "recompute them."}},
        "level_counts": {lev: int(counts.get(lev, 0)) for lev in LEVELS},
        "n_listed": int(len(levels)),
        "n_absent": int(len(codes) - levels["cvegeo"].isin(set(codes)).sum()),
    }
    from ..provenance import attribution

    card["attribution"] = {"es": attribution(card, "es"), "en": attribution(card, "en")}
    return Edition(name=name, rows=rows, factors=pd.DataFrame(), card=card)


def _read_table(path: Path) -> pd.DataFrame:
    """The list as text columns: CSV (any separator, UTF-8 or latin-1) or an Excel sheet."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        try:
            return pd.read_excel(path, dtype=str, keep_default_na=False).fillna("")
        except Exception as exc:  # openpyxl raises several error types for bad workbooks
            raise InputError(f"cannot read the workbook ({exc})", file=path) from None
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if b"\0" in head:
        raise InputError("not a text file: expected a CSV (or .xlsx) with columns cvegeo and "
                         "level", file=path)
    try:
        return read_csv_text(path, keep_default_na=False, sep=None, engine="python")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise InputError(f"cannot read the list ({exc})", file=path) from None
