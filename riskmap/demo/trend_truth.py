"""The demo's known trend drivers: the true decomposition of the 2017 -> 2023 change.

Computed directly from the true coefficients and the census records (no library code), so
that tests can check :mod:`riskmap.model.trend` against it: the sign of each driver and its
size inside the estimated interval.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.special import expit

from .population import RECORD_COVARIATES, TERRITORIAL

#: What the demo's story says changed between 2017 and 2023, and in which direction.
DRIVERS = {
    "composition": {"sign": -1, "covariates": ["attends_school", "head_social_security"],
                    "note": "school attendance and heads' social security rise between the "
                            "2015 and 2020 censuses: the population's composition lowers risk"},
    "behaviour": {"sign": 1, "covariates": ["head_agriculture"],
                  "note": "the agriculture coefficient grows (0.75 in 2017, 1.15 in 2023): the "
                          "same characteristics carry more risk"},
}


def _design(records, cropland) -> np.ndarray:
    cols = [np.ones(len(records))] + [records[c].to_numpy(dtype=float)
                                      for c in RECORD_COVARIATES]
    cols.append(np.asarray(cropland, dtype=float)[records["_mun"].to_numpy()])
    return np.column_stack(cols)


def true_trend(census_a, census_b, cropland_a, cropland_b, coef_a: dict, coef_b: dict) -> dict:
    """National change, composition, behaviour and Yun's parts under the true coefficients.

    Parameters
    ----------
    census_a, census_b : DataFrame
        Census records (with the hidden ``_mun`` row index) the two editions rest on.
    cropland_a, cropland_b : array-like
        Cropland share per municipality of each census's vintage.
    coef_a, coef_b : dict
        True coefficients ``{"intercept": .., covariate: ..}``.

    Returns
    -------
    dict
        ``change, composition, behaviour, composition_parts, behaviour_parts`` (covariate ->
        value; behaviour also ``intercept``) and the rates ``P_aa, P_ab, P_ba, P_bb``.
    """
    names = ["intercept", *RECORD_COVARIATES, TERRITORIAL]
    ba = np.array([coef_a[n] for n in names])
    bb = np.array([coef_b[n] for n in names])
    Xa, Xb = _design(census_a, cropland_a), _design(census_b, cropland_b)
    va, vb = census_a["weight"].to_numpy(), census_b["weight"].to_numpy()

    def P(X, v, beta):
        return float(np.sum(v * expit(X @ beta)) / np.sum(v))

    Paa, Pab, Pba, Pbb = P(Xa, va, ba), P(Xa, va, bb), P(Xb, vb, ba), P(Xb, vb, bb)
    comp = 0.5 * (Pba - Paa + Pbb - Pab)
    beh = 0.5 * (Pab - Paa + Pbb - Pba)
    xa, xb = (va @ Xa) / va.sum(), (vb @ Xb) / vb.sum()
    cterms = (0.5 * (ba + bb) * (xb - xa))[1:]
    bterms = 0.5 * (xa + xb) * (bb - ba)
    return {"change": Pbb - Paa, "composition": comp, "behaviour": beh,
            "composition_parts": {n: float(t / cterms.sum() * comp)
                                  for n, t in zip(names[1:], cterms)},
            "behaviour_parts": {n: float(t / bterms.sum() * beh) for n, t in zip(names, bterms)},
            "P_aa": Paa, "P_ab": Pab, "P_ba": Pba, "P_bb": Pbb}


def write_true_trend(folder: Path, a: str, b: str, census: dict, cropland: dict, coef: dict,
                     models) -> Path:
    """Write ``truth/trend_<a>_<b>.json``: the true decomposition and the story's drivers."""
    by = {m.edition: m for m in models}
    ma, mb = by[a], by[b]
    truth = true_trend(census[ma.census], census[mb.census],
                       np.asarray(cropland[ma.vintage]), np.asarray(cropland[mb.vintage]),
                       coef[a], coef[b])
    path = Path(folder) / f"trend_{a}_{b}.json"
    path.write_text(json.dumps({"a": a, "b": b, **truth, "drivers": DRIVERS}, indent=2)
                    + "\n", encoding="utf-8")
    return path
