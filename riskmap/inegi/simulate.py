"""Semi-synthetic Mexico: real INEGI geography and municipal shares, simulated child records.

The census table (ITER municipal totals, :func:`riskmap.inegi.iter.read_iter`) gives each
municipality's real shares: children by age group, school non-attendance (6-14, 15-17),
indigenous language, rurality, schooling (``GRAPROES``), health affiliation (``PDER_IMSS``,
``PSINDER``), household size (``PROM_OCUP``), dirt floors (``VPH_PISOTI``, CONAPO's
``piso_tierra_pct``, else dwellings without drainage ``VPH_DRENAJ``) and agricultural
employment (``pct_primario``) when the table has them.
Child records are drawn so that their municipal means follow those shares; within a
municipality, rural children are more often indigenous, in agricultural households, with
dirt floors and less schooled heads. A known true logistic model gives each child a
child-labour probability; surveys (ENTI-like: states as strata, PSUs drawn with probability
proportional to size, 25 children each, a small PSU shock) observe the outcome.

Everything published from here is labelled semi-synthetic: ``card["synthetic"] = True``,
sources "INEGI boundaries and municipal shares; simulated records", plus INEGI attribution.
It is NOT an estimate of child labour in Mexico.
"""

from __future__ import annotations

import functools
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit

from . import INEGI_ATTRIBUTION_EN, INEGI_ATTRIBUTION_ES
from ..publish.builders import EditionJob, publish_editions, store_vintages

COVARIATES = ("age", "male", "attends_school", "indigenous_language", "rural",
              "head_schooling_years", "head_agriculture", "head_social_security",
              "household_size", "dirt_floor")
SOURCES_NOTE = "INEGI boundaries and municipal shares; simulated records"
BANNER_ES = ("DATOS SEMISINTÉTICOS: geografía y proporciones municipales reales del INEGI, "
             "registros simulados con un modelo conocido; no son estimaciones oficiales de "
             "trabajo infantil.")
BANNER_EN = ("SEMI-SYNTHETIC DATA: real INEGI geography and municipal shares, records "
             "simulated from a known model; not official child-labour estimates.")


@dataclass(frozen=True)
class SimEdition:
    """One simulated edition: its name/year, national rate target and true slopes."""

    edition: str
    year: int
    survey: str
    rate: float
    slopes: dict
    on_old_vintage: bool = False  # MIRTI 2017 rested on the Intercensal 2015 geography


#: Published national rates (docs/METHOD.md §0) and slopes in line with Mexico's 2018 MIRTI factors.
EDITIONS = (
    SimEdition("2017", 2017, "MTI 2017", 0.110, {
        "age": 0.20, "male": 0.50, "attends_school": -1.20, "indigenous_language": 0.55,
        "rural": 0.45, "head_schooling_years": -0.07, "head_agriculture": 0.85,
        "head_social_security": -0.55, "household_size": 0.07, "dirt_floor": 0.35},
        on_old_vintage=True),
    SimEdition("2019", 2019, "ENTI 2019", 0.115, {
        "age": 0.19, "male": 0.50, "attends_school": -1.10, "indigenous_language": 0.50,
        "rural": 0.45, "head_schooling_years": -0.07, "head_agriculture": 0.90,
        "head_social_security": -0.50, "household_size": 0.08, "dirt_floor": 0.30}),
    SimEdition("2023", 2023, "ENTI 2022", 0.131, {
        "age": 0.21, "male": 0.45, "attends_school": -1.00, "indigenous_language": 0.45,
        "rural": 0.40, "head_schooling_years": -0.06, "head_agriculture": 0.95,
        "head_social_security": -0.45, "household_size": 0.08, "dirt_floor": 0.30}),
)


@dataclass
class SimConfig:
    """Sizes of the simulation (the defaults give a national run in well under a minute)."""

    n_census: int = 300_000
    min_census_per_municipality: int = 40
    max_census_per_municipality: int = 2_000
    n_survey: int = 45_000
    psu_size: int = 25
    psu_sd: float = 0.25
    editions: tuple = field(default_factory=lambda: EDITIONS)


# -- municipal parameters -------------------------------------------------------------------
def municipal_parameters(table: pd.DataFrame) -> pd.DataFrame:
    """Per-municipality generator parameters from an ITER-style table.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`riskmap.inegi.iter.read_iter` (``cvegeo`` plus raw/derived columns).

    Returns
    -------
    pandas.DataFrame
        Indexed by cvegeo: ``children`` (5-17), ``age_5, age_6_11, age_12_14, age_15_17``
        (shares), ``p_male, p_rural, p_hli, noatt_5, noatt_6_14, noatt_15_17, schooling,
        p_agri, p_ss, hh_size, p_dirt``. Missing values are filled with the children-weighted
        national median (so a municipality with a suppressed column still gets records);
        municipalities without a child count get ``children`` NaN (no records).
    """
    t = table.set_index("cvegeo")

    def get(name, default=np.nan):
        return t[name].astype(float) if name in t.columns else pd.Series(default, index=t.index)

    out = pd.DataFrame(index=t.index)
    out["children"] = get("pob_5_17")
    ages = pd.DataFrame({"age_5": get("P_3A5") / 3, "age_6_11": get("P_6A11"),
                         "age_12_14": get("P_12A14"), "age_15_17": get("P_15A17")})
    total = ages.sum(axis=1, min_count=4)
    ages = ages.div(total, axis=0)
    out = out.join(ages)
    out["p_male"] = get("POBMAS") / get("POBTOT")
    out["p_rural"] = get("pct_rural_lt2500") / 100
    out["p_hli"] = get("pct_hli_3ymas") / 100
    out["noatt_6_14"] = get("pct_6_14_no_asiste") / 100
    out["noatt_15_17"] = get("pct_15_17_no_asiste") / 100
    # age 5 (third year of pre-school) is attended less than primary school
    out["noatt_5"] = (0.10 + 2.0 * out["noatt_6_14"]).clip(0, 0.9)
    out["schooling"] = get("GRAPROES")
    if "pct_primario" in t.columns:
        out["p_agri"] = get("pct_primario") / 100
    else:  # no sector shares in ITER: rurality is the best proxy of farming households
        out["p_agri"] = (0.02 + 0.55 * out["p_rural"]).clip(0.01, 0.85)
    if "PDER_IMSS" in t.columns:
        # IMSS affiliates plus ~15 % for ISSSTE/PEMEX/armed forces: a social-security proxy
        out["p_ss"] = (1.15 * get("PDER_IMSS") / get("POBTOT")).clip(0.01, 0.95)
    else:
        out["p_ss"] = (0.5 * (1 - get("pct_sin_afiliacion") / 100)).clip(0.01, 0.95)
    out["hh_size"] = get("PROM_OCUP")
    if "VPH_PISOTI" in t.columns and "VIVPAR_HAB" in t.columns:
        out["p_dirt"] = get("VPH_PISOTI") / get("VIVPAR_HAB")
    elif "piso_tierra_pct" in t.columns:
        out["p_dirt"] = get("piso_tierra_pct") / 100
    elif "VPH_DRENAJ" in t.columns and "TOTHOG" in t.columns:
        # ITER's municipal table has no floor item; dwellings without drainage are the
        # closest VPH_* share (dirt floors are about half as frequent nationally)
        no_drain = (1 - get("VPH_DRENAJ") / get("TOTHOG")).clip(0, 1)
        out["p_dirt"] = (0.45 * no_drain + 0.04 * out["p_hli"]).clip(0, 0.6)
    else:
        out["p_dirt"] = (0.005 + 0.10 * out["p_rural"] + 0.12 * out["p_hli"]).clip(0, 0.6)
    weights = out["children"].fillna(0)
    for col in out.columns.drop("children"):
        values = out[col].replace([np.inf, -np.inf], np.nan)
        ok = values.notna() & (weights > 0)
        fill = _weighted_median(values[ok].to_numpy(), weights[ok].to_numpy()) if ok.any() \
            else _DEFAULTS[col]
        out[col] = values.fillna(fill)
    out[_AGE_GROUPS] = out[_AGE_GROUPS].div(out[_AGE_GROUPS].sum(axis=1), axis=0)
    probs = [c for c in out.columns if c.startswith(("p_", "noatt"))]
    out[probs] = out[probs].clip(0.0, 1.0)
    out.loc[~(out["children"] > 0), "children"] = np.nan
    return out


#: Age-group shares (5, 6-11, 12-14, 15-17) in :func:`draw_children`'s order.
_AGE_GROUPS = ["age_5", "age_6_11", "age_12_14", "age_15_17"]
_DEFAULTS = {"age_5": 1 / 13, "age_6_11": 6 / 13, "age_12_14": 3 / 13, "age_15_17": 3 / 13,
             "p_male": 0.49, "p_rural": 0.21, "p_hli": 0.06, "noatt_6_14": 0.04,
             "noatt_15_17": 0.25, "noatt_5": 0.18, "schooling": 9.7, "p_agri": 0.12,
             "p_ss": 0.40, "hh_size": 3.6, "p_dirt": 0.03}


def _weighted_median(values, weights) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, cum[-1] / 2)])


def _conditional(p_m, p_z, z, ratio):
    """Per-child probability given binary z, keeping the municipal mean p_m (before clipping).

    p1 / p0 = ratio and p_z * p1 + (1 - p_z) * p0 = p_m.
    """
    p0 = p_m / (p_z * ratio + 1 - p_z)
    return np.clip(np.where(z == 1, ratio * p0, p0), 0.0, 1.0)


def draw_children(params: pd.DataFrame, mun: np.ndarray, rng: np.random.Generator
                  ) -> pd.DataFrame:
    """Draw child records for municipality positions ``mun`` (rows of ``params``).

    Returns
    -------
    pandas.DataFrame
        ``cvegeo`` and the covariates of :data:`COVARIATES` (float).
    """
    n = len(mun)
    P = {c: params[c].to_numpy()[mun] for c in params.columns}
    groups = np.stack([P[c] for c in _AGE_GROUPS], axis=1)
    u = rng.random(n)
    group = (u[:, None] > np.cumsum(groups, axis=1)[:, :-1]).sum(axis=1)
    low = np.array([5, 6, 12, 15])[group]
    width = np.array([1, 6, 3, 3])[group]
    age = low + np.floor(rng.random(n) * width)
    male = (rng.random(n) < P["p_male"]).astype(float)
    rural = (rng.random(n) < P["p_rural"]).astype(float)
    hli = (rng.random(n) < _conditional(P["p_hli"], P["p_rural"], rural, 2.5)).astype(float)
    noatt = np.select([age == 5, age <= 14], [P["noatt_5"], P["noatt_6_14"]], P["noatt_15_17"])
    # indigenous and rural children attend school somewhat less, at the same municipal rate
    noatt_child = _conditional(noatt, P["p_rural"], rural, 1.6)
    attends = (rng.random(n) >= noatt_child).astype(float)
    school_mean = P["schooling"] - 1.8 * (rural - P["p_rural"]) - 1.5 * (hli - P["p_hli"])
    head_school = np.clip(np.round(rng.normal(school_mean, 3.2)), 0, 22)
    agri = (rng.random(n) < _conditional(P["p_agri"], P["p_rural"], rural, 4.0)).astype(float)
    ss_p = _conditional(P["p_ss"], P["p_rural"], rural, 0.35) * np.where(agri == 1, 0.5, 1.08)
    ss = (rng.random(n) < np.clip(ss_p, 0, 1)).astype(float)
    hh = 2.0 + rng.poisson(np.maximum(P["hh_size"] + 0.9 - 2.0, 0.3) + 0.6 * rural)
    dirt = (rng.random(n) < _conditional(P["p_dirt"], P["p_rural"], rural, 4.0)).astype(float)
    return pd.DataFrame({
        "cvegeo": params.index.to_numpy()[mun].astype(str),
        "age": age, "male": male, "attends_school": attends, "indigenous_language": hli,
        "rural": rural, "head_schooling_years": head_school, "head_agriculture": agri,
        "head_social_security": ss, "household_size": hh.astype(float), "dirt_floor": dirt,
    })


def linear_predictor(records: pd.DataFrame, intercept: float, slopes: dict) -> np.ndarray:
    eta = np.full(len(records), float(intercept))
    for name, beta in slopes.items():
        eta += beta * records[name].to_numpy(dtype=float)
    return eta


def calibrate_intercept(census: pd.DataFrame, slopes: dict, rate: float) -> float:
    """Intercept making the census population's mean probability equal ``rate``."""
    base = linear_predictor(census, 0.0, slopes)
    w = census["weight"].to_numpy()

    def gap(b):
        return float(np.average(expit(base + b), weights=w)) - rate

    return brentq(gap, -30.0, 30.0, xtol=1e-10)


def simulate_census(params: pd.DataFrame, config: SimConfig, rng) -> pd.DataFrame:
    """Census sample records: each municipality gets records ∝ sqrt(children), within
    [min, max] but never more than its children (a sample cannot exceed a full count: the
    smallest municipalities end up below the edition's minimum, as with real microdata);
    weights sum to the municipality's children 5-17."""
    have = params["children"].notna().to_numpy()
    kids = params["children"].fillna(0).to_numpy()
    root = np.sqrt(kids)
    n_m = np.where(have, np.clip(np.round(config.n_census * root / root[have].sum()),
                                 config.min_census_per_municipality,
                                 config.max_census_per_municipality), 0)
    n_m = np.minimum(n_m, np.round(kids)).astype(int)
    mun = np.repeat(np.arange(len(params)), n_m)
    census = draw_children(params, mun, rng)
    census.insert(1, "weight", (kids / np.maximum(n_m, 1))[mun])
    return census


def simulate_survey(params: pd.DataFrame, edition: SimEdition, intercept: float,
                    config: SimConfig, rng) -> pd.DataFrame:
    """ENTI-like survey: states are strata, PSUs are drawn with probability proportional to
    the municipality's children, ``psu_size`` children each; the outcome follows the true
    model plus a PSU shock (so the design effect is real)."""
    kids = params["children"].fillna(0)
    state = params.index.str[:2]
    state_kids = kids.groupby(state).sum()
    state_kids = state_kids[state_kids > 0]
    n_psu_total = max(config.n_survey // config.psu_size, 2 * len(state_kids))
    # allocation: half equal, half proportional (as national surveys do, for state precision)
    alloc = (0.5 * n_psu_total / len(state_kids)
             + 0.5 * n_psu_total * state_kids / state_kids.sum())
    alloc = np.maximum(np.round(alloc).astype(int), 2)
    parts = []
    psu_counter = 0
    for ent, k in alloc.items():
        members = np.flatnonzero((state == ent) & (kids.to_numpy() > 0))
        prob = kids.to_numpy()[members] / kids.to_numpy()[members].sum()
        chosen = rng.choice(members, size=k, replace=True, p=prob)
        mun = np.repeat(chosen, config.psu_size)
        rec = draw_children(params, mun, rng)
        psu = np.repeat(np.arange(psu_counter, psu_counter + k), config.psu_size)
        psu_counter += k
        rec.insert(1, "weight", state_kids[ent] / len(rec))
        rec.insert(2, "strata", ent)
        rec.insert(3, "psu", [f"{ent}-{p:05d}" for p in psu])
        shock = rng.normal(0.0, config.psu_sd, k)
        eta = linear_predictor(rec, intercept, edition.slopes) + np.repeat(shock, config.psu_size)
        rec.insert(4, "child_labour", (rng.random(len(rec)) < expit(eta)).astype(int))
        parts.append(rec)
    survey = pd.concat(parts, ignore_index=True)
    return survey


def parameters_on(params: pd.DataFrame, reverse_crosswalk: pd.DataFrame, codes) -> pd.DataFrame:
    """Carry municipal parameters to another vintage through an area crosswalk.

    Parameters
    ----------
    params : pandas.DataFrame
        :func:`municipal_parameters` on the vintage the table describes (indexed by cvegeo).
    reverse_crosswalk : pandas.DataFrame
        ``area_crosswalk(that vintage, other vintage)``: the share of each municipality of
        ``params`` lying in each municipality of the other vintage.
    codes : iterable of str
        Municipal codes of the other vintage.

    Returns
    -------
    pandas.DataFrame
        Same columns, indexed by ``codes``: children are split by area share, other
        parameters are children-weighted means of the pieces (children assumed spread evenly
        over each municipality's area). Codes no piece reaches get ``children`` NaN.
    """
    cw = reverse_crosswalk[reverse_crosswalk["cvegeo_from"].isin(params.index)]
    kids = params["children"].reindex(cw["cvegeo_from"]).to_numpy()
    w = np.nan_to_num(kids) * cw["share"].to_numpy()
    frame = params.drop(columns="children").reindex(cw["cvegeo_from"]).mul(w, axis=0)
    frame["_w"] = w
    frame["cvegeo"] = cw["cvegeo_to"].to_numpy()
    sums = frame.groupby("cvegeo").sum()
    out = sums.drop(columns="_w").div(sums["_w"].where(sums["_w"] > 0), axis=0)
    out.insert(0, "children", sums["_w"].where(sums["_w"] > 0))
    out = out.reindex(pd.Index([str(c) for c in codes], name="cvegeo"))
    for col in out.columns.drop("children"):
        out[col] = out[col].fillna(params[col].median())
    return out


def simulate_mexico(boundaries: gpd.GeoDataFrame, table: pd.DataFrame, seed: int = 2020,
                    config: SimConfig | None = None,
                    old_boundaries: gpd.GeoDataFrame | None = None) -> dict:
    """Simulate census and survey records on Mexico's real geography and shares.

    Parameters
    ----------
    boundaries : geopandas.GeoDataFrame
        Normalised boundaries (:func:`riskmap.ingest.boundaries.read_boundaries`).
    table : pandas.DataFrame
        Municipal census table (:func:`riskmap.inegi.iter.read_iter`).
    seed : int
    config : SimConfig, optional
    old_boundaries : geopandas.GeoDataFrame, optional
        An older vintage (e.g. the 2015 cartography): editions with ``on_old_vintage`` then
        get census records on it, the parameters carried over by area
        (:func:`parameters_on`).

    Returns
    -------
    dict
        ``params`` (municipal parameters, by cvegeo of the boundaries), ``census`` (records),
        ``census_old`` (records on ``old_boundaries`` or None), ``surveys``
        {edition: records}, ``truth`` {edition: {intercept, slopes, rate}}, ``no_data``
        (boundary codes without census data: they get no records).

    Warns
    -----
    UserWarning
        Table codes absent from the boundaries (ignored) and boundary codes without data.
    """
    config = config or SimConfig()
    rng = np.random.default_rng(seed)
    codes = boundaries["cvegeo"].astype(str)
    params_all = municipal_parameters(table)
    extra = sorted(set(params_all.index) - set(codes))
    if extra:
        warnings.warn(f"{len(extra)} code(s) of the census table are not in the boundaries "
                      "and are ignored: " + ", ".join(extra[:15]), stacklevel=2)
    params = params_all.reindex(pd.Index(codes, name="cvegeo"))
    for col in params.columns.drop("children"):
        params[col] = params[col].fillna(params_all[col].median())
    no_data = params.index[params["children"].isna()].tolist()
    if no_data:
        warnings.warn(f"{len(no_data)} municipalit{'y has' if len(no_data) == 1 else 'ies have'}"
                      " no census data and will be 'sin_informacion': "
                      + ", ".join(no_data[:15]), stacklevel=2)
    census = simulate_census(params, config, rng)
    census_old = params_old = None
    if old_boundaries is not None:
        from ..ingest.crosswalk import area_crosswalk

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # islands absent from one vintage
            reverse = area_crosswalk(boundaries, old_boundaries)
        params_old = parameters_on(params, reverse, old_boundaries["cvegeo"].astype(str))
        census_old = simulate_census(params_old, config, rng)
    surveys, truth = {}, {}
    for ed in config.editions:
        use_old = ed.on_old_vintage and census_old is not None
        base, p = (census_old, params_old) if use_old else (census, params)
        intercept = calibrate_intercept(base, ed.slopes, ed.rate)
        surveys[ed.edition] = simulate_survey(p, ed, intercept, config, rng)
        truth[ed.edition] = {"intercept": intercept, "slopes": dict(ed.slopes),
                             "rate": ed.rate, "survey_like": ed.survey, "year": ed.year,
                             "old_vintage": bool(use_old)}
    return {"params": params, "census": census, "census_old": census_old,
            "surveys": surveys, "truth": truth, "no_data": no_data}


def sources(boundaries_name: str, table_name: str, edition: SimEdition) -> list[dict]:
    """The sources of a semi-synthetic edition, real and simulated parts told apart."""
    note_es = "Semisintético: geografía y proporciones municipales del INEGI; registros simulados."
    note_en = "Semi-synthetic: " + SOURCES_NOTE + "."
    return [
        {"name": SOURCES_NOTE, "kind": "summary", "synthetic": True,
         "note_es": note_es, "note_en": note_en},
        {"name": f"INEGI, Marco Geoestadístico ({boundaries_name})", "kind": "boundaries",
         "synthetic": False},
        {"name": f"INEGI, Censo de Población y Vivienda 2020, ITER municipal ({table_name}): "
                 "municipal shares only", "kind": "census_shares", "synthetic": False},
        {"name": "Simulated census child records drawn from the municipal shares",
         "kind": "census", "synthetic": True, "note_es": note_es, "note_en": note_en},
        {"name": f"Simulated survey with a {edition.survey}-like design (known true model)",
         "kind": "survey", "synthetic": True, "note_es": note_es, "note_en": note_en},
    ]


def label_card(card: dict, truth: dict) -> dict:
    """Mark a card as semi-synthetic, with INEGI attribution and the true model."""
    card["synthetic"] = True
    card["semi_synthetic"] = True
    card["sources_note"] = SOURCES_NOTE
    card["attribution"] = {"es": f"{BANNER_ES} {INEGI_ATTRIBUTION_ES}",
                           "en": f"{BANNER_EN} {INEGI_ATTRIBUTION_EN}"}
    card["true_model"] = {"intercept": truth["intercept"], "slopes": truth["slopes"],
                          "rate": truth["rate"]}
    return card


def build_semisynthetic(data_dir, boundaries_path, table_path, seed: int = 2020,
                        vintage: str = "2020", config: SimConfig | None = None,
                        progress: Callable[[str], None] | None = None,
                        replace: bool = False, old_boundaries_path=None,
                        old_vintage: str = "2015") -> dict:
    """Simulate and publish the semi-synthetic editions on the real map of Mexico.

    Stores the boundary vintage (municipalities and dissolved states), the simulated
    records and truth under ``<data_dir>/semisynthetic/``, and publishes one edition per
    entry of ``config.editions`` with :meth:`DataStore.publish_edition`.

    Parameters
    ----------
    data_dir : str or Path
    boundaries_path, table_path : str or Path
        Boundary file (any GDAL format) and municipal ITER table.
    seed : int
    vintage : str, default "2020"
    config : SimConfig, optional
    progress : callable, optional
    replace : bool, default False
        Allow replacing editions of the same names that are not semi-synthetic (e.g. the
        synthetic demo's); without it such a data directory is refused, untouched.
    old_boundaries_path : str or Path, optional
        An older boundary vintage (e.g. the 2015 cartography). When given, it is stored as
        ``old_vintage`` with the crosswalks ``old_vintage <-> vintage``, and the 2017 edition
        is built on it (as MIRTI 2017 was), so editions compare through the real splits.
    old_vintage : str, default "2015"

    Returns
    -------
    dict
        ``published`` {edition: path}, ``truth``, ``no_data``, ``timings`` (seconds).

    Raises
    ------
    InputError
        Bad boundary or table file; other editions of the same names already published
        (unless ``replace``).
    """
    import time

    from ..errors import InputError
    from ..ingest.boundaries import read_boundaries
    from ..spec import load_spec
    from ..fileio import atomic_path
    from ..publish.store import DataStore, check_name
    from .iter import read_iter

    say = progress or (lambda message: None)
    check_name(vintage, "vintage")
    config = config or SimConfig()
    store = DataStore(data_dir)
    if not replace:
        published = set(store.edition_names())
        clash = [ed.edition for ed in config.editions
                 if ed.edition in published
                 and not store.load_card(ed.edition).get("semi_synthetic")]
        if clash:
            raise InputError(f"the data directory already publishes edition(s) "
                             f"{', '.join(clash)} that are not semi-synthetic (the demo?); "
                             "use another --data-dir, or --replace to overwrite them",
                             file=data_dir)
    timings = {}
    clock = time.perf_counter()
    boundaries = read_boundaries(boundaries_path)
    table = read_iter(table_path)
    old = None
    if old_boundaries_path is not None:
        check_name(old_vintage, "vintage")
        if old_vintage == vintage:
            raise InputError(f"the old vintage needs another name than {vintage!r}")
        old = read_boundaries(old_boundaries_path)
    timings["read"] = time.perf_counter() - clock

    clock = time.perf_counter()
    say(f"simulating records on {len(boundaries):,} municipalities")
    sim = simulate_mexico(boundaries, table, seed=seed, config=config, old_boundaries=old)
    timings["simulate"] = time.perf_counter() - clock

    vintages = {vintage: (boundaries, None)}
    if old is not None:
        vintages[old_vintage] = (old, None)
    timings.update(store_vintages(store, vintages,
                                  [(old_vintage, vintage), (vintage, old_vintage)]
                                  if old is not None else ()))
    out_dir = Path(data_dir) / "semisynthetic"
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "census.parquet") as tmp:
        sim["census"].to_parquet(tmp, index=False)
    if sim["census_old"] is not None:
        with atomic_path(out_dir / f"census_{old_vintage}.parquet") as tmp:
            sim["census_old"].to_parquet(tmp, index=False)
    for name, survey in sim["surveys"].items():
        with atomic_path(out_dir / f"survey_{name}.parquet") as tmp:
            survey.to_parquet(tmp, index=False)
    with atomic_path(out_dir / "truth.json") as tmp:
        tmp.write_text(json.dumps({"seed": seed, "note": SOURCES_NOTE, "editions": sim["truth"],
                                   "no_data": sim["no_data"]}, indent=2), encoding="utf-8")

    census_file = {vintage: "semisynthetic/census.parquet",
                   old_vintage: f"semisynthetic/census_{old_vintage}.parquet"}
    jobs = []
    for ed in config.editions:
        on_old = sim["truth"][ed.edition]["old_vintage"]
        census, geo, geo_path, geo_vintage = (
            (sim["census_old"], old, old_boundaries_path, old_vintage) if on_old
            else (sim["census"], boundaries, boundaries_path, vintage))
        jobs.append(EditionJob(
            ed.edition, ed.year, geo_vintage, sim["surveys"][ed.edition], census, geo,
            sources(Path(geo_path).name, Path(table_path).name, ed),
            survey_file=f"semisynthetic/survey_{ed.edition}.parquet",
            census_file=census_file[geo_vintage],
            label=functools.partial(label_card, truth=sim["truth"][ed.edition])))
    published, edition_times = publish_editions(store, jobs, load_spec(), synthetic=True,
                                                progress=progress,
                                                message="semi-synthetic edition {edition}")
    timings.update(edition_times)
    return {"published": published, "truth": sim["truth"], "no_data": sim["no_data"],
            "timings": {k: round(v, 2) for k, v in timings.items()}}
