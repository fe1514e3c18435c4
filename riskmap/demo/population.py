"""The demo population: municipal profiles, child records, the true model, census and surveys.

One population process generates both the census records and the survey records: a child of
municipality ``m`` living in a rural (or urban) locality gets covariates from the same
conditional distributions whichever instrument observes it. Children are grouped in clusters
(census blocks, survey PSUs) that share a small shock on household-head characteristics, as
neighbours do. The outcome follows a logistic model in the spec's covariates (the true
model) plus a municipal random intercept u_m ~ N(0, AREA_EFFECT_SD^2) (an "area effect": what
sets a municipality apart beyond its covariates), so the synthetic estimator misses part of
the between-municipality variation and a mixed model (EBP) can recover it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit

#: Record covariates of models/demo.toml, in spec order.
RECORD_COVARIATES = ("age", "male", "attends_school", "indigenous_language", "rural",
                     "head_schooling_years", "head_agriculture", "head_social_security",
                     "household_size", "dirt_floor")
TERRITORIAL = "cropland_share"

#: Standard deviation of the true municipal random intercept (logit scale); a moderate value
#: for small-area data (docs/METHOD.md §9).
AREA_EFFECT_SD = 0.4


@dataclass(frozen=True)
class TrueModel:
    """One edition's true model: which census it rests on, its rate and slopes.

    ``slopes`` excludes the intercept, which :func:`calibrate_intercept` derives so that the
    census population's rate equals ``rate``.
    """

    edition: str
    census: str
    vintage: str
    year: int
    rate: float
    slopes: dict


# Slopes change between editions (e.g. the school-attendance effect weakens, the cropland
# effect grows), as the factor weights of MIRTI 2017 and 2023 did.
TRUE_MODELS = (
    TrueModel("2017", census="2015", vintage="2015", year=2017, rate=0.110, slopes={
        "age": 0.20, "male": 0.55, "attends_school": -1.10, "indigenous_language": 0.40,
        "rural": 0.45, "head_schooling_years": -0.07, "head_agriculture": 0.75,
        "head_social_security": -0.50, "household_size": 0.08, "dirt_floor": 0.30,
        "cropland_share": 1.20}),
    TrueModel("2019", census="2020", vintage="2020", year=2019, rate=0.115, slopes={
        "age": 0.19, "male": 0.50, "attends_school": -1.00, "indigenous_language": 0.35,
        "rural": 0.40, "head_schooling_years": -0.06, "head_agriculture": 0.80,
        "head_social_security": -0.45, "household_size": 0.10, "dirt_floor": 0.35,
        "cropland_share": 1.00}),
    TrueModel("2023", census="2020", vintage="2020", year=2023, rate=0.131, slopes={
        "age": 0.21, "male": 0.45, "attends_school": -0.90, "indigenous_language": 0.30,
        "rural": 0.35, "head_schooling_years": -0.05, "head_agriculture": 1.15,
        "head_social_security": -0.40, "household_size": 0.09, "dirt_floor": 0.25,
        "cropland_share": 1.40}),
)

#: Secular change of the population process between the two censuses (2020 vs 2015). With
#: the agriculture coefficient's growth above (0.75 in 2017, 1.15 in 2023) these are the known
#: drivers of the 2017 -> 2023 trend (truth/trend_2017_2023.json): composition lowers risk
#: (school attendance and heads' social security rise), behaviour raises it.
YEAR_SHIFT = {"2015": {"schooling": 0.0, "attendance": 0.0, "floor": 0.0, "social": 0.0},
              "2020": {"schooling": 0.6, "attendance": 0.25, "floor": -0.35, "social": 0.5}}


def municipal_profiles(rng, cell_mun_old, cell_mun_new, cell_fields, cell_area, n_old, n_new,
                       parent_of_new, total_children) -> dict:
    """Latent municipal profiles for both vintages.

    Parameters
    ----------
    rng : numpy.random.Generator
    cell_mun_old, cell_mun_new : (n_cells,) int arrays
        Municipality index of each micro-cell in the older / newer vintage.
    cell_fields : dict of (n_cells,) arrays
        Standardised smooth fields ``rural, indigenous, development, crop``.
    cell_area : (n_cells,) array
    n_old, n_new : int
        Number of municipalities per vintage.
    parent_of_new : (n_new,) int array
        Index of the older-vintage municipality each newer one descends from (itself if
        unchanged), so both vintages share the municipal idiosyncrasies.
    total_children : float
        Children 5-17 of the country in the older vintage.

    Returns
    -------
    dict
        ``{"old": DataFrame, "new": DataFrame}`` with columns ``children, rural_share,
        indigenous_logit, development, agriculture``.
    """
    noise = {k: rng.normal(0.0, s, n_old) for k, s in
             (("rural", 0.5), ("indigenous", 0.5), ("development", 0.3), ("size", 1.0),
              ("agriculture", 0.3))}
    growth = rng.lognormal(np.log(1.03), 0.05, n_old)
    out = {}
    for key, cell_mun, n, parent in (("old", cell_mun_old, n_old, np.arange(n_old)),
                                     ("new", cell_mun_new, n_new, parent_of_new)):
        area = np.bincount(cell_mun, weights=cell_area, minlength=n)
        mean = {f: np.bincount(cell_mun, weights=v * cell_area, minlength=n) / area
                for f, v in cell_fields.items()}
        log_size = noise["size"][parent] + 0.35 * mean["development"] - 0.25 * mean["rural"]
        # Bigger municipalities are more urban, as in Mexico.
        rural_logit = (0.0 + 1.0 * mean["rural"] + noise["rural"][parent]
                       - 0.35 * (log_size - log_size.mean()))
        df = pd.DataFrame({
            "log_size": log_size,
            "rural_share": expit(rural_logit),
            "indigenous_logit": -2.9 + 1.2 * mean["indigenous"] + noise["indigenous"][parent],
            "development": mean["development"] + noise["development"][parent],
            "agriculture": 0.7 * mean["crop"] + noise["agriculture"][parent],
        })
        out[key] = df
    old = out["old"]
    weights = np.exp(old["log_size"].to_numpy())
    old["children"] = weights / weights.sum() * total_children
    new = out["new"]
    # A split shares its parent's children in proportion to the parts' areas.
    area_new = np.bincount(cell_mun_new, weights=cell_area, minlength=n_new)
    area_parent = np.bincount(parent_of_new, weights=area_new, minlength=n_old)
    new["children"] = (old["children"].to_numpy()[parent_of_new] * growth[parent_of_new]
                       * area_new / area_parent[parent_of_new])
    return {"old": old.drop(columns="log_size"), "new": new.drop(columns="log_size")}


def draw_children(rng, profiles: pd.DataFrame, mun: np.ndarray, rural: np.ndarray,
                  cluster: np.ndarray, census: str) -> pd.DataFrame:
    """Draw the covariates of children given their municipality, locality type and cluster.

    Parameters
    ----------
    rng : numpy.random.Generator
    profiles : DataFrame
        Municipal profiles (see :func:`municipal_profiles`), positional index.
    mun : (n,) int array
        Municipality (row of ``profiles``) of each child.
    rural : (n,) 0/1 array
        Rural locality.
    cluster : (n,) int array
        Cluster ids (0..k-1); children of a cluster share shocks.
    census : str
        "2015" or "2020": which secular level of schooling, attendance and floors applies.

    Returns
    -------
    DataFrame with the record covariates (float64), in :data:`RECORD_COVARIATES` order.
    """
    n = len(mun)
    shift = YEAR_SHIFT[census]
    k = int(cluster.max()) + 1 if n else 0
    shock_school = rng.normal(0.0, 1.0, k)[cluster]
    shock_agri = rng.normal(0.0, 0.4, k)[cluster]
    dev = profiles["development"].to_numpy()[mun]
    agri = profiles["agriculture"].to_numpy()[mun]
    r = rural.astype(float)

    age = rng.integers(5, 18, n).astype(float)
    male = (rng.random(n) < 0.51).astype(float)
    ind = (rng.random(n) < expit(profiles["indigenous_logit"].to_numpy()[mun] + 0.8 * r))
    ind = ind.astype(float)
    school = 0.0 + np.clip(np.round(rng.normal(9.3 + 0.9 * dev - 2.4 * r - 1.8 * ind + shock_school
                                         + shift["schooling"], 3.0)), 0, 22)
    s9 = school - 9.0
    head_agri = rng.random(n) < expit(-2.3 + 2.0 * r + 0.9 * agri - 0.12 * s9 + shock_agri)
    head_agri = head_agri.astype(float)
    social = rng.random(n) < expit(0.4 - 1.1 * r - 1.0 * head_agri + 0.16 * s9 + 0.4 * dev
                                   + shift["social"])
    hh_size = np.clip(2 + rng.poisson(np.exp(np.log(2.4) + 0.12 * r + 0.15 * ind - 0.03 * s9)),
                      2, 15).astype(float)
    dirt = rng.random(n) < expit(-3.0 + 1.1 * r + 1.0 * ind - 0.15 * s9 - 0.5 * dev
                                 + shift["floor"])
    attends = rng.random(n) < expit(4.3 - 0.95 * np.maximum(age - 13, 0) + 0.12 * s9
                                    - 0.5 * r - 0.4 * ind + shift["attendance"])
    return pd.DataFrame({
        "age": age, "male": male, "attends_school": attends.astype(float),
        "indigenous_language": ind, "rural": r, "head_schooling_years": school,
        "head_agriculture": head_agri, "head_social_security": social.astype(float),
        "household_size": hh_size, "dirt_floor": dirt.astype(float),
    })


def linear_predictor(records: pd.DataFrame, slopes: dict, territorial: np.ndarray) -> np.ndarray:
    """x'beta without the intercept (``territorial``: cropland share of each record's municipality)."""
    eta = slopes[TERRITORIAL] * territorial
    for name in RECORD_COVARIATES:
        eta = eta + slopes[name] * records[name].to_numpy()
    return eta


def calibrate_intercept(eta: np.ndarray, weight: np.ndarray, rate: float) -> float:
    """Intercept making the weighted mean of expit(intercept + eta) equal ``rate``."""
    def gap(b0):
        return np.average(expit(b0 + eta), weights=weight) - rate
    return float(brentq(gap, -30.0, 30.0, xtol=1e-12))


def census_records(rng, profiles: pd.DataFrame, codes: np.ndarray, census: str,
                   n_records: int, min_records: int = 12, block: int = 20) -> pd.DataFrame:
    """A census child sample (Intercensal / long-form style) with expansion weights.

    Small municipalities are sampled at higher rates (records grow like children^0.6), as
    census long forms do, so every municipality gets at least ``min_records`` records.

    Returns
    -------
    DataFrame: ``cvegeo, weight`` + record covariates; the hidden column ``_mun`` (row of
    ``profiles``) is kept for the truth and dropped before writing.
    """
    children = profiles["children"].to_numpy()
    raw = children ** 0.6
    n_m = np.maximum(min_records, np.round(raw / raw.sum() * n_records)).astype(int)
    mun = np.repeat(np.arange(len(children)), n_m)
    rural = (rng.random(len(mun)) < profiles["rural_share"].to_numpy()[mun]).astype(int)
    # Blocks of ~``block`` neighbouring children of the same municipality and locality type.
    order = np.lexsort((rural, mun))
    mun, rural = mun[order], rural[order]
    group_start = np.r_[True, (mun[1:] != mun[:-1]) | (rural[1:] != rural[:-1])]
    group = np.cumsum(group_start) - 1
    first = np.flatnonzero(group_start)
    pos = np.arange(len(mun)) - first[group]
    # Consecutive block numbers: records are sorted by group, and blocks within a group.
    block_start = np.r_[True, (group[1:] != group[:-1]) | (pos[1:] // block != pos[:-1] // block)]
    cluster = np.cumsum(block_start) - 1
    records = draw_children(rng, profiles, mun, rural, cluster, census)
    jitter = rng.lognormal(0.0, 0.15, len(mun))
    # Weights sum exactly to the municipality's children.
    weight = jitter * (children / np.bincount(mun, weights=jitter, minlength=len(children)))[mun]
    records.insert(0, "weight", weight)
    records.insert(0, "cvegeo", pd.array(codes[mun], dtype="str"))
    records["_mun"] = mun
    return records


def survey_records(rng, profiles: pd.DataFrame, codes: np.ndarray, states: np.ndarray,
                   census: str, n_children: int, n_psu: int, model: TrueModel,
                   intercept: float, cropland: np.ndarray,
                   area_effect: np.ndarray | None = None) -> pd.DataFrame:
    """A stratified two-stage cluster sample of the population, with outcomes.

    Strata are state x urban/rural. PSUs (segments of localities) are allocated to strata in
    proportion to the square root of their children (at least two per stratum), drawn with
    probability proportional to size (municipality children in that locality type), and a
    fixed take of children is drawn in each, so weights are equal within a stratum up to a
    non-response adjustment.

    ``area_effect`` (one value per row of ``profiles``), when given, is added to every child's
    linear predictor: the municipal random intercept the covariates do not explain.

    Returns
    -------
    DataFrame: ``cvegeo, weight, strata, psu, child_labour`` + record covariates, plus the
    hidden column ``_p`` (true probability, for checks; dropped before writing).
    """
    children = profiles["children"].to_numpy()
    share_r = profiles["rural_share"].to_numpy()
    n_states = int(states.max()) + 1
    # Stratum h = 2*state + rural; size of each (municipality, type) cell of the frame.
    size = np.column_stack([children * (1 - share_r), children * share_r])
    stratum_size = np.zeros(2 * n_states)
    np.add.at(stratum_size, 2 * states, size[:, 0])
    np.add.at(stratum_size, 2 * states + 1, size[:, 1])
    take = max(2, int(round(n_children / n_psu)))
    alloc = np.sqrt(stratum_size)
    n_h = np.maximum(2, np.round(alloc / alloc.sum() * n_psu)).astype(int)
    psu_mun, psu_rural, psu_stratum = [], [], []
    for h in range(2 * n_states):
        s, t = divmod(h, 2)
        members = np.flatnonzero(states == s)
        p = size[members, t] / size[members, t].sum()
        psu_mun.append(rng.choice(members, size=n_h[h], replace=True, p=p))
        psu_rural.append(np.full(n_h[h], t))
        psu_stratum.append(np.full(n_h[h], h))
    psu_mun = np.concatenate(psu_mun)
    psu_rural = np.concatenate(psu_rural)
    psu_stratum = np.concatenate(psu_stratum)
    n_total_psu = len(psu_mun)
    psu = np.repeat(np.arange(n_total_psu), take)
    mun, rural = psu_mun[psu], psu_rural[psu]
    records = draw_children(rng, profiles, mun, rural, psu, census)
    eta = intercept + linear_predictor(records, model.slopes, cropland[mun])
    if area_effect is not None:  # the municipal random intercept u_m (additive, logit scale)
        eta = eta + area_effect[mun]
    p = expit(eta)
    y = (rng.random(len(p)) < p).astype(int)
    base = stratum_size[psu_stratum] / (n_h[psu_stratum] * take)
    weight = base[psu] * rng.lognormal(0.0, 0.2, len(psu))
    cve_ent = np.char.zfill((psu_stratum // 2 + 1).astype(str), 2)
    kind = np.where(psu_rural == 1, "R", "U")
    strata_label = np.char.add(np.char.add(cve_ent, "-"), kind)
    psu_label = np.char.add(np.char.add(strata_label, "-"),
                            np.char.zfill(np.arange(1, n_total_psu + 1).astype(str), 4))
    records.insert(0, "child_labour", y)
    records.insert(0, "psu", pd.array(psu_label[psu], dtype="str"))
    records.insert(0, "strata", pd.array(strata_label[psu], dtype="str"))
    records.insert(0, "weight", weight)
    records.insert(0, "cvegeo", pd.array(codes[mun], dtype="str"))
    records["_p"] = p
    return records


