"""Source mappings: turn a real INEGI table (census microdata, ENTI, MTI) into harmonised
child records (docs/DESIGN.md "Harmonised survey records").

A mapping is an editable TOML file in ``models/sources/``. It names, for one source:

* ``kind`` ("census" or "survey"), ``[geography]`` (``ent``, optionally ``mun``),
  ``[design]`` (``weight``, ``strata``, ``psu``; a list of columns is joined into one id),
* ``[age]`` (column, range; default 5-17), ``[household]`` (id column(s), relationship column,
  the code(s) of the head) used to derive head-of-household variables,
* ``[outcome]`` for surveys (``child_labour``), and ``[[variables]]``: one per covariate.

Each variable has ``name`` (the harmonised covariate), ``column`` (the INEGI name),
``confidence`` (C1 official, C2 third party, I inferred, ? not found), and how to read it:
``recode`` (code -> value; codes compare as numbers, so ``"01"`` matches ``1``),
``missing`` (codes that mean "not specified" -> NaN), ``other`` (value for codes not listed;
without it an unlisted code is an error), ``prefix`` (1 when the code starts with one of these
strings, e.g. SCIAN ``11`` = agriculture), ``blank`` (value when the cell is empty, e.g. a head
who does not work has no industry), ``of`` ("self", "head": read from the head of the child's
household, "household": ``derive = "size"`` counts its members), ``table`` (a second table
joined on ``[tables.<name>].keys``, e.g. the census dwellings file).

Surveys without a municipality map to a state-level code ``ENT + "000"``: the model fit needs
no municipality, and a code that is not a real municipality cannot be mistaken for one.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..fileio import read_csv_text, read_toml
from ..paths import MODELS_DIR

SOURCES_DIR = MODELS_DIR / "sources"
CONFIDENCE = ("C1", "C2", "I", "?")
KINDS = ("census", "survey")
_OF = ("self", "head", "household")


@dataclass(frozen=True)
class Variable:
    name: str
    column: str | None
    confidence: str = "?"
    recode: dict | None = None
    missing: tuple = ()
    other: float | None = None
    prefix: tuple = ()
    blank: float | None = None
    of: str = "self"
    derive: str | None = None
    table: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Mapping:
    """A validated source mapping (see the module docstring for the file format)."""

    name: str
    kind: str
    source: str
    description: str
    ent: str
    mun: str | None
    weight: str
    strata: tuple
    psu: tuple
    age: str
    age_min: int
    age_max: int
    age_missing: tuple
    household: tuple
    relationship: str | None
    head_codes: tuple
    outcome: Variable | None
    variables: tuple
    tables: dict = field(default_factory=dict)
    confidence: dict = field(default_factory=dict)

    @property
    def covariates(self) -> list[str]:
        return [v.name for v in self.variables]

    def expected_columns(self, table: str | None = None) -> list[str]:
        """INEGI columns this mapping reads from the main table (or a named extra table)."""
        if table is not None:
            cols = list(self.tables[table]["keys"])
            return cols + [v.column for v in self.variables if v.table == table and v.column]
        cols = [self.ent] + ([self.mun] if self.mun else []) + [self.weight, *self.strata,
                                                                 *self.psu, self.age]
        cols += list(self.household) + ([self.relationship] if self.relationship else [])
        if self.outcome is not None:
            cols.append(self.outcome.column)
        cols += [v.column for v in self.variables if v.table is None and v.column]
        return list(dict.fromkeys(c for c in cols if c))


def load_mapping(path) -> Mapping:
    """Read and validate a source mapping TOML file.

    Parameters
    ----------
    path : str or Path
        A file, or the bare name of a mapping in ``models/sources/`` (``"censo2020_ampliado"``).

    Returns
    -------
    Mapping

    Raises
    ------
    InputError
        Missing file, invalid TOML, unknown keys or values.
    """
    path = Path(path)
    if not path.suffix and not path.exists():
        path = SOURCES_DIR / f"{path.name}.toml"
    known = ", ".join(sorted(p.stem for p in SOURCES_DIR.glob("*.toml")))
    data = read_toml(path, "mapping file", f"mappings shipped: {known}")
    try:
        return _build(data, path)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"invalid mapping ({type(exc).__name__}: {exc})", file=path) from None


def _listify(value) -> tuple:
    if value is None:
        return ()
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _variable(item: dict, path) -> Variable:
    allowed = set(Variable.__dataclass_fields__)
    unknown = set(item) - allowed
    if unknown:
        raise InputError(f"variable {item.get('name')!r}: unknown key(s) {', '.join(sorted(unknown))}"
                         f"; allowed: {', '.join(sorted(allowed))}", file=path)
    conf = str(item.get("confidence", "?"))
    if conf not in CONFIDENCE:
        raise InputError(f"variable {item['name']!r}: confidence must be one of "
                         f"{', '.join(CONFIDENCE)}", file=path)
    of = item.get("of", "self")
    if of not in _OF:
        raise InputError(f"variable {item['name']!r}: 'of' must be one of {', '.join(_OF)}",
                         file=path)
    recode = item.get("recode")
    if recode is not None:
        recode = {_norm_code(k): float(v) for k, v in recode.items()}
    return Variable(name=item["name"], column=item.get("column"), confidence=conf,
                    recode=recode, missing=tuple(_norm_code(m) for m in _listify(item.get("missing"))),
                    other=None if item.get("other") is None else float(item["other"]),
                    prefix=tuple(str(p) for p in _listify(item.get("prefix"))),
                    blank=None if item.get("blank") is None else float(item["blank"]),
                    of=of, derive=item.get("derive"), table=item.get("table"),
                    note=str(item.get("note", "")))


def _build(data: dict, path: Path) -> Mapping:
    kind = data["kind"]
    if kind not in KINDS:
        raise InputError(f"kind must be one of {', '.join(KINDS)}", file=path)
    geo, design = data["geography"], data["design"]
    age = data.get("age", {})
    hh = data.get("household", {})
    variables = tuple(_variable(v, path) for v in data.get("variables", []))
    names = [v.name for v in variables]
    if len(set(names)) != len(names):
        raise InputError("a variable name is listed twice", file=path)
    tables = data.get("tables", {})
    for v in variables:
        if v.table is not None and v.table not in tables:
            raise InputError(f"variable {v.name!r} reads table {v.table!r}, not declared in "
                             "[tables]", file=path)
        if v.of == "household" and v.derive != "size":
            raise InputError(f"variable {v.name!r}: of = \"household\" needs derive = \"size\"",
                             file=path)
    if any(v.of != "self" for v in variables) and not (hh.get("id") and hh.get("relationship")):
        raise InputError("head or household variables need [household] id and relationship",
                         file=path)
    outcome = None
    if kind == "survey":
        out = dict(data["outcome"])
        out.setdefault("name", "child_labour")
        outcome = _variable(out, path)
    conf = {v.name: v.confidence for v in variables}
    return Mapping(
        name=str(data.get("name", path.stem)), kind=kind, source=str(path),
        description=str(data.get("description", "")),
        ent=geo["ent"], mun=geo.get("mun"), weight=design["weight"],
        strata=_listify(design.get("strata")), psu=_listify(design.get("psu")),
        age=age.get("column", "EDAD"), age_min=int(age.get("min", 5)),
        age_max=int(age.get("max", 17)),
        age_missing=tuple(_norm_code(m) for m in _listify(age.get("missing"))),
        household=_listify(hh.get("id")), relationship=hh.get("relationship"),
        head_codes=tuple(_norm_code(c) for c in _listify(hh.get("head"))),
        outcome=outcome, variables=variables, tables=tables, confidence=conf)


# -- applying a mapping ---------------------------------------------------------------------
def apply_mapping(df: pd.DataFrame, mapping: Mapping, file, tables: dict | None = None
                  ) -> pd.DataFrame:
    """Harmonise one raw INEGI table with a mapping.

    Parameters
    ----------
    df : pandas.DataFrame
        The persons table as INEGI ships it (column names in any case; values as read, text
        or numbers).
    mapping : Mapping
    file : str
        Name used in error messages.
    tables : dict, optional
        Extra tables named in the mapping's ``[tables]`` (e.g. ``{"dwellings": viviendas}``).

    Returns
    -------
    pandas.DataFrame
        One row per child in the age range: ``cvegeo, weight`` (census) or
        ``cvegeo, weight, strata, psu, child_labour`` (survey), then the mapped covariates
        (float). ``attrs["file"]`` is ``file``; ``attrs["dropped"]`` counts children
        dropped for missing values, by covariate.

    Raises
    ------
    InputError
        Missing columns (listing what was expected and what was found), codes the mapping
        does not know, weights that are not positive.

    Warns
    -----
    UserWarning
        Children dropped because a covariate is missing ("not specified" codes, no head).
    """
    tables = tables or {}
    raw = _upper(df).reset_index(drop=True)
    _require(raw, mapping.expected_columns(), mapping, file)
    extra = {}
    for tname, spec in mapping.tables.items():
        if not any(v.table == tname for v in mapping.variables):
            continue
        if tname not in tables:
            raise InputError(f"the mapping reads table {tname!r} ({spec.get('file', '')}); "
                             "pass it too", file=file)
        t = _upper(tables[tname])
        _require(t, mapping.expected_columns(tname), mapping, spec.get("file", tname))
        keys = [k.upper() for k in spec["keys"]]
        if t.duplicated(keys).any():
            raise InputError(f"table {tname!r} repeats its key {'+'.join(keys)}",
                             file=spec.get("file", tname))
        extra[tname] = raw[keys].merge(t, on=keys, how="left", validate="many_to_one")

    out = pd.DataFrame(index=raw.index)
    ent = _code_text(raw[mapping.ent.upper()], 2, mapping.ent, file)
    mun = (_code_text(raw[mapping.mun.upper()], 3, mapping.mun, file) if mapping.mun
           else pd.Series("000", index=raw.index))
    out["cvegeo"] = ent + mun
    weight = pd.to_numeric(raw[mapping.weight.upper()], errors="coerce")
    out["weight"] = weight.astype(float)
    if mapping.kind == "survey":
        out["strata"] = _join_ids(raw, mapping.strata) if mapping.strata else "1"
        out["psu"] = _join_ids(raw, mapping.psu) if mapping.psu else raw.index.astype(str)

    hh_key = _join_ids(raw, mapping.household) if mapping.household else None
    head_pos = is_head = None
    if hh_key is not None and mapping.relationship:
        rel = _norm_codes(raw[mapping.relationship.upper()])
        is_head = rel.isin(mapping.head_codes)
        heads = pd.Series(np.flatnonzero(is_head.to_numpy()), index=hh_key[is_head].to_numpy())
        heads = heads[~heads.index.duplicated()]  # a second "head" is a coding error: keep the first
        head_pos = hh_key.map(heads).fillna(-1).to_numpy(dtype=int)

    age = _numeric_codes(raw[mapping.age.upper()], mapping.age_missing)
    keep = age.between(mapping.age_min, mapping.age_max)

    for var in mapping.variables:
        if var.of == "household":
            values = hh_key.map(hh_key.value_counts()).astype(float)
        else:
            source = extra[var.table] if var.table else raw
            col = source[var.column.upper()]
            col = pd.Series(col.to_numpy(), index=raw.index)
            values = _decode(col, var, file, rows=keep if var.of == "self" else is_head)
            if var.of == "head":
                # children of a household without a head get NaN (then dropped, with a warning)
                picked = values.to_numpy()[np.maximum(head_pos, 0)]
                values = pd.Series(np.where(head_pos >= 0, picked, np.nan), index=raw.index)
        out[var.name] = values.astype(float)
    if mapping.outcome is not None:
        out["child_labour"] = _decode(raw[mapping.outcome.column.upper()], mapping.outcome,
                                      file, rows=keep)

    out = out[keep]
    not_positive = ~(out["weight"] > 0)  # NaN included
    if not_positive.any():
        bad = out.index[not_positive][0]
        raise InputError(f"weight must be a positive number, found "
                         f"{raw.loc[bad, mapping.weight.upper()]!r}", file=file,
                         column=mapping.weight, row=int(bad) + 2)
    value_cols = mapping.covariates + (["child_labour"] if mapping.outcome else [])
    na = out[value_cols].isna()
    dropped = {c: int(n) for c, n in na.sum().items() if n}
    if na.any(axis=1).any():
        n = int(na.any(axis=1).sum())
        warnings.warn(f"{file}: {n:,} of {len(out):,} children dropped for missing values "
                      f"({', '.join(f'{c}: {k:,}' for c, k in dropped.items())})", stacklevel=2)
        out = out[~na.any(axis=1)]
    if mapping.outcome is not None:
        out["child_labour"] = out["child_labour"].astype(int)
    base = ["cvegeo", "weight"] + (["strata", "psu", "child_labour"] if mapping.outcome else [])
    out = out[base + mapping.covariates].reset_index(drop=True)
    out.attrs["file"] = str(file)
    out.attrs["dropped"] = dropped
    out.attrs["mapping"] = mapping.name
    return out


# -- helpers --------------------------------------------------------------------------------
def _upper(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out.columns = [str(c).strip().upper() for c in out.columns]
    return out


def _require(df: pd.DataFrame, expected: list[str], mapping: Mapping, file) -> None:
    missing = [c for c in expected if c.upper() not in df.columns]
    if not missing:
        return
    unsure = {v.column: v.confidence for v in mapping.variables if v.confidence in ("I", "?")}
    notes = [f"{c} [{unsure[c]}]" if c in unsure else c for c in missing]
    found = ", ".join(list(df.columns)[:40]) + (" ..." if df.shape[1] > 40 else "")
    raise InputError(f"missing column(s) {', '.join(notes)} for mapping {mapping.name!r}; "
                     f"expected {', '.join(expected)}; found {found}"
                     + ("; names tagged [I]/[?] are unconfirmed INEGI names: edit "
                        f"{Path(mapping.source).name}" if any(c in unsure for c in missing) else ""),
                     file=file, column=missing[0])


def _norm_code(value):
    """Codes compare as numbers when they are numbers: "01", 1 and 1.0 are the same code."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    if text == "" or text.lower() == "nan":
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else str(number)


def _norm_codes(series: pd.Series) -> pd.Series:
    """Vectorised :func:`_norm_code` (census files have millions of rows)."""
    text = series.astype("string").str.strip()
    num = pd.to_numeric(text, errors="coerce")
    out = text.astype(object)
    has_num = num.notna()
    whole = has_num & (num % 1 == 0)
    out[whole] = num[whole].astype("int64").astype(str)
    frac = has_num & ~whole
    if frac.any():
        out[frac] = num[frac].astype(str)
    blank = text.isna() | (text == "") | (text.str.lower() == "nan")
    out[blank.fillna(True).to_numpy(dtype=bool)] = None
    return out


def _numeric_codes(series: pd.Series, missing: tuple) -> pd.Series:
    codes = _norm_codes(series)
    codes = codes.where(~codes.isin(missing))
    return pd.to_numeric(codes, errors="coerce")


def _code_text(series: pd.Series, width: int, name: str, file) -> pd.Series:
    text = _norm_codes(series)
    ok = text.notna() & text.astype(str).str.fullmatch(r"\d{1,%d}" % width)
    if not ok.all():
        row = int(np.flatnonzero(~ok.to_numpy())[0])
        raise InputError(f"expected a {width}-digit code, found {series.iloc[row]!r}",
                         file=file, column=name, row=row + 2)
    return text.str.zfill(width)


def _join_ids(df: pd.DataFrame, columns: tuple) -> pd.Series:
    parts = []
    for c in columns:
        text = df[c.upper()].astype("string").str.strip()
        parts.append(text.where(_norm_codes(df[c.upper()]).notna(), "").fillna("").astype(object))
    out = parts[0]
    for p in parts[1:]:
        out = out + "|" + p
    return out


def _decode(col: pd.Series, var: Variable, file, rows=None) -> pd.Series:
    """Apply blank / missing / prefix / recode rules; unknown codes raise (unless other=)."""
    codes = _norm_codes(col)
    blank = codes.isna()
    out = pd.Series(np.nan, index=col.index, dtype=float)
    is_missing = codes.isin(var.missing) & ~blank
    if var.prefix:
        text = col.astype(str).str.strip()
        hit = pd.Series(False, index=col.index)
        for p in var.prefix:
            hit |= text.str.startswith(p)
        out[:] = np.where(hit, 1.0, 0.0)
    elif var.recode is not None:
        mapped = codes.map(var.recode)
        unknown = mapped.isna() & ~blank & ~is_missing
        if var.other is not None:
            mapped[unknown] = var.other
        elif unknown.any():
            check = unknown if rows is None else unknown & rows
            if check.any():
                first = int(np.flatnonzero(check.to_numpy())[0])
                seen = sorted(set(codes[check].dropna()))[:10]
                raise InputError(f"code(s) {', '.join(seen)} not in the recode of "
                                 f"{var.name!r} (known: {', '.join(var.recode)}); add them to "
                                 "the mapping's recode, missing or other", file=file,
                                 column=var.column, row=first + 2)
        out[:] = mapped.to_numpy(dtype=float)
    else:
        out[:] = pd.to_numeric(codes, errors="coerce").to_numpy(dtype=float)
    out[is_missing] = np.nan
    out[blank] = np.nan if var.blank is None else var.blank
    return out


def read_table(path) -> pd.DataFrame:
    """Read a raw INEGI table as text: CSV (UTF-8 with or without BOM, else latin-1),
    DBF (through GDAL, latin-1 unless a ``.cpg`` says otherwise) or Parquet.

    Every value stays a string (codes keep their leading zeros); empty cells are NaN.

    Raises
    ------
    InputError
        Missing or unreadable file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", file=path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".dbf":
            import pyogrio

            kwargs = {} if path.with_suffix(".cpg").exists() else {"encoding": "latin1"}
            df = pyogrio.read_dataframe(path, read_geometry=False, **kwargs)
            return df.astype(object).where(df.notna(), None).astype("str").replace(
                {"None": np.nan, "nan": np.nan})
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path).astype(str).replace({"None": np.nan, "nan": np.nan})
        return read_csv_text(path)
    except InputError:
        raise
    except Exception as exc:  # pandas/GDAL raise many types for a corrupt file
        raise InputError(f"cannot read the table ({exc})", file=path) from None
