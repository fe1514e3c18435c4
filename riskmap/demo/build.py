"""Build the synthetic demo atlas: inputs (geography, raster, census, surveys, truth), then editions.

Everything is drawn from ``numpy.random.default_rng`` streams spawned from one seed, one
stream per component, so the same seed gives the same files and changing one component's
size does not reshuffle the others.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyogrio

from .fields import SmoothField
from .geography import CRS, along_axis, build_geography
from .landscape import write_cropland
from .population import (RECORD_COVARIATES, TERRITORIAL, TRUE_MODELS, calibrate_intercept,
                         census_records, linear_predictor, municipal_profiles, survey_records)

DEFAULT_SEED = 20240601
VINTAGES = ("2015", "2020")
_STREAMS = ("geography", "fields", "raster", "profiles", "census_2015", "census_2020",
            "survey_2017", "survey_2019", "survey_2023")
NOTE_ES = "Datos sintéticos de demostración: no representan a ningún país real."
NOTE_EN = "Synthetic demo data: they do not represent any real country."


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of the demo country (the defaults make the full demo; tests use :meth:`small`).

    Attributes
    ----------
    n_states : int
        States (at most 32); survey strata are state x urban/rural.
    n_municipalities : int
        Municipalities of the older vintage (the newer one has ``n_splits`` more).
    n_splits : int
    cells_per_municipality : int
        Micro-cells per municipality (boundary detail).
    census_records : int
        Census child records per census (approximate; small municipalities get at least
        ``min_census_records``).
    min_census_records : int
    survey_children, survey_psu : int
        Children and PSUs per survey edition (approximate).
    raster_resolution : float
        Pixel size of ``cropland_share.tif`` in metres.
    total_children : float
        Children 5-17 in the older census (the newer has ~3 % more).
    """

    n_states: int = 32
    n_municipalities: int = 2400
    n_splits: int = 12
    cells_per_municipality: int = 14
    census_records: int = 500_000
    min_census_records: int = 12
    survey_children: int = 36_000
    survey_psu: int = 1_800
    raster_resolution: float = 1000.0
    total_children: float = 28.5e6

    @classmethod
    def small(cls) -> "DemoConfig":
        """A tiny country for fast tests (a few seconds)."""
        return cls(n_states=6, n_municipalities=150, n_splits=4, cells_per_municipality=10,
                   census_records=30_000, survey_children=8_000, survey_psu=400,
                   raster_resolution=5000.0)


def _streams(seed: int) -> dict:
    children = np.random.SeedSequence(seed).spawn(len(_STREAMS))
    return {name: np.random.default_rng(s) for name, s in zip(_STREAMS, children)}


def _say(progress, message):
    if progress is not None:
        progress(message)


def build_demo_inputs(data_dir, seed: int = DEFAULT_SEED,
                      progress: Callable[[str], None] | None = None,
                      config: DemoConfig | None = None) -> dict:
    """Generate the demo's harmonised input files under ``<data_dir>/demo/``.

    Parameters
    ----------
    data_dir : str or Path
    seed : int
        Same seed, same files.
    progress : callable, optional
        Called with a short message before each step.
    config : DemoConfig, optional
        Sizes; default the full demo.

    Returns
    -------
    dict
        Paths: ``boundaries`` {vintage: gpkg}, ``raster`` (tif), ``census`` {census: parquet},
        ``survey`` {edition: parquet}, ``truth`` {"coefficients": json, "municipal":
        {edition: csv}}, and ``editions`` {edition: {"vintage", "census", "year"}} plus
        ``timings`` {step: seconds}.
    """
    return _generate(Path(data_dir), seed, progress, config or DemoConfig())["paths"]


def _generate(data_dir: Path, seed: int, progress, config: DemoConfig) -> dict:
    """Generate the inputs; return the paths and the in-memory objects build_demo reuses."""
    out = data_dir / "demo"
    (out / "truth").mkdir(parents=True, exist_ok=True)
    rng = _streams(seed)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step):
        nonlocal clock
        now = time.perf_counter()
        timings[step] = round(now - clock, 3)
        clock = now

    _say(progress, "demo: drawing the fictional country (states, municipalities, splits)")
    old, new = VINTAGES
    geo = build_geography(rng["geography"], n_states=config.n_states,
                          n_municipalities=config.n_municipalities, n_splits=config.n_splits,
                          cells_per_municipality=config.cells_per_municipality,
                          vintages=VINTAGES)
    lap("geography")

    _say(progress, "demo: spatial covariate surfaces and the cropland raster")
    frng = rng["fields"]
    bounds = geo.outline.bounds
    surf = {k: SmoothField(frng, bounds, geo.cell_xy) for k in
            ("rural", "indigenous", "development", "crop")}
    along = along_axis(geo.cell_xy)
    # The south-east is more indigenous and less developed, as in Mexico.
    cell_fields = {
        "rural": surf["rural"](geo.cell_xy),
        "indigenous": surf["indigenous"](geo.cell_xy) + 0.5 * along,
        "development": 0.8 * surf["development"](geo.cell_xy) - 0.4 * surf["rural"](geo.cell_xy)
        - 0.3 * along,
        "crop": surf["crop"](geo.cell_xy),
    }
    raster_path = out / "cropland_share.tif"
    write_cropland(raster_path, rng["raster"], geo.outline, surf["crop"], surf["development"],
                   config.raster_resolution, CRS)
    lap("raster")

    _say(progress, "demo: writing boundaries (two vintages)")
    paths: dict = {"boundaries": {}, "census": {}, "survey": {}, "raster": raster_path,
                   "truth": {"municipal": {}}, "editions": {}}
    boundaries = {v: geo.municipios[v].to_crs(4326) for v in VINTAGES}
    estados = geo.estados.to_crs(4326)
    for v in VINTAGES:
        path = out / f"boundaries_{v}.gpkg"
        path.unlink(missing_ok=True)
        pyogrio.write_dataframe(boundaries[v], path, layer="municipios", driver="GPKG")
        pyogrio.write_dataframe(estados, path, layer="estados", driver="GPKG")
        paths["boundaries"][v] = path
    lap("boundaries")

    _say(progress, "demo: cropland share per municipality (zonal mean)")
    from ..ingest.raster import zonal_mean

    cropland = {v: zonal_mean(raster_path, geo.municipios[v]) for v in VINTAGES}
    lap("zonal_mean")

    _say(progress, "demo: municipal profiles and census records")
    n_old, n_new = len(geo.municipios[old]), len(geo.municipios[new])
    parent_of_new = np.arange(n_new)
    code_index = {c: i for i, c in enumerate(geo.municipios[old]["cvegeo"])}
    for parent, child in geo.splits.itertuples(index=False):
        parent_of_new[geo.municipios[new]["cvegeo"].tolist().index(child)] = code_index[parent]
    profiles = municipal_profiles(rng["profiles"], geo.cell_mun[old], geo.cell_mun[new],
                                  cell_fields, geo.cell_area, n_old, n_new, parent_of_new,
                                  config.total_children)
    profiles = {old: profiles["old"], new: profiles["new"]}
    codes = {v: geo.municipios[v]["cvegeo"].to_numpy() for v in VINTAGES}
    states = {v: geo.municipios[v]["cve_ent"].astype(int).to_numpy() - 1 for v in VINTAGES}
    census = {}
    for v in VINTAGES:
        records = census_records(rng[f"census_{v}"], profiles[v], codes[v], census=v,
                                 n_records=config.census_records,
                                 min_records=config.min_census_records)
        census[v] = records
        path = out / f"census_{v}.parquet"
        records.drop(columns="_mun").to_parquet(path, index=False)
        paths["census"][v] = path
    lap("census")

    _say(progress, "demo: true models, survey editions and truth files")
    truth_coef = {}
    surveys = {}
    for model in TRUE_MODELS:
        v = model.vintage
        crop_v = cropland[v].to_numpy()
        rec = census[v]
        eta = linear_predictor(rec, model.slopes, crop_v[rec["_mun"].to_numpy()])
        intercept = calibrate_intercept(eta, rec["weight"].to_numpy(), model.rate)
        p = 1.0 / (1.0 + np.exp(-(intercept + eta)))
        w = rec["weight"].to_numpy()
        mun = rec["_mun"].to_numpy()
        n = len(codes[v])
        children = np.bincount(mun, weights=w, minlength=n)
        truth = pd.DataFrame({"cvegeo": codes[v],
                              "true_probability": np.bincount(mun, weights=w * p, minlength=n)
                              / children,
                              "children": children,
                              "n_records": np.bincount(mun, minlength=n)})
        path = out / "truth" / f"municipal_{model.edition}.csv"
        truth.to_csv(path, index=False, float_format="%.10g")
        paths["truth"]["municipal"][model.edition] = path
        truth_coef[model.edition] = {"intercept": intercept, **model.slopes}
        survey = survey_records(rng[f"survey_{model.edition}"], profiles[v], codes[v],
                                states[v], census=model.census,
                                n_children=config.survey_children, n_psu=config.survey_psu,
                                model=model, intercept=intercept, cropland=crop_v)
        surveys[model.edition] = survey
        path = out / f"survey_{model.edition}.parquet"
        survey.drop(columns="_p").to_parquet(path, index=False)
        paths["survey"][model.edition] = path
        paths["editions"][model.edition] = {"vintage": v, "census": model.census,
                                            "year": model.year, "rate": model.rate}
    coef_path = out / "truth" / "coefficients.json"
    coef_path.write_text(json.dumps(truth_coef, indent=2, sort_keys=False) + "\n",
                         encoding="utf-8")
    paths["truth"]["coefficients"] = coef_path
    meta_path = out / "truth" / "editions.json"
    meta_path.write_text(json.dumps({"seed": seed, "config": asdict(config),
                                     "editions": paths["editions"],
                                     "splits": geo.splits.to_dict(orient="records"),
                                     "covariates": list(RECORD_COVARIATES) + [TERRITORIAL],
                                     "note_es": NOTE_ES, "note_en": NOTE_EN},
                                    indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    paths["truth"]["editions"] = meta_path
    lap("surveys_truth")
    paths["timings"] = timings
    return {"paths": paths, "geography": geo, "boundaries": boundaries, "estados": estados,
            "cropland": cropland, "census": census, "surveys": surveys}


def demo_sources(edition: str, census: str, vintage: str) -> list[dict]:
    """The sources of a demo edition, each clearly labelled as synthetic."""
    def item(name, kind):
        return {"name": name, "kind": kind, "synthetic": True, "note_es": NOTE_ES,
                "note_en": NOTE_EN}
    return [item(f"Encuesta sintética {edition} (survey_{edition}.parquet)", "survey"),
            item(f"Censo sintético {census} (census_{census}.parquet)", "census"),
            item(f"Marco geoestadístico sintético {vintage} (boundaries_{vintage}.gpkg)",
                 "boundaries"),
            item("Superficie agrícola sintética (cropland_share.tif)", "raster")]


def build_demo(data_dir, seed: int = DEFAULT_SEED, progress: Callable[[str], None] | None = None,
               config: DemoConfig | None = None) -> dict:
    """Build the synthetic demo atlas end to end and publish its editions.

    Generates the inputs (:func:`build_demo_inputs`), stores both geography vintages and
    the crosswalk between them, and fits, scores, classifies and publishes the editions
    2017 (census 2015, vintage 2015), 2019 and 2023 (census 2020, vintage 2020).

    Parameters
    ----------
    data_dir : str or Path
        The data directory (inputs go to ``<data_dir>/demo/``, editions to the store).
    seed : int
    progress : callable, optional
        Called with a short message before each step.
    config : DemoConfig, optional

    Returns
    -------
    dict
        The input paths of :func:`build_demo_inputs`, plus ``published`` {edition: gpkg} and
        ``timings`` {step: seconds} covering every step.
    """
    from ..crosswalk import area_crosswalk
    from ..paths import MODELS_DIR
    from ..pipeline import build_edition
    from ..spec import load_spec
    from ..store import DataStore

    data_dir = Path(data_dir)
    gen = _generate(data_dir, seed, progress, config or DemoConfig())
    paths = gen["paths"]
    timings = paths["timings"]
    clock = time.perf_counter()
    store = DataStore(data_dir)
    old, new = VINTAGES

    _say(progress, "demo: storing geography vintages and the crosswalk")
    for v in VINTAGES:
        store.save_vintage(v, gen["boundaries"][v], gen["estados"])
    municipios = gen["geography"].municipios
    crosswalk = area_crosswalk(municipios[old], municipios[new])
    store.save_crosswalk(old, new, crosswalk)
    timings["store_geography"] = round(time.perf_counter() - clock, 3)

    spec = load_spec(MODELS_DIR / "demo.toml")
    paths["published"] = {}
    for model in TRUE_MODELS:
        clock = time.perf_counter()
        _say(progress, f"demo: edition {model.edition}")
        survey = gen["surveys"][model.edition].drop(columns="_p")
        survey.attrs["file"] = paths["survey"][model.edition].name
        census = gen["census"][model.census].drop(columns="_mun")
        census.attrs["file"] = paths["census"][model.census].name
        edition = build_edition(
            model.edition, survey, census, gen["boundaries"][model.vintage], spec,
            vintage=model.vintage, year=model.year,
            sources=demo_sources(model.edition, model.census, model.vintage), synthetic=True,
            territorial={TERRITORIAL: gen["cropland"][model.vintage]}, progress=progress)
        paths["published"][model.edition] = store.publish_edition(edition)
        timings[f"edition_{model.edition}"] = round(time.perf_counter() - clock, 3)
    _say(progress, "demo: done (synthetic demo data / datos sintéticos de demostración)")
    return paths
