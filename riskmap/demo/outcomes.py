"""Synthetic inspection outcomes for the demo, drawn from its truth (flagged synthetic).

Visits go to municipalities of the newest demo edition; each inspects ``1 + Poisson(0.3)``
workplaces and finds ``Poisson(workplaces · λ · (p_m / r)^β)`` children, where ``p_m`` is the
municipality's *true* probability, ``r`` the true national rate (children-weighted), and
:data:`TRUE_LAMBDA`, :data:`TRUE_SLOPE` the values the field validation should recover
(``truth/outcomes.json`` records them).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd

TRUE_LAMBDA = 0.4
TRUE_SLOPE = 1.0
N_VISITS = 3000
FILE_NAME = "visitas_sinteticas.csv"
#: Visits fall in the two years before this date: fixed, so that the same seed gives the same
#: file and rebuilding the demo re-imports it as a no-op.
ANCHOR = dt.date(2024, 12, 31)
NOTE = "Visita sintética de demostración (no es un registro real)"
_SECTORS = ("11", "23", "31", "43", "46", "72", "81")


def synthetic_visits(truth: pd.DataFrame, seed: int, n: int = N_VISITS,
                     today: dt.date | None = None, prefix: str = "DEMO") -> pd.DataFrame:
    """Draw ``n`` visit records from a truth table (``cvegeo, true_probability, children``).

    Municipalities are chosen with probability proportional to ``sqrt(children) · p_m`` (as
    an inspectorate that follows a risk map would); dates fall in the two years before
    ``today`` (default :data:`ANCHOR`). Returns a frame with the visit-record columns.
    """
    rng = np.random.default_rng([seed, 10])
    today = today or ANCHOR
    p = truth["true_probability"].to_numpy(dtype=float)
    kids = truth["children"].to_numpy(dtype=float)
    rate = float(np.sum(p * kids) / np.sum(kids))
    weight = np.sqrt(kids) * p
    pick = rng.choice(len(truth), size=n, p=weight / weight.sum())
    work = 1 + rng.poisson(0.3, n)
    mean = work * TRUE_LAMBDA * (p[pick] / rate) ** TRUE_SLOPE
    found = rng.poisson(mean)
    hazardous = rng.binomial(found, 0.6)
    days = rng.integers(1, 730, n)
    return pd.DataFrame({
        "folio": [f"{prefix}-{i + 1:06d}" for i in range(n)],
        "cvegeo": truth["cvegeo"].astype(str).str.zfill(5).to_numpy()[pick],
        "fecha": [(today - dt.timedelta(days=int(d))).isoformat() for d in days],
        "establecimientos": work,
        "nna_encontrados": found,
        "nna_peligroso": hazardous,
        "sector": rng.choice(_SECTORS, n),
        "notas": NOTE,
    })


def write_synthetic_visits(demo_dir, edition: str, seed: int) -> Path:
    """Write ``<demo_dir>/visitas_sinteticas.csv`` and ``truth/outcomes.json``; return the CSV."""
    demo_dir = Path(demo_dir)
    truth = pd.read_csv(demo_dir / "truth" / f"municipal_{edition}.csv", dtype={"cvegeo": str})
    visits = synthetic_visits(truth, seed)
    path = demo_dir / FILE_NAME
    visits.to_csv(path, index=False, encoding="utf-8")
    p, kids = truth["true_probability"], truth["children"]
    (demo_dir / "truth" / "outcomes.json").write_text(json.dumps({
        "edition": edition, "synthetic": True, "file": FILE_NAME, "visits": len(visits),
        "lambda": TRUE_LAMBDA, "slope": TRUE_SLOPE,
        "national_rate": float((p * kids).sum() / kids.sum()),
        "model": "found ~ Poisson(workplaces * lambda * (p_m / r)^slope), p_m the true "
                 "municipal probability"}, indent=2) + "\n", encoding="utf-8")
    return path
