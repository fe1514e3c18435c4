"""Helpers for the inspection-outcome tests: clean databases, visit files."""

from __future__ import annotations

import datetime as dt
import io

import pandas as pd

FIELDS = ("folio", "cvegeo", "fecha", "establecimientos", "nna_encontrados", "nna_peligroso",
          "sector", "notas")


def reset_database(url: str) -> None:
    """Drop every outcomes table (and Alembic's version table) and forget cached engines."""
    import sqlalchemy as sa

    from riskmap.outcomes import db

    db.dispose_all()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for table in ("worklists", "visits", "workplaces", "login_failures", "api_tokens",
                      "audit", "users", "alembic_version"):
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table} CASCADE")
    engine.dispose()


def visit_rows(n: int, start: int = 0, prefix: str = "F", codes=("01001", "01002", "02001"),
               when: dt.date = dt.date(2024, 3, 1)) -> pd.DataFrame:
    """``n`` valid visit rows with folios prefix+number."""
    i = pd.RangeIndex(start, start + n)
    return pd.DataFrame({
        "folio": [f"{prefix}{k:07d}" for k in i],
        "cvegeo": [codes[k % len(codes)] for k in i],
        "fecha": [(when - dt.timedelta(days=int(k % 300))).isoformat() for k in i],
        "establecimientos": [1 + k % 3 for k in i],
        "nna_encontrados": [k % 4 for k in i],
        "nna_peligroso": [(k % 4) // 2 for k in i],
        "sector": ["11" if k % 2 else "" for k in i],
        "notas": ["" if k % 5 else f"nota {k}" for k in i],
    })


def csv_bytes(df: pd.DataFrame, encoding: str = "utf-8") -> bytes:
    return df.to_csv(index=False).encode(encoding)


def xlsx_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_excel(buf, index=False)
    return buf.getvalue()


#: A child process importing a CSV (argv: url, path, actor); prints "importing" first.
IMPORT_CHILD = """
import sys
from riskmap.outcomes import db, visits
url, path, actor = sys.argv[1:4]
engine = db.get_engine(url)
data = open(path, "rb").read()
records = visits.validate(visits.read_table(data, path), path)
print("importing", flush=True)
result = visits.import_records(engine, records, path, actor)
print("done", result.inserted, result.unchanged, flush=True)
"""
