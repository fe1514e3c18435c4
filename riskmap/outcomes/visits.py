"""Visit records: read (CSV or XLSX), validate, import in one transaction, export.

A file's rows are validated first; any bad row means nothing is imported and the error lists
every bad row (file, row, column, what was expected). Importing rows already stored is a
no-op; a folio stored with different content is a conflict and is never overwritten. The
insert is one transaction, so a crash or a kill leaves all of the file or none of it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ..errors import InputError, RiskmapError
from .db import visits as visits_table, workplaces as workplaces_table, writing
from .users import record_audit

FIELDS = ("folio", "cvegeo", "fecha", "establecimientos", "nna_encontrados", "nna_peligroso",
          "sector", "notas")
REQUIRED = FIELDS[:6]
MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 100_000
MAX_NOTES = 2000
MAX_FOLIO = 100
#: SCIAN (North American Industry Classification, Mexico) sectors, 2 digits.
SCIAN_SECTORS = ("11", "21", "22", "23", "31", "32", "33", "43", "46", "48", "49", "51", "52",
                 "53", "54", "55", "56", "61", "62", "71", "72", "81", "93")
_SHOWN_ERRORS = 200
_CHUNK = 500


class TooLarge(InputError):
    """An upload beyond :data:`MAX_BYTES` or :data:`MAX_ROWS`."""

    status = 413


class ImportRefused(InputError):
    """Bad rows or conflicting folios: nothing was imported; ``errors`` lists them."""


@dataclass
class ImportResult:
    """What an import did: rows inserted, rows already stored unchanged."""

    file: str
    rows: int
    inserted: int
    unchanged: int
    audit_id: int | None = None
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"file": self.file, "rows": self.rows, "inserted": self.inserted,
                "unchanged": self.unchanged, "audit_id": self.audit_id}


# -- reading -------------------------------------------------------------------------------
def read_table(data: bytes, name: str) -> pd.DataFrame:
    """Parse an upload's bytes as CSV (UTF-8 or latin-1) or XLSX (by name or content).

    Every cell is text (``""`` when empty). Raises :class:`TooLarge` beyond the limits and
    :class:`InputError` for an unreadable file.
    """
    if len(data) > MAX_BYTES:
        raise TooLarge(f"file of {len(data):,} bytes; the limit is {MAX_BYTES:,} bytes (10 MB)",
                       file=name)
    if name.lower().endswith(".xlsx") or data[:4] == b"PK\x03\x04":
        table = _read_xlsx(data, name)
    else:
        from ..fileio import read_csv_text

        try:
            table = read_csv_text(lambda: io.BytesIO(data), keep_default_na=False,
                                  skip_blank_lines=True)
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise InputError(f"not a readable CSV file ({str(exc).strip()})", file=name) from None
    if len(table) > MAX_ROWS:
        raise TooLarge(f"{len(table):,} rows; the limit is {MAX_ROWS:,} rows per import",
                       file=name)
    table.columns = [str(c).strip().lower() for c in table.columns]
    return table


def _read_xlsx(data: bytes, name: str) -> pd.DataFrame:
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a bad file
        raise InputError(f"not a readable XLSX workbook ({type(exc).__name__})",
                         file=name) from None
    sheet = book.worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    header = next(rows, None)
    if header is None:
        raise InputError("the first sheet is empty", file=name)
    body = []
    for values in rows:
        if len(body) > MAX_ROWS:
            break
        if values is None or all(v is None or str(v).strip() == "" for v in values):
            continue
        body.append(["" if v is None else _cell_text(v) for v in values])
    book.close()
    width = len(header)
    body = [(r + [""] * width)[:width] for r in body]
    return pd.DataFrame(body, columns=["" if h is None else str(h) for h in header], dtype=str)


def _cell_text(value) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# -- validation ----------------------------------------------------------------------------
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INT = re.compile(r"[+]?\d+")


def validate(table: pd.DataFrame, name: str, known_codes=None, today: dt.date | None = None
             ) -> list[dict]:
    """Check every row; return clean records or raise :class:`ImportRefused` listing all faults.

    Parameters
    ----------
    table : DataFrame
        Text cells, columns named as :data:`FIELDS` (``sector`` and ``notas`` optional).
    name : str
        File name for the messages.
    known_codes : set of str, optional
        Valid municipality codes (the published geography); when given, others are refused.
    today : date, optional
        Dates after it are refused (default: today, UTC).
    """
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise ImportRefused(f"missing column(s) {', '.join(missing)}; expected columns: "
                            + ", ".join(FIELDS), file=name)
    today = today or dt.datetime.now(dt.timezone.utc).date()
    cols = {c: (table[c].tolist() if c in table.columns else [""] * len(table)) for c in FIELDS}
    errors: list[str] = []
    out: list[dict] = []
    seen: dict[str, int] = {}

    def bad(row, column, expected, value):
        errors.append(f"{name}, row {row}, column '{column}': expected {expected}, "
                      f"found {str(value)[:60]!r}")

    for i in range(len(table)):
        row = i + 2  # the header is row 1
        n_before = len(errors)
        folio = str(cols["folio"][i]).strip()
        if not folio or len(folio) > MAX_FOLIO:
            bad(row, "folio", f"a non-empty text of at most {MAX_FOLIO} characters", folio)
        elif folio in seen:
            bad(row, "folio", f"a folio not repeated in the file (also row {seen[folio]})", folio)
        else:
            seen[folio] = row
        code = str(cols["cvegeo"][i]).strip()
        if code.isdigit() and len(code) == 4:
            code = "0" + code  # a spreadsheet dropped the leading zero
        if not (code.isdigit() and len(code) == 5):
            bad(row, "cvegeo", "a 5-digit municipality code", code)
        elif known_codes is not None and code not in known_codes:
            bad(row, "cvegeo", "a municipality of the published geography", code)
        raw_date = str(cols["fecha"][i]).strip()
        fecha = _date(raw_date)
        if fecha is None:
            bad(row, "fecha", "a date YYYY-MM-DD", raw_date)
        elif fecha > today:
            bad(row, "fecha", f"a date not in the future (today is {today.isoformat()})",
                raw_date)
        numbers = {}
        for column, low in (("establecimientos", 1), ("nna_encontrados", 0),
                            ("nna_peligroso", 0)):
            raw = str(cols[column][i]).strip()
            value = int(raw) if _INT.fullmatch(raw) and len(raw) < 10 else None
            if value is None or value < low:
                bad(row, column, f"an integer >= {low}", raw)
            numbers[column] = value
        found, hazardous = numbers["nna_encontrados"], numbers["nna_peligroso"]
        if found is not None and hazardous is not None and hazardous > found:
            bad(row, "nna_peligroso", f"at most nna_encontrados ({found})", hazardous)
        sector = str(cols["sector"][i]).strip()
        if sector and sector not in SCIAN_SECTORS:
            bad(row, "sector", "empty or a 2-digit SCIAN sector (" + ", ".join(SCIAN_SECTORS)
                + ")", sector)
        notas = str(cols["notas"][i])
        if len(notas) > MAX_NOTES:
            bad(row, "notas", f"at most {MAX_NOTES:,} characters", f"{len(notas):,} characters")
        if len(errors) == n_before:
            rec = {"folio": folio, "cvegeo": code, "fecha": fecha, **numbers,
                   "sector": sector or None, "notas": notas if notas.strip() else None}
            rec["digest"] = digest(rec)
            out.append(rec)
    if errors:
        _refuse(name, errors, "bad row(s)")
    return out


def _refuse(name: str, errors: list[str], what: str):
    shown = errors[:_SHOWN_ERRORS]
    more = len(errors) - len(shown)
    if more:
        shown.append(f"... and {more:,} more")
    raise ImportRefused(f"{len(errors):,} {what}; nothing was imported (first: {errors[0]})",
                        file=name, errors=shown)


def _date(text: str) -> dt.date | None:
    if not _DATE.fullmatch(text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def digest(rec: dict) -> str:
    """SHA-256 of a record's content (what "same row" means on re-import)."""
    parts = [str(rec["folio"]), rec["cvegeo"], rec["fecha"].isoformat(),
             str(rec["establecimientos"]), str(rec["nna_encontrados"]),
             str(rec["nna_peligroso"]), rec["sector"] or "", rec["notas"] or ""]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


# -- import --------------------------------------------------------------------------------
def import_bytes(engine, data: bytes, name: str, actor: str, known_codes=None,
                 today: dt.date | None = None) -> ImportResult:
    """Validate and import a file's bytes in one transaction (see the module docstring).

    Raises
    ------
    TooLarge, ImportRefused, InputError
        Nothing is imported.
    """
    table = read_table(data, name)
    records = validate(table, name, known_codes, today)
    return import_records(engine, records, name, actor,
                          sha256=hashlib.sha256(data).hexdigest())


def import_records(engine, records: list[dict], name: str, actor: str, sha256: str = ""
                   ) -> ImportResult:
    """Insert validated records in one transaction; conflicts roll everything back."""
    insert = _insert_ignore(engine)
    with writing(engine).begin() as conn:
        audit_id = record_audit(conn, actor, "import", file=name, sha256=sha256,
                                rows=len(records))
        # Folio order: concurrent imports of overlapping files lock rows in the same order
        # (PostgreSQL waits instead of deadlocking).
        rows = sorted((dict(r, import_id=audit_id) for r in records), key=lambda r: r["folio"])
        for start in range(0, len(rows), 5000):
            conn.execute(insert, rows[start:start + 5000])
        inserted = int(conn.execute(sa.select(sa.func.count()).select_from(visits_table)
                                    .where(visits_table.c.import_id == audit_id)).scalar())
        stored = _stored_digests(conn, [r["folio"] for r in records])
        conflicts = [r["folio"] for r in records if stored.get(r["folio"]) != r["digest"]]
        if conflicts:
            errors = [f"{name}, folio {f!r}: already stored with different content; "
                      "it is never overwritten (correct the file or give the visit a new folio)"
                      for f in conflicts]
            _refuse(name, errors, "conflicting folio(s)")  # raises: the transaction rolls back
        unchanged = len(records) - inserted
        conn.execute(sa.text("UPDATE audit SET detail = :d WHERE id = :i"),
                     {"d": _detail(name, sha256, len(records), inserted, unchanged),
                      "i": audit_id})
    return ImportResult(name, len(records), inserted, unchanged, audit_id)


def _detail(name, sha256, rows, inserted, unchanged) -> str:
    import json

    return json.dumps({"file": name, "sha256": sha256, "rows": rows, "inserted": inserted,
                       "unchanged": unchanged}, ensure_ascii=False, sort_keys=True)


def _insert_ignore(engine):
    name = engine.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise RiskmapError(f"unsupported database backend {name!r}")
    return insert(visits_table).on_conflict_do_nothing(index_elements=["folio"])


def _stored_digests(conn, folios: list[str]) -> dict:
    out = {}
    for start in range(0, len(folios), _CHUNK):
        chunk = folios[start:start + _CHUNK]
        out.update(conn.execute(sa.select(visits_table.c.folio, visits_table.c.digest)
                                .where(visits_table.c.folio.in_(chunk))).all())
    return out


# -- reading back --------------------------------------------------------------------------
def frame(engine) -> pd.DataFrame:
    """Every stored visit as a DataFrame with :data:`FIELDS` (ordered by date, folio)."""
    cols = [visits_table.c[f] for f in FIELDS]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*cols).order_by(visits_table.c.fecha,
                                                      visits_table.c.folio)).all()
    out = pd.DataFrame(rows, columns=list(FIELDS))
    for col in ("establecimientos", "nna_encontrados", "nna_peligroso"):
        out[col] = out[col].astype(np.int64)
    return out


STATS_FIELDS = ("folio", "cvegeo", "establecimientos", "nna_encontrados", "nna_peligroso")


def stats_frame(engine) -> pd.DataFrame:
    """The columns field validation needs (:data:`STATS_FIELDS`), read through the driver's
    cursor: about ten times faster than :func:`frame` on 100,000 visits."""
    with engine.connect() as conn:
        cursor = conn.connection.driver_connection.cursor()
        try:
            cursor.execute("SELECT " + ", ".join(STATS_FIELDS) + " FROM visits")
            rows = cursor.fetchall()
        finally:
            cursor.close()
    out = pd.DataFrame(rows, columns=list(STATS_FIELDS))
    for col in STATS_FIELDS[2:]:
        out[col] = out[col].astype(np.int64)
    return out


def count(engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(visits_table)).scalar())


def recently_visited(engine, days: int, today: dt.date | None = None) -> set[str]:
    """Municipalities with a visit dated within the last ``days`` days."""
    today = today or dt.datetime.now(dt.timezone.utc).date()
    since = today - dt.timedelta(days=int(days))
    with engine.connect() as conn:
        return {c for (c,) in conn.execute(sa.select(visits_table.c.cvegeo).distinct()
                                           .where(visits_table.c.fecha > since))}


def export(engine, path) -> Path:
    """Write every visit to ``path`` (.csv or .xlsx), spreadsheet formulas neutralised."""
    from ..publish.export import defuse_frame
    from ..publish.store import atomic_path

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise InputError("expected a file name ending in .csv or .xlsx", file=path)
    table = defuse_frame(frame(engine))
    table["fecha"] = table["fecha"].map(lambda d: d.isoformat())
    with atomic_path(path) as tmp:
        if suffix == ".csv":
            table.to_csv(tmp, index=False, encoding="utf-8", lineterminator="\n")
        else:
            table.to_excel(tmp, index=False, sheet_name="visitas", engine="openpyxl")
    return path


# -- workplace table (K_m for targeting) --------------------------------------------------
def replace_workplaces(engine, data: bytes, name: str, actor: str) -> int:
    """Replace the stored workplace table with a CSV ``cvegeo,count`` (one transaction).

    Raises :class:`InputError` (file, column, row) for a bad table; nothing changes then.
    """
    import tempfile

    from ..model.targeting import read_workplaces

    if len(data) > MAX_BYTES:
        raise TooLarge(f"file of {len(data):,} bytes; the limit is {MAX_BYTES:,} bytes",
                       file=name)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(name).name
        path.write_bytes(data)
        try:
            table = read_workplaces(path)
        except InputError as exc:
            raise InputError(exc.message.replace(str(path), name)) from None
    if table["cvegeo"].duplicated().any():
        code = table.loc[table["cvegeo"].duplicated(), "cvegeo"].iloc[0]
        raise InputError(f"municipality {code} appears twice", file=name, column="cvegeo")
    with writing(engine).begin() as conn:
        conn.execute(workplaces_table.delete())
        conn.execute(workplaces_table.insert(), table.to_dict("records"))
        record_audit(conn, actor, "workplaces", file=name, rows=len(table))
    return len(table)


def stored_workplaces(engine) -> pd.DataFrame | None:
    """The stored workplace table (``cvegeo, count``), or ``None`` when empty."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(workplaces_table.c.cvegeo,
                                      workplaces_table.c["count"])).all()
    if not rows:
        return None
    return pd.DataFrame(rows, columns=["cvegeo", "count"])
