"""Read and validate harmonised survey and census child records (CSV or Parquet).

The schema is docs/DESIGN.md's "Harmonised survey/census records": ``cvegeo`` (5-digit
string), ``weight`` (> 0), for surveys ``strata``, ``psu`` and ``child_labour`` (0/1), then the
covariates the model spec names. Every problem is one :class:`~riskmap.errors.InputError`
naming the file, the column and the row.

Rows are numbered as a spreadsheet shows them: in a CSV file the header is row 1 and the first
record row 2; in a Parquet file (no header line) the first record is row 1.

Delimiter: a comma; a header without any comma but with ``;`` or tabs selects that delimiter
(spreadsheets in some locales save CSV so).

Encoding: CSV files must be UTF-8 (a byte-order mark is accepted). A file that is not valid
UTF-8 is rejected with the byte offset and row of the first bad byte, rather than guessed as
Latin-1: every byte string is "valid" Latin-1 (and cp1252 differs from it), so a guess could
silently turn names into mojibake.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError

KINDS = ("survey", "census")
_CODE = re.compile(r"^\d{5}$")
_LOST_ZEROS = re.compile(r"^\d{1,4}$")
_BOM = b"\xef\xbb\xbf"
#: Columns every file of a kind must have, before the spec's covariates.
BASE_COLUMNS = {
    "survey": ("cvegeo", "weight", "strata", "psu", "child_labour"),
    "census": ("cvegeo", "weight"),
}
_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")


def read_records(path, kind: str, spec, territorial: dict | None = None) -> pd.DataFrame:
    """Read harmonised survey or census records and validate them.

    Parameters
    ----------
    path : str or Path
        A CSV file (UTF-8, with or without BOM) or a Parquet file (``.parquet``).
    kind : {"survey", "census"}
    spec : riskmap.spec.ModelSpec
        Names the covariates; territorial covariates (kind ``"territorial"``) may come from
        ``territorial`` instead of the file.
    territorial : dict, optional
        ``{covariate name: Series indexed by cvegeo}``, joined to every record of the
        municipality when the file has no such column.

    Returns
    -------
    pandas.DataFrame
        ``cvegeo`` (str), ``weight`` (float), for surveys ``strata``, ``psu`` (str) and
        ``child_labour`` (int 0/1), then ``spec.names`` (float), with a RangeIndex.
        ``attrs["file"]`` is the file name and ``attrs["first_row"]`` the row number of index 0.

    Raises
    ------
    InputError
        Unreadable or empty file, bad encoding, missing or misspelt columns, codes that are
        not 5-digit strings, non-numeric or missing values, non-binary outcome, weights that
        are not positive and finite, empty strata or PSU.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    path = Path(path)
    name = path.name
    territorial = territorial or {}
    if not path.is_file():
        raise InputError("file not found", file=name)
    expected = list(BASE_COLUMNS[kind]) + [c for c in spec.names
                                           if not (c in spec.territorial_names
                                                   and c in territorial)]
    if path.suffix.lower() in _PARQUET_SUFFIXES:
        return _validate(_read_parquet(path), kind, spec, territorial, expected, name, 1)
    raw = _fast_csv(path, expected)
    if raw is not None:
        try:
            return _validate(raw, kind, spec, territorial, expected, name, 2)
        except InputError:
            pass  # report the value as written in the file: read it again as text
    return _validate(_read_csv(path), kind, spec, territorial, expected, name, 2)


def _validate(raw, kind, spec, territorial, expected, name, first_row) -> pd.DataFrame:
    """The checked, typed records of :func:`read_records` from the file's raw table."""
    _check_columns(raw, expected, name, spec.territorial_names)
    if len(raw) == 0:
        raise InputError("the file has a header but no records", file=name)

    out = pd.DataFrame(index=pd.RangeIndex(len(raw)))
    out["cvegeo"] = _codes(raw["cvegeo"], name, first_row)
    out["weight"] = _weights(raw["weight"], name, first_row)
    if kind == "survey":
        for col in ("strata", "psu"):
            out[col] = _labels(raw[col], col, name, first_row)
        out["child_labour"] = _binary(raw["child_labour"], "child_labour", name, first_row)
    for cov in spec.names:
        if cov in raw.columns:
            out[cov] = _numeric(raw[cov], cov, name, first_row)
            _check_valid(out[cov], raw[cov], spec.covariate(cov), name, first_row)
        else:
            out[cov] = _join_territorial(out["cvegeo"], territorial[cov], cov, name, first_row)
    out.attrs["file"] = name
    out.attrs["first_row"] = first_row
    return out


def validate_codes(records: pd.DataFrame, known_codes, file=None) -> None:
    """Raise :class:`InputError` if records carry municipality codes not in ``known_codes``.

    Parameters
    ----------
    records : DataFrame
        With a ``cvegeo`` column (as returned by :func:`read_records`).
    known_codes : iterable of str
        The municipality codes of the boundaries.
    file : str, optional
        Name for the message (default ``records.attrs["file"]``).

    Raises
    ------
    InputError
        Listing up to 10 unknown codes with the first row each appears on, and how many
        records and distinct codes are unknown in all.
    """
    file = file if file is not None else records.attrs.get("file")
    first_row = int(records.attrs.get("first_row", 2))
    known = pd.Index(pd.Series(list(known_codes), dtype=str).unique())
    codes = records["cvegeo"].astype(str)
    unknown = ~codes.isin(known)
    if not unknown.any():
        return
    # Positions, not index labels: callers may hand in frames with any index.
    pos = np.flatnonzero(unknown.to_numpy())
    firsts = pd.DataFrame({"pos": pos, "cvegeo": codes.to_numpy()[pos]})
    firsts = firsts.drop_duplicates("cvegeo")
    shown = [f"'{c}' (row {int(i) + first_row})" for i, c in
             zip(firsts["pos"].iloc[:10], firsts["cvegeo"].iloc[:10])]
    more = len(firsts) - len(shown)
    text = (f"{len(firsts)} municipality code(s) not in the boundaries "
            f"({int(unknown.sum())} records): " + ", ".join(shown)
            + (f" and {more} more" if more > 0 else "")
            + "; check that records and boundaries are of the same geography vintage")
    raise InputError(text, file=file, column="cvegeo",
                     errors=[f"unknown cvegeo {c}" for c in firsts["cvegeo"]])


# -- reading ---------------------------------------------------------------------------------
_TEXT_COLUMNS = ("cvegeo", "strata", "psu")
#: Values the careful reader treats as blank in a numeric column (case-insensitive).
_BLANKS = sorted({v for w in ("na", "nan", "null")
                  for v in (w, w.upper(), w.capitalize(), w.title())} | {""} | {"NaN", "nA"})


def _fast_csv(path: Path, expected: list[str]) -> pd.DataFrame | None:
    """Read a well-formed CSV quickly: only the expected columns, numbers parsed as numbers.

    Returns None when anything looks wrong (encoding, header, a value that is not a number,
    a parser error): :func:`_read_csv` then reads the file as text and names the file, column
    and row. Millions of census records read several times faster and in a fraction of the
    memory of the all-text reading.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(65536)
    except OSError:
        return None
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or not head.strip():
        return None
    if head.startswith(_BOM):
        head = head[len(_BOM):]
    line = head.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        header = line.decode("utf-8")
    except UnicodeDecodeError:
        return None
    sep = ","
    if "," not in header:
        sep = ";" if ";" in header else ("\t" if "\t" in header else ",")
    columns = [c.strip() for c in next(csv.reader([header], delimiter=sep))]
    if len(set(columns)) != len(columns) or any(c not in columns for c in expected):
        return None  # duplicated or missing columns: reported by the careful path
    dtype = {c: (str if c in _TEXT_COLUMNS else np.float64) for c in expected}
    na = {c: ([] if c in _TEXT_COLUMNS else _BLANKS) for c in expected}
    usecols = [raw for raw in next(csv.reader([header], delimiter=sep))
               if raw.strip() in expected]
    try:
        df = pd.read_csv(path, sep=sep, usecols=usecols, encoding="utf-8-sig",
                         encoding_errors="strict", skipinitialspace=True, keep_default_na=False,
                         na_values={raw: na[raw.strip()] for raw in usecols},
                         dtype={raw: dtype[raw.strip()] for raw in usecols},
                         engine="c", low_memory=False)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, OSError):
        return None
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _read_csv(path: Path) -> pd.DataFrame:
    name = path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror or exc})", file=name) from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        # Excel's "Unicode text" export; say so rather than report byte 0xff.
        raise InputError("the file is UTF-16 encoded; save it as CSV UTF-8", file=name)
    if data.startswith(_BOM):
        data = data[len(_BOM):]
    if not data.strip():
        raise InputError("the file is empty (expected a header line and records)", file=name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        row = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"not valid UTF-8: byte 0x{data[exc.start]:02x} at byte offset {exc.start}; "
            "save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 in.csv > out.csv`)",
            file=name, row=row) from None
    header = text.split("\n", 1)[0]
    # Spreadsheets in some locales save "CSV" with ';' (or tabs); accept those when the
    # header has no comma at all, which makes the choice unambiguous.
    sep = ","
    if "," not in header:
        sep = ";" if ";" in header else ("\t" if "\t" in header else ",")
    try:
        # Everything as text: codes keep their leading zeros and we locate bad values
        # ourselves (row numbers) instead of letting pandas coerce them.
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False,
                         skipinitialspace=True, sep=sep)
    except pd.errors.EmptyDataError:
        raise InputError("the file is empty (expected a header line and records)",
                         file=name) from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise InputError(f"not a readable CSV table ({_first_line(exc)})", file=name) from None
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
        raise InputError(f"not a readable Parquet file ({_first_line(exc)})",
                         file=path.name) from None
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# -- validation ------------------------------------------------------------------------------
def _check_columns(df: pd.DataFrame, expected: list[str], name: str,
                   territorial=()) -> None:
    dup = df.columns[df.columns.duplicated()].unique().tolist()
    if dup:
        raise InputError(f"the header repeats column(s) {', '.join(map(repr, dup))}", file=name)
    missing = [c for c in expected if c not in df.columns]
    if not missing:
        return
    spare = [c for c in df.columns if c not in expected]
    hints = []
    for col in missing:
        close = difflib.get_close_matches(col, spare, n=1, cutoff=0.6)
        if not close:
            close = [c for c in spare if c.lower() == col.lower()]
        hints.append(f"'{col}'" + (f" (found '{close[0]}': rename it to '{col}'?)" if close
                                   else ""))
    extra = ""
    if any(c in territorial for c in missing):
        extra = "; territorial covariates may instead be given as rasters (--raster NAME=FILE)"
    raise InputError(f"missing column(s) {', '.join(hints)}; expected columns: "
                     f"{', '.join(expected)}{extra}", file=name, column=missing[0])


def _show(value) -> str:
    """A value as the user wrote it: '-2' from a CSV, -2.0 from Parquet (no numpy repr)."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


def _first_bad(mask: pd.Series) -> int:
    return int(np.flatnonzero(np.asarray(mask))[0])


def _codes(col: pd.Series, name: str, first_row: int) -> pd.Series:
    if pd.api.types.is_numeric_dtype(col):
        # A numeric column has already lost the leading zeros of 01001..09xxx.
        i = 0
        value = col.iloc[0]
        raise InputError(f"codes must be 5-digit strings, e.g. '01001', but the column is "
                         f"numeric (first value {_show(value)}); store cvegeo as text",
                         file=name, column="cvegeo", row=i + first_row)
    # Millions of records share a few thousand codes: validate each distinct code once.
    index, uniques = pd.factorize(col, use_na_sentinel=True)
    text = pd.Series(uniques, dtype="string").str.strip()
    blank = np.flatnonzero((text == "").fillna(True).to_numpy())
    missing = (index < 0) | np.isin(index, blank)
    if missing.any():
        i = _first_bad(missing)
        raise InputError("missing municipality code", file=name, column="cvegeo",
                         row=i + first_row)
    ok = text.str.fullmatch(_CODE.pattern).fillna(False).to_numpy(dtype=bool)
    if not ok.all():
        i = _first_bad(np.isin(index, np.flatnonzero(~ok)))
        value = str(text.iloc[index[i]])
        if _LOST_ZEROS.fullmatch(value):
            msg = (f"codes must be 5-digit strings, e.g. '01001'; found '{value}' "
                   "(leading zeros lost? keep cvegeo as text)")
        else:
            msg = f"codes must be 5-digit strings, e.g. '01001'; found {value!r}"
        raise InputError(msg, file=name, column="cvegeo", row=i + first_row)
    return pd.Series(text.to_numpy(dtype=object)[index], index=col.index, dtype=object)


def _to_float(col: pd.Series, column: str, name: str, first_row: int) -> pd.Series:
    if pd.api.types.is_bool_dtype(col):
        col = col.astype(float)
    if pd.api.types.is_numeric_dtype(col):
        values = pd.Series(np.asarray(col, dtype=float), index=col.index)
        blank = values.isna()
    else:
        text = col.astype("string").str.strip()
        blank = text.isna() | (text == "") | text.str.lower().isin(["na", "nan", "null"])
        values = pd.to_numeric(text.where(~blank), errors="coerce").astype(float)
        bad = values.isna() & ~blank
        if bad.any():
            i = _first_bad(bad)
            raise InputError(f"expected a number, found {text.iloc[i]!r}", file=name,
                             column=column, row=i + first_row)
    if blank.any():
        i = _first_bad(blank)
        raise InputError("missing value (NaN or empty); every record needs a number here",
                         file=name, column=column, row=i + first_row)
    return values


def _numeric(col, column, name, first_row) -> pd.Series:
    values = _to_float(col, column, name, first_row)
    inf = ~np.isfinite(values.to_numpy())
    if inf.any():
        i = _first_bad(inf)
        raise InputError(f"expected a finite number, found {_show(col.iloc[i])}", file=name,
                         column=column, row=i + first_row)
    return values


def _check_valid(values: pd.Series, col, covariate, name, first_row) -> None:
    """Raise at the first value outside the covariate's valid range (model spec)."""
    if covariate.values is None and covariate.min is None and covariate.max is None:
        return
    x = values.to_numpy(dtype=float)
    bad = np.zeros(len(x), dtype=bool)
    if covariate.values is not None:
        bad |= ~np.isin(x, covariate.values)
    if covariate.min is not None:
        bad |= x < covariate.min
    if covariate.max is not None:
        bad |= x > covariate.max
    if bad.any():
        i = _first_bad(bad)
        raise InputError(f"expected {covariate.valid_text()} ({covariate.label_en.lower()}), "
                         f"found {_show(col.iloc[i])}", file=name, column=covariate.name,
                         row=i + first_row)


def _weights(col, name, first_row) -> pd.Series:
    values = _to_float(col, "weight", name, first_row)
    bad = ~(np.isfinite(values.to_numpy()) & (values.to_numpy() > 0))
    if bad.any():
        i = _first_bad(bad)
        raise InputError(f"weights must be positive finite numbers, found {_show(col.iloc[i])}",
                         file=name, column="weight", row=i + first_row)
    return values


def _binary(col, column, name, first_row) -> pd.Series:
    values = _to_float(col, column, name, first_row)
    bad = ~values.isin([0.0, 1.0])
    if bad.any():
        i = _first_bad(bad)
        shown = col.iloc[i]
        raise InputError(f"the outcome must be 0 or 1, found {_show(shown)}", file=name,
                         column=column, row=i + first_row)
    return values.astype(int)


def _labels(col, column, name, first_row) -> pd.Series:
    text = col.astype("string").str.strip()
    blank = text.isna() | (text == "")
    if blank.any():
        i = _first_bad(blank)
        raise InputError(f"missing {column} label; every survey record needs its "
                         "stratum and primary sampling unit", file=name, column=column,
                         row=i + first_row)
    # Integer-valued floats from Parquet (3.0) become "3", as they would read from CSV.
    if pd.api.types.is_float_dtype(col):
        text = pd.Series([f"{v:g}" for v in col], index=col.index, dtype="string")
    return text.astype(str)


def _join_territorial(codes: pd.Series, values: pd.Series, column: str, name: str,
                      first_row: int) -> pd.Series:
    values = pd.Series(values)
    values.index = values.index.astype(str)
    joined = codes.map(values).astype(float)
    missing = ~np.isfinite(joined.to_numpy())
    if missing.any():
        i = _first_bad(missing)
        code = codes.iloc[i]
        if code not in values.index:
            raise InputError(f"municipality code '{code}' is not in the boundaries, so "
                             f"territorial covariate '{column}' has no value for it; check "
                             "that records and boundaries are of the same geography vintage",
                             file=name, column="cvegeo", row=i + first_row)
        raise InputError(f"territorial covariate has no value for municipality '{code}' "
                         "(no valid raster cell inside it)", file=name, column=column,
                         row=i + first_row)
    return joined


def join_territorial(records: pd.DataFrame, spec, territorial: dict | None) -> pd.DataFrame:
    """Add the spec's territorial covariates that ``records`` lacks, from ``territorial``.

    Parameters
    ----------
    records : DataFrame
        Harmonised records with ``cvegeo``.
    spec : riskmap.spec.ModelSpec
    territorial : dict or None
        ``{covariate name: Series indexed by cvegeo}``.

    Returns
    -------
    DataFrame
        ``records`` itself when nothing is missing, else a copy with the columns joined.

    Raises
    ------
    InputError
        A territorial covariate is neither a column nor given, or lacks a municipality.
    """
    missing = [c for c in spec.territorial_names if c not in records.columns]
    if not missing:
        return records
    territorial = territorial or {}
    name = records.attrs.get("file")
    first_row = int(records.attrs.get("first_row", 2))
    absent = [c for c in missing if c not in territorial]
    if absent:
        raise InputError(f"territorial covariate(s) {', '.join(absent)} are neither columns of "
                         "the records nor given as rasters (--raster NAME=FILE)",
                         file=name, column=absent[0])
    out = records.copy()
    for cov in missing:
        out[cov] = _join_territorial(out["cvegeo"], territorial[cov], cov, name, first_row)
    return out
