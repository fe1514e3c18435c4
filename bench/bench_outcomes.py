"""Outcome imports and the field-validation page: riskmap vs a naive baseline, same run.

1. Import 100,000 visit records from a CSV into a fresh SQLite database (validation, one
   transaction, batched insert-or-ignore, conflict check) vs a naive row-by-row insert with
   a commit per row (measured on a sample, extrapolated per row). Goal: <= 10 s.
2. The summary page ``/resultados`` and ``GET /api/v1/resultados/resumen`` with those
   100,000 visits on the demo atlas: first request and warm median. Goal: <= 200 ms.

Usage::

    .venv/bin/python bench/bench_outcomes.py                 # builds the demo in a temp dir
    .venv/bin/python bench/bench_outcomes.py --demo-dir D    # reuse a built demo atlas

Writes only in a temporary folder (the demo directory is copied there when given).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
N = 100_000
NAIVE_SAMPLE = 2_000


def visit_frame(codes, n=N, seed=1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    found = rng.poisson(0.5, n)
    today = dt.date.today()
    return pd.DataFrame({
        "folio": [f"B-{i:07d}" for i in range(n)],
        "cvegeo": rng.choice(codes, n),
        "fecha": [(today - dt.timedelta(days=int(d))).isoformat()
                  for d in rng.integers(1, 700, n)],
        "establecimientos": 1 + rng.poisson(0.3, n),
        "nna_encontrados": found,
        "nna_peligroso": rng.binomial(found, 0.5),
        "sector": rng.choice(["11", "23", "46", ""], n),
        "notas": rng.choice(["", "sin novedad", "=SUM(A1)"], n),
    })


def naive_insert(url: str, frame: pd.DataFrame) -> float:
    """Seconds per row: one INSERT and one COMMIT per row, no batching."""
    import sqlalchemy as sa

    from riskmap.outcomes import db, visits

    engine = db.get_engine(url)
    records = visits.validate(frame.astype(str).replace("nan", ""), "naive.csv")
    start = time.perf_counter()
    for rec in records:
        with db.writing(engine).begin() as conn:
            conn.execute(sa.insert(db.visits).values(**rec))
    return (time.perf_counter() - start) / len(records)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    from riskmap.outcomes import db, users, visits
    from riskmap.publish.store import DataStore

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        if args.demo_dir:
            shutil.copytree(args.demo_dir, data, ignore=shutil.ignore_patterns("riskmap.sqlite*"))
        else:
            from riskmap.demo import build_demo

            print("building the demo atlas...", flush=True)
            build_demo(data)
        store = DataStore(data)
        codes = store.load_edition(store.edition_names()[-1]).rows["cvegeo"].astype(str)
        frame = visit_frame(codes.to_numpy())
        payload = frame.to_csv(index=False).encode("utf-8")
        print(f"file: {N:,} visits, {len(payload) / 1e6:.1f} MB CSV")

        naive_url = f"sqlite:///{tmp / 'naive.sqlite'}"
        per_row = naive_insert(naive_url, frame.head(NAIVE_SAMPLE))
        naive_total = per_row * N

        url = db.database_url({"data_dir": str(data)})
        engine = db.get_engine(url)
        start = time.perf_counter()
        result = visits.import_bytes(engine, payload, "bench.csv", "bench",
                                     known_codes=set(codes))
        ours = time.perf_counter() - start
        assert result.inserted == N
        start = time.perf_counter()
        again = visits.import_bytes(engine, payload, "bench.csv", "bench")
        reimport = time.perf_counter() - start
        assert again.unchanged == N

        print(f"import 100,000 (SQLite): riskmap {ours:6.2f} s   naive row-by-row "
              f"{naive_total:8.1f} s (extrapolated from {NAIVE_SAMPLE:,} rows)   "
              f"ratio {naive_total / ours:5.1f}x   goal <= 10 s: "
              f"{'met' if ours <= 10 else 'NOT met'}")
        print(f"re-import of the same 100,000 (no-op): {reimport:6.2f} s")

        from riskmap.web import create_app

        app = create_app({"data_dir": str(data), "auto_demo": False, "secret_key": "bench"})
        users.add_user(engine, "bench", "inspector", "bench password 123")
        token = users.issue_token(engine, "bench")
        client = app.test_client()
        html = client.get("/login").get_data(as_text=True)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
        client.post("/login", data={"usuario": "bench", "contrasena": "bench password 123",
                                    "csrf_token": csrf})
        for label, path, headers in (
                ("page /resultados", "/resultados", {}),
                ("API /resultados/resumen", "/api/v1/resultados/resumen",
                 {"Authorization": f"Bearer {token}"})):
            from riskmap.web import outcomes as web_outcomes

            web_outcomes._cache.clear()  # "first" = the summary computed from the database
            start = time.perf_counter()
            r = client.get(path, headers=headers)
            first = time.perf_counter() - start
            assert r.status_code == 200, r.status_code
            times = []
            for _ in range(15):
                start = time.perf_counter()
                client.get(path, headers=headers)
                times.append(time.perf_counter() - start)
            warm = statistics.median(times)
            print(f"{label:<26} first {first * 1000:7.0f} ms   warm median "
                  f"{warm * 1000:6.0f} ms   goal <= 200 ms: {'met' if warm <= 0.2 else 'NOT met'}")
        db.dispose_all()


if __name__ == "__main__":
    main()
