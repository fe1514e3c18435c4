"""Imported editions: a published list of municipal risk levels (e.g. MIRTI 2017 or 2023 as
published by STPS/ILO) turned into an :class:`~riskmap.publish.edition.Edition`.

The list is a CSV (any separator, UTF-8 or latin-1) or a sheet of an .xlsx workbook with
``cvegeo`` (or ``cve_ent`` + ``cve_mun``) and ``level`` (or ``nivel``), optionally
``probability``, ``ci_low``, ``ci_high``. Levels are accepted in the published spellings
("Alto", "ALTO", "Alta", "Medio", "No significativo" = medio, "Bajo", "Sin información",
"N/D"); every value read as something other than what it says is reported
(:attr:`LevelList.reinterpreted`). Title rows above the header are skipped and trailing
footer rows (a note such as "Fuente: STPS") are ignored, both reported. Every problem of a
file is collected in one pass (:attr:`LevelList.problems`) and raised together.

The edition carries no model: card ``kind = "imported"``, rule id ``"publicado"``, no
coefficients, no factors. Every municipality of the boundaries must be listed: absent ones
are an error unless allowed (``allow_missing``), and then they are ``sin_informacion`` and
named in the card. Codes in the list but not in the boundaries are an error. The edition is
credited to the source its importer names (verbatim) and to the producer of the boundaries
(:func:`riskmap.provenance.attribution`).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from ..publish.edition import EXTRA_COLUMNS, LEVELS, ROW_COLUMNS, Edition
from ..errors import InputError
from ..model.rules import PUBLISHED
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
#: Default producer of the boundaries an imported list sits on (the Marco Geoestadístico).
INEGI_BOUNDARIES = "INEGI, Marco Geoestadístico"
#: Rows searched for the header (title rows may precede it).
HEADER_SEARCH = 30
#: Problems listed in one error message (the rest are counted).
MAX_PROBLEMS = 50
_SEPARATORS = (",", ";", "\t", "|")


def _fold(value) -> str:
    text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode()
    return re.sub(r"[\s_]+", " ", text.strip().lower())


def normalise_level(value) -> str | None:
    """Return the riskmap level of a published spelling, or None when unknown."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "sin_informacion"
    text = _fold(value)
    return LEVEL_SPELLINGS.get(text) or LEVEL_SPELLINGS.get(text.replace(" ", "_"))


@dataclass
class LevelList:
    """A published list as read, with what was done to it.

    Attributes
    ----------
    table : DataFrame
        ``cvegeo, level`` and, when given, ``probability, ci_low, ci_high`` (0-1); rows with
        problems are left out.
    problems : list of str
        Every problem found, each naming its column and row (empty when the list is clean).
    reinterpreted : list of dict
        ``{"value", "level", "rows"}``: published values read as another word ("Alta" ->
        alto, "N/D" -> sin_informacion, an empty cell -> sin_informacion), with how many rows.
    skipped : list of dict
        ``{"row", "text", "kind"}``: title rows above the header (``title``) and footer rows
        after the data (``footer``, e.g. "Fuente: STPS"), ignored.
    header_row : int
        Row of the file (1 = first) holding the column names.
    sheet : str or None
        The sheet read (workbooks).
    padded, percent : bool
        Codes had lost their leading zeros / probabilities were percentages.
    """

    table: pd.DataFrame
    problems: list = field(default_factory=list)
    reinterpreted: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    header_row: int = 1
    sheet: str | None = None
    padded: bool = False
    percent: bool = False

    def report(self) -> dict:
        """JSON-able summary (stored in the imported edition's card)."""
        return {"header_row": self.header_row, "sheet": self.sheet,
                "reinterpreted": [dict(r) for r in self.reinterpreted],
                "skipped": [dict(r) for r in self.skipped],
                "zero_padded": self.padded, "percentages": self.percent}


def raise_problems(problems: list[str], file) -> None:
    """Raise one :class:`InputError` for every problem of a file (nothing when empty).

    One problem reads as the usual one line; several as a first line counting them followed
    by one line per problem (at most :data:`MAX_PROBLEMS`).
    """
    if not problems:
        return
    if len(problems) == 1:
        raise InputError(problems[0], file=file, errors=list(problems))
    shown = problems[:MAX_PROBLEMS]
    more = len(problems) - len(shown)
    text = f"{len(problems)} problems:\n  " + "\n  ".join(shown)
    if more:
        text += f"\n  ... and {more} more"
    raise InputError(text, file=file, errors=list(problems))


def read_levels(path, sheet=None) -> pd.DataFrame:
    """Read and validate a published list of levels (:func:`read_list`), raising its problems.

    Returns
    -------
    pandas.DataFrame
        ``cvegeo, level`` and, when given, ``probability, ci_low, ci_high`` (floats in 0-1).

    Raises
    ------
    InputError
        Missing columns, and every malformed or duplicated code, unknown level spelling or
        probability outside [0, 1] (or [0, 100] for percentages), in one message.

    Warns
    -----
    UserWarning
        Codes zero-padded; probabilities read as percentages.
    """
    listing = read_list(path, sheet=sheet)
    raise_problems(listing.problems, Path(path))
    return listing.table


def read_list(path, sheet=None) -> LevelList:
    """Read a published list of levels, collecting every problem instead of stopping.

    Parameters
    ----------
    path : str or Path
        CSV (any of , ; tab | as separator; UTF-8 or latin-1) or .xlsx/.xlsm.
    sheet : str, optional
        Sheet of a workbook (name, or 1-based number); default the first sheet holding a
        header.

    Returns
    -------
    LevelList

    Raises
    ------
    InputError
        Only for what prevents reading any row: file not found or unreadable, unknown sheet,
        no header row with a code column and a level column.

    Warns
    -----
    UserWarning
        Codes zero-padded; probabilities read as percentages.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", file=path)
    grid, header, sheet_name = _read_grid(path, sheet)
    names = [str(c).strip() for c in grid[header]]
    cols = {n.lower(): i for i, n in reversed(list(enumerate(names))) if n}
    body = grid[header + 1:]
    first = header + 2  # file row of body[0]
    out = LevelList(table=pd.DataFrame(), header_row=header + 1, sheet=sheet_name)
    out.skipped = [{"row": i + 1, "text": _row_text(r), "kind": "title"}
                   for i, r in enumerate(grid[:header]) if _row_text(r)]
    width = len(names)
    frame = pd.DataFrame([list(r[:width]) + [""] * (width - len(r)) for r in body],
                         columns=range(width), dtype=object).fillna("").astype(str)
    frame = frame.apply(lambda c: c.str.strip())
    rows = pd.Series(np.arange(len(frame)) + first, index=frame.index)
    # Blank rows carry nothing; trailing rows whose code cell holds no code are a footer.
    code_cols = ([cols["cvegeo"]] if "cvegeo" in cols else [cols["cve_ent"], cols["cve_mun"]])
    blank = (frame == "").all(axis=1)
    is_code = pd.Series(True, index=frame.index)
    for c in code_cols:
        is_code &= frame[c].str.fullmatch(r"\d+(\.0)?")
    data_rows = np.flatnonzero((is_code & ~blank).to_numpy())
    last = data_rows[-1] if len(data_rows) else -1
    footer = (~blank & ~is_code) & (pd.Series(np.arange(len(frame)), index=frame.index) > last)
    out.skipped += [{"row": int(rows[i]), "text": _row_text(frame.loc[i]), "kind": "footer"}
                    for i in frame.index[footer]]
    keep = ~blank & ~footer
    frame, rows = frame[keep], rows[keep]

    problems: list[tuple[int, str]] = []
    if "cvegeo" in cols:
        codes, padded = _codes(frame[cols["cvegeo"]], 5, names[cols["cvegeo"]], rows, problems)
    else:
        ent, p1 = _codes(frame[cols["cve_ent"]], 2, names[cols["cve_ent"]], rows, problems)
        mun, p2 = _codes(frame[cols["cve_mun"]], 3, names[cols["cve_mun"]], rows, problems)
        codes, padded = ent.str.cat(mun), p1 or p2
        codes[ent.isna() | mun.isna()] = np.nan
    level_col = next(cols[c] for c in _LEVEL_COLUMNS if c in cols)
    raw_levels = frame[level_col]
    levels = raw_levels.map(normalise_level)
    for i in frame.index[levels.isna()]:
        problems.append((int(rows[i]), f"column '{names[level_col]}', row {rows[i]}: unknown "
                         f"level {raw_levels[i]!r}; allowed: alto, medio (or 'no "
                         "significativo'), bajo, sin información (any case)"))
    known = levels.notna()
    changed = known & (raw_levels.map(_fold).str.replace(" ", "_") != levels)
    for (value, level), n in (pd.DataFrame({"v": raw_levels[changed], "l": levels[changed]})
                              .value_counts(sort=False).sort_index().items()):
        out.reinterpreted.append({"value": value, "level": level, "rows": int(n)})
    table = pd.DataFrame({"cvegeo": codes, "level": levels})
    dup = table["cvegeo"].notna() & table["cvegeo"].duplicated(keep=False)
    for code, group in rows[dup].groupby(table["cvegeo"][dup], sort=True):
        problems.append((int(group.iloc[1]), f"column '{names[code_cols[0]]}', rows "
                         f"{', '.join(str(r) for r in group)}: code {code} listed more than "
                         "once"))
    valid = table["cvegeo"].notna() & known & ~dup
    for target, aliases in _PROB_COLUMNS.items():
        src = next((cols[c] for c in aliases if c in cols), None)
        if src is None:
            continue
        text = frame[src].str.replace(",", ".", regex=False).str.rstrip("%").str.strip()
        values = pd.to_numeric(text.replace("", np.nan), errors="coerce")
        for i in frame.index[values.isna() & text.ne("")]:
            problems.append((int(rows[i]), f"column '{names[src]}', row {rows[i]}: expected a "
                             f"number, found {frame.at[i, src]!r}"))
        for i in frame.index[values < 0]:
            problems.append((int(rows[i]), f"column '{names[src]}', row {rows[i]}: negative "
                             f"probability {frame.at[i, src]!r}"))
        table[target] = values.astype(float)
    prob_cols = [c for c in _PROB_COLUMNS if c in table.columns]
    if prob_cols:
        top = table.loc[valid, prob_cols].max().max()
        if top > 100:
            problems.append((0, "probabilities must be in [0, 1] or percentages in [0, 100] "
                             f"(largest: {top:g})"))
        elif top > 1:
            out.percent = True
            warnings.warn(f"{path.name}: probabilities read as percentages (max {top:g})",
                          stacklevel=2)
            table[prob_cols] = table[prob_cols] / 100
    if padded:
        out.padded = True
        warnings.warn(f"{path.name}: municipal codes had lost their leading zeros; "
                      "zero-padded them", stacklevel=2)
    out.problems = [text for _, text in sorted(problems, key=lambda t: t[0])]
    out.table = table[valid].reset_index(drop=True)
    return out


def _codes(series: pd.Series, width: int, column: str, rows: pd.Series,
           problems: list) -> tuple[pd.Series, bool]:
    """Zero-padded codes (NaN where malformed, each malformed one added to ``problems``)."""
    text = series.str.replace(r"\.0$", "", regex=True)
    bad = ~text.str.fullmatch(r"\d{1,%d}" % width)
    for i in series.index[bad]:
        problems.append((int(rows[i]), f"column '{column}', row {rows[i]}: expected a "
                         f"{width}-digit code, found {series[i]!r}"))
    out = text.str.zfill(width).where(~bad)
    return out, bool((text[~bad].str.len() < width).any())


def _row_text(row) -> str:
    """The non-empty cells of a row, joined (how a title or footer row reads)."""
    return " ".join(str(v).strip() for v in list(row) if str(v).strip())[:120]


def _header_index(grid: list[list[str]]) -> int | None:
    """Index of the first row naming a code column and a level column."""
    for i, row in enumerate(grid[:HEADER_SEARCH]):
        names = {str(v).strip().lower() for v in row}
        has_code = "cvegeo" in names or {"cve_ent", "cve_mun"} <= names
        if has_code and names & set(_LEVEL_COLUMNS):
            return i
    return None


def _no_header(grid, path, where: str = ""):
    first = next((r for r in grid if _row_text(r)), [])
    found = ", ".join(str(v) for v in first if str(v).strip()) or "nothing"
    return InputError(f"expected a cvegeo column (or cve_ent and cve_mun) and a level column "
                      f"(level or nivel) in a header row within the first {HEADER_SEARCH} "
                      f"rows{where}; found {found}", file=path)


def _read_grid(path: Path, sheet) -> tuple[list[list[str]], int, str | None]:
    """The file as rows of text cells, the header's index and the sheet read."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return _read_workbook(path, sheet)
    if sheet is not None:
        raise InputError("--sheet applies to .xlsx workbooks only", file=path)
    raw = path.read_bytes()
    if b"\0" in raw[:4096]:
        raise InputError("not a text file: expected a CSV (or .xlsx) with columns cvegeo and "
                         "level", file=path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    lines = text.splitlines()
    fallback = None
    for sep in _SEPARATORS:
        grid = [list(r) for r in csv.reader(io.StringIO("\n".join(lines)), delimiter=sep)]
        header = _header_index(grid)
        if header is not None:
            return grid, header, None
        fallback = fallback or grid
    raise _no_header(fallback or [], path)


def _read_workbook(path: Path, sheet) -> tuple[list[list[str]], int, str]:
    try:
        book = pd.read_excel(path, sheet_name=None, header=None, dtype=str,
                             keep_default_na=False)
    except Exception as exc:  # openpyxl raises several error types for bad workbooks
        raise InputError(f"cannot read the workbook ({exc})", file=path) from None
    names = list(book)
    if sheet is not None:
        chosen = str(sheet)
        if chosen not in book and chosen.isdigit() and 1 <= int(chosen) <= len(names):
            chosen = names[int(chosen) - 1]
        if chosen not in book:
            raise InputError(f"no sheet {sheet!r} in the workbook; sheets: "
                             + ", ".join(names), file=path)
        candidates = [chosen]
    else:
        candidates = names
    for name in candidates:
        grid = book[name].fillna("").astype(str).values.tolist()
        header = _header_index(grid)
        if header is not None:
            return grid, header, name
    where = f" of sheet {candidates[0]!r}" if sheet is not None else " of any sheet"
    raise _no_header(book[candidates[0]].fillna("").astype(str).values.tolist()
                     if candidates else [], path, where)


def check_codes(levels: pd.DataFrame, boundaries: gpd.GeoDataFrame, vintage: str, *,
                allow_missing: bool = False) -> tuple[list[str], list[str]]:
    """Codes of the list against the boundaries: ``(problems, missing)``.

    ``problems`` names the listed codes absent from the boundaries and, unless
    ``allow_missing``, the boundary municipalities absent from the list (each with its name);
    ``missing`` is the list of absent municipalities as ``"code name, state"`` texts.
    """
    codes = boundaries["cvegeo"].astype(str)
    names = dict(zip(codes, boundaries["nom_mun"].astype(str) + ", "
                     + boundaries["nom_ent"].astype(str)))
    problems = []
    unknown = sorted(set(levels["cvegeo"]) - set(codes))
    if unknown:
        problems.append(f"{len(unknown)} code(s) of the list are not in the {vintage} "
                        "boundaries: " + ", ".join(unknown))
    absent = [c for c in codes if c not in set(levels["cvegeo"])]
    missing = [f"{c} {names[c]}" for c in absent]
    if missing and not allow_missing:
        problems.append(f"{len(missing)} municipalit{'y' if len(missing) == 1 else 'ies'} of "
                        f"the {vintage} boundaries missing from the list (give them a level, "
                        "or accept them as sin información with --allow-missing): "
                        + "; ".join(missing))
    return problems, missing


def import_edition(name: str, levels: pd.DataFrame, boundaries: gpd.GeoDataFrame, *,
                   vintage: str, year=None, sources=None, national_rate=None,
                   file="levels", allow_missing: bool = False,
                   boundaries_source: str | None = None, report: dict | None = None
                   ) -> Edition:
    """Build an imported :class:`Edition` from a list of levels.

    Parameters
    ----------
    name : str
    levels : pandas.DataFrame
        Output of :func:`read_levels` (or :attr:`LevelList.table`).
    boundaries : geopandas.GeoDataFrame
        Normalised boundaries of the list's vintage.
    vintage : str
    year : int, optional
        Defaults to the first 4-digit number in ``name``.
    sources : list of str, optional
        Who published the list, verbatim (e.g. "STPS, MIRTI 2017"); default ``file``.
    national_rate : float, optional
        The published national reference rate, when known.
    file : str
        For error messages.
    allow_missing : bool
        Accept boundary municipalities absent from the list (``sin_informacion``, named in
        the card's ``import.missing``); by default they are an error.
    boundaries_source : str, optional
        Producer of the boundaries (default :data:`INEGI_BOUNDARIES`); INEGI is credited
        only when it names INEGI.
    report : dict, optional
        :meth:`LevelList.report`, kept in the card.

    Raises
    ------
    InputError
        Codes of the list absent from the boundaries, or municipalities absent from the list
        without ``allow_missing`` (all listed in one message).
    """
    name = check_name(name)
    vintage = check_name(vintage, "vintage")
    codes = boundaries["cvegeo"].astype(str)
    problems, missing = check_codes(levels, boundaries, vintage, allow_missing=allow_missing)
    raise_problems(problems, file)
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
        "sources": [*(str(x) for x in (sources or [str(file)])),
                    {"name": boundaries_source or INEGI_BOUNDARIES, "role": "boundaries"}],
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
        "n_absent": len(missing),
        "import": {"file": str(file), **(report or {}), "missing": missing},
    }
    from ..provenance import attribution

    card["attribution"] = {"es": attribution(card, "es"), "en": attribution(card, "en")}
    return Edition(name=name, rows=rows, factors=pd.DataFrame(), card=card)
