"""Build an edition end to end: fit -> score -> classify -> factors -> :class:`Edition`.

:func:`build_edition` works on records already in memory (the demo calls it);
:func:`build_and_publish` reads the user's files, builds, and publishes atomically, so a
failure at any step leaves previously published editions byte-for-byte intact.
"""

from __future__ import annotations

import re
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import geopandas as gpd
import numpy as np
import pandas as pd

from ..model import factors, levels, score
from .edition import EXTRA_COLUMNS, LEVELS, ROW_COLUMNS, Edition
from ..errors import InputError, ModelError
from ..jsonable import jsonable
from ..ingest.boundaries import read_boundaries, vintage_name
from ..ingest.records import join_territorial, read_records, validate_codes
from ..model.diagnostics import diagnose
from ..model.logit import SurveyLogit
from ..provenance import attribution
from ..spec import load_spec
from .builders import link_vintage
from .store import DataStore, check_name

BOUNDARY_COLUMNS = ("cvegeo", "cve_ent", "cve_mun", "nom_ent", "nom_mun")

#: docs/METHOD.md §12 (limits of a purely synthetic estimator), for the card and the method page.
LIMITATIONS_ES = (
    "Estimador sintético sin efectos de área: subestima la variación entre municipios.",
    "Los intervalos reflejan la incertidumbre de los coeficientes del modelo y del muestreo "
    "censal, no la del propio modelo.",
    "Las variables de la encuesta y del censo deben estar armonizadas (misma definición).",
    "La encuesta y el censo corresponden a años distintos.",
)
LIMITATIONS_EN = (
    "Synthetic estimator without area effects: it understates between-municipality variation.",
    "Intervals reflect the uncertainty of the model coefficients and of census sampling, not "
    "model misspecification.",
    "Survey and census variables must be harmonised (same definitions).",
    "The survey and the census are years apart.",
)


#: Limits of the EBP estimator (docs/METHOD.md §9), for the card of an EBP edition.
LIMITATIONS_EBP_ES = (
    "Estimador EBP con efecto aleatorio municipal: los municipios sin niñas ni niños en la "
    "encuesta reciben el promedio marginal del modelo y un intervalo que incluye la varianza "
    "entre municipios.",
    "El error cuadrático medio y los intervalos vienen de un bootstrap paramétrico que supone "
    "correcto el modelo (logístico con intercepto aleatorio normal).",
    "Las variables de la encuesta y del censo deben estar armonizadas (misma definición).",
    "La encuesta y el censo corresponden a años distintos.",
)
LIMITATIONS_EBP_EN = (
    "EBP estimator with a municipal random effect: municipalities without survey children get "
    "the model's marginal mean and an interval that includes the between-municipality "
    "variance.",
    "Mean squared errors and intervals come from a parametric bootstrap that assumes the model "
    "(logistic with a normal random intercept) is right.",
    "Survey and census variables must be harmonised (same definitions).",
    "The survey and the census are years apart.",
)
ESTIMATORS = ("synthetic", "ebp")


def _noop(message: str) -> None:
    return None


def build_edition(name, survey: pd.DataFrame, census: pd.DataFrame,
                  boundaries: gpd.GeoDataFrame, spec, *, vintage, year, sources, synthetic,
                  territorial: dict | None = None, min_records: int = 30,
                  progress: Callable[[str], None] | None = None,
                  census_sample: bool = True, level_rule=None,
                  estimator: str = "synthetic",
                  bootstrap: int = 200, bootstrap_seed: int = 20240601,
                  benchmark: bool = False, n_jobs: int | None = None) -> Edition:
    """Fit the model on the survey, score the census, classify and explain municipalities.

    Parameters
    ----------
    name : str
        Edition name (a safe file-name token, e.g. ``"2023"``).
    survey, census : DataFrame
        Harmonised records (:func:`riskmap.ingest.records.read_records`).
    boundaries : GeoDataFrame
        ``cvegeo, cve_ent, cve_mun, nom_ent, nom_mun, geometry``; every municipality appears
        in the result, ``sin_informacion`` where there are no (or too few) census records.
    spec : riskmap.spec.ModelSpec
    vintage : str
        Geography vintage name of ``boundaries``.
    year : int or None
        Reference year of the edition (sorting, display).
    sources : list of str or dict
        Data sources, shown in the attribution (a dict needs a ``name``).
    synthetic : bool
        True for demonstration data (outputs carry the synthetic banner).
    territorial : dict, optional
        ``{covariate: Series by cvegeo}`` for territorial covariates not already columns.
    min_records : int, default 30
        Municipalities with fewer census child records are ``sin_informacion``.
    progress : callable, optional
        Called with a short message before each step.
    census_sample : bool, default True
        The census records are a sample (Intercensal, Censo long form): add the
        census-sample variance. False for a full count (that variance is zero).
    level_rule : str or riskmap.model.rules.LevelRule, optional
        The level rule (:func:`riskmap.model.rules.get_rule`; default ``mirti``).
    estimator : {"synthetic", "ebp"}, default "synthetic"
        ``"synthetic"``: the classic MIRTI estimator (docs/METHOD.md §2). ``"ebp"``: the
        empirical best predictor of a logistic mixed model with a municipal random intercept
        (§9, :func:`riskmap.model.ebp_predict.ebp_municipalities`); the synthetic estimate is
        kept in the ``*_synthetic`` columns.
    bootstrap, bootstrap_seed : int
        Parametric bootstrap replicates and seed of the EBP's MSE.
    benchmark : bool, default False
        EBP only: ratio-benchmark to direct state estimates with CV <= 20 %.
    n_jobs : int, optional
        EBP bootstrap worker processes (default: the available cores).

    Returns
    -------
    Edition

    Raises
    ------
    BadParameter
        An unknown or malformed level rule (before any work is done).
    InputError
        Census codes not in the boundaries, missing boundary columns, duplicated codes.
    ModelError
        The survey cannot support the model (constant outcome, separation, collinearity).
    """
    say = progress or _noop
    name = check_name(name)
    vintage = check_name(vintage, "vintage")
    rule = levels.get_rule(level_rule)
    if estimator not in ESTIMATORS:
        from ..errors import BadParameter

        raise BadParameter("estimator", estimator, ESTIMATORS)
    covariates = spec.names
    survey_file = survey.attrs.get("file", "survey records")
    census_file = census.attrs.get("file", "census records")

    boundaries = _check_boundaries(boundaries)
    survey = join_territorial(survey, spec, territorial)
    census = join_territorial(census, spec, territorial)
    # Check before joining: a census code missing from the geography is an error, never a
    # silently dropped municipality.
    validate_codes(census, boundaries["cvegeo"], file=census_file)
    _check_outcome(survey, survey_file)

    say(f"fitting the model on {len(survey):,} survey records")
    model = SurveyLogit()
    try:
        model.fit(survey[covariates], survey["child_labour"].to_numpy(),
                  survey["weight"].to_numpy(), strata=survey["strata"].to_numpy(),
                  psu=survey["psu"].to_numpy())
    except ModelError as exc:
        raise ModelError(exc.message, file=survey_file) from None

    say("diagnostics (AUC, Brier, calibration, cross-validation by PSU)")
    try:
        diagnostics = diagnose(model, survey[covariates], survey["child_labour"].to_numpy(),
                               survey["weight"].to_numpy(),
                               psu=_nested_psu(survey))
    except ModelError as exc:
        raise ModelError(exc.message, file=survey_file) from None

    say(f"scoring {len(census):,} census records")
    codes = boundaries["cvegeo"]
    scores = score.score_municipalities(model, census, covariates, codes=codes,
                                        census_sample=census_sample)
    scores = scores.reindex(pd.Index(codes, name="cvegeo"))
    synthetic_scores, ebp = scores, None
    if estimator == "ebp":
        from ..model.ebp_predict import ebp_municipalities

        try:
            scores, _, ebp = ebp_municipalities(
                survey, census, covariates, codes, states=boundaries["cve_ent"],
                n_boot=bootstrap, seed=bootstrap_seed, n_jobs=n_jobs, benchmark=benchmark,
                census_sample=census_sample, progress=say)
        except ModelError as exc:
            raise ModelError(exc.message, file=survey_file) from None
        scores = scores.reindex(pd.Index(codes, name="cvegeo"))
    rate = levels.national_rate(survey)

    say(f"classifying municipalities (level rule {rule.spec})")
    assigned, cutoffs = rule.apply(scores, rate["estimate"], min_records=min_records)
    certainty = levels.level_certainty(scores["probability"], scores["se"], assigned, cutoffs)

    say("associated factors")
    coef = pd.Series(model.coef_[1:], index=covariates)
    domains = {c.name: c.domain for c in spec.covariates}
    long = factors.factor_contributions(
        coef, score.municipal_means(census, covariates, codes=codes),
        score.national_means(census, covariates), domains)
    top = factors.top_factors(long, n=3, labels={c.name: c.label_es for c in spec.covariates})

    rows = _rows(name, vintage, boundaries, scores, assigned, top)
    rows["level_rule"] = rule.spec
    rows["level_certainty"] = certainty.reindex(rows["cvegeo"]).to_numpy(dtype=float)
    card = _card(name, vintage, year, sources, synthetic, spec, model, diagnostics, rate,
                 rule.describe(cutoffs, rate["estimate"], min_records), survey, census, rows)
    card["census_sample"] = bool(census_sample)
    card["estimator"] = estimator
    if ebp is not None:
        _add_ebp(rows, card, scores, synthetic_scores, ebp)
    return Edition(name=name, rows=rows, factors=long, card=card,
                   census=census[["cvegeo", "weight", *covariates]])


def _add_ebp(rows, card, scores, synthetic_scores, ebp) -> None:
    """EBP edition: keep the synthetic estimate and survey counts beside the EBP columns."""
    codes = rows["cvegeo"].to_numpy()
    s, syn = scores.reindex(codes), synthetic_scores.reindex(codes)
    rows["sampled"] = s["sampled"].fillna(False).to_numpy(dtype=bool)
    rows["n_survey"] = s["n_survey"].fillna(0).to_numpy(dtype=int)
    rows["probability_direct"] = s["direct"].to_numpy(dtype=float)
    for col in ("probability", "ci_low", "ci_high"):
        rows[f"{col}_synthetic"] = syn[col].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        cv = (s["se"] / s["probability"]).to_numpy(dtype=float)
    cv = cv[np.isfinite(cv)]
    ebp["cv_quantiles"] = ({str(q): float(np.quantile(cv, q))
                            for q in (0.1, 0.25, 0.5, 0.75, 0.9)} if cv.size else {})
    ebp["cv_share_over_20"] = float(np.mean(cv > 0.2)) if cv.size else None
    card["ebp"] = jsonable(ebp)
    card["limitations_es"] = list(LIMITATIONS_EBP_ES)
    card["limitations_en"] = list(LIMITATIONS_EBP_EN)


def _nested_psu(survey: pd.DataFrame) -> np.ndarray:
    """PSU labels made unique across strata (PSU "1" of two strata is two PSUs)."""
    return (survey["strata"].astype(str) + "\x1f" + survey["psu"].astype(str)).to_numpy()


def _check_boundaries(boundaries) -> gpd.GeoDataFrame:
    missing = [c for c in BOUNDARY_COLUMNS if c not in boundaries.columns]
    if missing or not isinstance(boundaries, gpd.GeoDataFrame):
        raise InputError("boundaries lack column(s) " + ", ".join(missing or ["geometry"])
                         + "; read them with riskmap.ingest.boundaries.read_boundaries")
    out = boundaries.copy()
    for col in BOUNDARY_COLUMNS:
        out[col] = out[col].astype(str)
    dup = out["cvegeo"][out["cvegeo"].duplicated()].unique().tolist()
    if dup:
        raise InputError(f"municipal code(s) repeated in the boundaries: {', '.join(dup[:10])}")
    if out.crs is None:
        out = out.set_crs(4326)
    return out.to_crs(4326).reset_index(drop=True)


def _check_outcome(survey: pd.DataFrame, file) -> None:
    """A constant outcome, named by the file's column (SurveyLogit, which keeps the same check
    for direct use and cross-validation folds, knows only ``y``)."""
    values = pd.unique(survey["child_labour"])
    if len(values) < 2:
        raise ModelError(f"the outcome is {int(values[0])} in every record: the model needs "
                         "children both with and without child labour", file=file,
                         column="child_labour")


def _rows(name, vintage, boundaries, scores, assigned, top) -> gpd.GeoDataFrame:
    codes = boundaries["cvegeo"].to_numpy()
    s = scores.reindex(codes)
    # Ranks only among classified municipalities (rank_within leaves sin_informacion NA):
    # an estimate from too few records must not top a ranking.
    ranked = pd.DataFrame({"probability": s["probability"].to_numpy(dtype=float),
                           "level": assigned.reindex(codes).to_numpy(),
                           "cve_ent": boundaries["cve_ent"].to_numpy()})
    rows = pd.DataFrame({
        "edition": name,
        "cvegeo": codes,
        "cve_ent": boundaries["cve_ent"].to_numpy(),
        "nom_ent": boundaries["nom_ent"].to_numpy(),
        "nom_mun": boundaries["nom_mun"].to_numpy(),
        "children": s["children"].fillna(0.0).to_numpy(dtype=float),
        "probability": s["probability"].to_numpy(dtype=float),
        "ci_low": s["ci_low"].to_numpy(dtype=float),
        "ci_high": s["ci_high"].to_numpy(dtype=float),
        "level": assigned.reindex(codes).to_numpy(),
        "expected_child_labour": s["expected_child_labour"].to_numpy(dtype=float),
        "rank_national": levels.rank_within(ranked).to_numpy(),
        "rank_state": levels.rank_within(ranked, by_state="cve_ent").to_numpy(),
        "top_factors": pd.Series(top).reindex(codes).fillna("").astype(str).to_numpy(),
        "level_rule": "",
        "level_certainty": np.nan,
        "cve_mun": boundaries["cve_mun"].to_numpy(),
        "vintage": vintage,
        "se": s["se"].to_numpy(dtype=float),
        "var_model": s["var_model"].to_numpy(dtype=float),
        "var_census": s["var_census"].to_numpy(dtype=float),
        "n_records": s["n_records"].fillna(0).to_numpy(dtype=int),
    })
    return gpd.GeoDataFrame(rows[list(ROW_COLUMNS + EXTRA_COLUMNS)],
                            geometry=boundaries.geometry.to_numpy(), crs=4326)


def _card(name, vintage, year, sources, synthetic, spec, model, diagnostics, rate, rule,
          survey, census, rows) -> dict:
    labels = {c.name: (c.label_es, c.label_en) for c in spec.covariates}
    table = model.coef_table({c.name: c.domain for c in spec.covariates})
    coefficients = []
    for rec in table.to_dict("records"):
        es, en = labels.get(rec["name"], ("Intercepto", "Intercept"))
        coefficients.append({
            "name": rec["name"], "label_es": es, "label_en": en,
            **{k: rec[k] for k in ("estimate", "se", "z", "ci_low", "ci_high", "odds_ratio",
                                   "p_value")},
            "domain": rec["domain"],
        })
    counts = rows["level"].value_counts()
    card = {
        "edition": name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "year": None if year is None else int(year),
        "kind": "modelled",
        "vintage": vintage,
        "synthetic": bool(synthetic),
        # A source is a text or a dict ({"name", "kind", ...}) kept as given.
        "sources": [dict(s) if isinstance(s, dict) else str(s) for s in (sources or [])],
        "spec": spec.to_dict(),
        "n_survey": int(len(survey)),
        "n_census": int(len(census)),
        "national_rate": {k: rate[k] for k in ("estimate", "se", "ci_low", "ci_high")},
        "coefficients": coefficients,
        "covariance": np.asarray(model.cov_).tolist(),
        "diagnostics": diagnostics,
        "rule": rule,
        "level_counts": {lev: int(counts.get(lev, 0)) for lev in LEVELS},
        "limitations_es": list(LIMITATIONS_ES),
        "limitations_en": list(LIMITATIONS_EN),
        "design": {
            "n_strata": int(model.n_strata_),
            "n_psu": int(model.n_psu_),
            "single_psu": model.single_psu,
            "n_single_psu_strata": len(model.single_psu_strata_),
        },
    }
    card["attribution"] = {"es": attribution(card, "es"), "en": attribution(card, "en")}
    return jsonable(card)


# -- from files to a published edition -------------------------------------------------------
def build_and_publish(data_dir, name, survey_path, census_path, boundaries_path,
                      spec_path=None, rasters=None, vintage=None, year=None, progress=None, *,
                      sources=None, synthetic=False, min_records=30,
                      census_sample=True, level_rule=None,
                      estimator="synthetic", bootstrap=200,
                      bootstrap_seed=20240601, benchmark=False) -> Edition:
    """Read the user's files, build the edition and publish it atomically.

    Parameters
    ----------
    data_dir : str or Path
        The data directory (:class:`~riskmap.publish.store.DataStore`).
    name : str
        Edition name.
    survey_path, census_path : str or Path
        Harmonised records (CSV or Parquet).
    boundaries_path : str or Path
        Municipal boundaries, any GDAL format and CRS.
    spec_path : str or Path, optional
        Model spec TOML (default ``models/mirti.toml``).
    rasters : dict, optional
        ``{territorial covariate: raster path}``, summarised per municipality.
    vintage : str, optional
        Geography vintage name; default :func:`riskmap.ingest.boundaries.vintage_name` of the
        boundary file (its year, e.g. ``2020`` for ``municipios_2020.geojson``). A new vintage
        is stored with the crosswalks to every vintage already stored
        (:func:`riskmap.publish.builders.link_vintage`).
    year : int, optional
        Default: a 4-digit year in the edition name, if any.
    progress : callable, optional
        Receives one short message per step.
    sources : list of str, optional
        Source descriptions for the attribution; default the input file names.
    synthetic : bool, default False
    min_records : int, default 30
    census_sample : bool, default True
        False when the census records are a full count (no census-sample variance).
    level_rule : str, optional
        Level rule (default ``mirti``); checked before any file is read.
    estimator, bootstrap, bootstrap_seed, benchmark
        As in :func:`build_edition`.

    Returns
    -------
    Edition
        The published edition.

    Raises
    ------
    InputError
        Any problem with the inputs; nothing already published is changed.
    """
    say = progress or _noop
    name = check_name(name)
    level_rule = levels.get_rule(level_rule)
    survey_path, census_path = Path(survey_path), Path(census_path)
    boundaries_path = Path(boundaries_path)
    spec = load_spec(spec_path)
    vintage = check_name(vintage or vintage_name(boundaries_path), "vintage")
    if year is None:
        found = re.search(r"(?<!\d)(19|20)\d\d(?!\d)", name)
        year = int(found.group(0)) if found else None

    say(f"reading boundaries {boundaries_path.name}")
    boundaries = read_boundaries(boundaries_path)
    _check_extent(boundaries, boundaries_path.name)
    territorial = _territorial(rasters or {}, spec, boundaries, say)
    say(f"reading survey records {survey_path.name}")
    survey = read_records(survey_path, "survey", spec, territorial)
    _warn_unknown_survey_codes(survey, boundaries, survey_path.name)
    say(f"reading census records {census_path.name}")
    census = read_records(census_path, "census", spec, territorial)

    store = DataStore(data_dir)
    stored = store.vintage_names()
    if vintage in stored:
        known = set(store.load_vintage(vintage)["cvegeo"])
        if known != set(boundaries["cvegeo"]):
            raise InputError(f"geography vintage {vintage!r} is already stored with a "
                             "different set of municipalities; choose another --vintage",
                             file=boundaries_path.name)

    if sources is None:
        sources = [survey_path.name, census_path.name, boundaries_path.name]
        sources += [Path(p).name for p in (rasters or {}).values()]
    edition = build_edition(name, survey, census, boundaries, spec, vintage=vintage,
                            year=year, sources=sources, synthetic=synthetic,
                            min_records=min_records, progress=say,
                            census_sample=census_sample, level_rule=level_rule,
                            estimator=estimator, bootstrap=bootstrap,
                            bootstrap_seed=bootstrap_seed, benchmark=benchmark)
    if vintage not in stored:
        say(f"storing geography vintage {vintage}")
    # Like import-edition: crosswalks to every stored vintage, so that editions on different
    # geographies compare and new municipalities get their parent's earlier value.
    for old, new in link_vintage(store, vintage, boundaries):
        say(f"stored crosswalk {old} -> {new}")
    say(f"publishing edition {name}")
    store.publish_edition(edition)
    return edition


def _warn_unknown_survey_codes(survey: pd.DataFrame, boundaries, file: str) -> None:
    """Survey codes outside the boundaries do not enter the fit, but hint at a vintage mix-up."""
    codes = survey["cvegeo"].astype(str)
    unknown = ~codes.isin(set(boundaries["cvegeo"].astype(str)))
    if not unknown.any():
        return
    first = int(np.flatnonzero(unknown.to_numpy())[0])
    row = first + int(survey.attrs.get("first_row", 2))
    distinct = codes[unknown].unique()
    warnings.warn(f"{file}, column 'cvegeo': {int(unknown.sum())} survey record(s) with "
                  f"{len(distinct)} municipality code(s) not in the boundaries (first "
                  f"'{codes.iloc[first]}', row {row}); kept, as the fit does not use "
                  "municipal codes; check the geography vintage", UserWarning, stacklevel=3)


def _check_extent(boundaries: gpd.GeoDataFrame, file: str) -> None:
    """Longitudes and latitudes must be in range: metres labelled EPSG:4326 are a wrong CRS."""
    x0, y0, x1, y1 = boundaries.total_bounds
    if not (np.isfinite([x0, y0, x1, y1]).all() and -180.0 <= x0 <= x1 <= 180.0
            and -90.0 <= y0 <= y1 <= 90.0):
        raise InputError(f"coordinates out of range for longitude/latitude (bounds {x0:.0f}, "
                         f"{y0:.0f}, {x1:.0f}, {y1:.0f}): the file's CRS is wrong (projected "
                         "coordinates labelled as geographic?); INEGI's Marco Geoestadístico "
                         "is EPSG:6372", file=file)


def _territorial(rasters: dict, spec, boundaries, say) -> dict:
    """Zonal means of the given rasters per municipality, by covariate name."""
    if not rasters:
        return {}
    unknown = [n for n in rasters if n not in spec.territorial_names]
    if unknown:
        raise InputError(f"--raster {unknown[0]}: not a territorial covariate of the spec; "
                         "known: " + (", ".join(spec.territorial_names) or "none"))
    from ..ingest.raster import zonal_mean  # rasterio is slow to import; only when needed

    out = {}
    for cov, path in rasters.items():
        say(f"zonal means of {Path(path).name} ({cov})")
        values = pd.Series(zonal_mean(path, boundaries))
        if len(values) == len(boundaries) and not values.index.isin(boundaries["cvegeo"]).all():
            values.index = boundaries["cvegeo"].to_numpy()
        if not np.isfinite(values.to_numpy(dtype=float)).any():
            raise InputError("no municipality contains a valid cell of the raster: raster and "
                             "boundaries do not overlap (check the CRS of both files)",
                             file=Path(path).name)
        out[cov] = values
    return out
