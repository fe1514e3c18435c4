"""Publishing a set of editions built from records: the orchestration shared by builders.

A builder (the synthetic demo, the semi-synthetic Mexico, an imported list) generates records, then does the same thing every time: store the geography vintages with
their states and the crosswalk between them, and for each edition fit, score, classify and
publish, timing each step. :func:`store_vintages` and :func:`publish_editions` are that part.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import geopandas as gpd
import pandas as pd


@dataclass
class EditionJob:
    """Everything one edition is built from.

    Attributes
    ----------
    edition : str
        Edition name (e.g. ``"2023"``).
    year : int
    vintage : str
        Geography vintage of ``boundaries`` (stored beforehand).
    survey, census : pandas.DataFrame
        Harmonised records.
    boundaries : geopandas.GeoDataFrame
        Normalised boundaries of ``vintage``.
    sources : list of dict
        Sources of the edition (shown in its attribution).
    survey_file, census_file : str
        File names the records were saved as (recorded in the edition's provenance).
    territorial : dict, optional
        ``{covariate: Series by cvegeo}`` passed to :func:`riskmap.publish.pipeline.build_edition`.
    label : callable, optional
        Called with the model card before publishing, to add builder-specific labels.
    check : callable, optional
        Called with the built edition before publishing; its dict is stored in the card as
        ``truth_check`` (the demo measures its intervals against the known truth).
    """

    edition: str
    year: int
    vintage: str
    survey: pd.DataFrame
    census: pd.DataFrame
    boundaries: gpd.GeoDataFrame
    sources: list
    survey_file: str
    census_file: str
    territorial: dict | None = None
    label: Callable[[dict], object] | None = None
    check: Callable[[object], dict] | None = None


def store_vintages(store, vintages: dict, crosswalks=()) -> dict:
    """Store boundary vintages (with their states) and area crosswalks between them.

    Parameters
    ----------
    store : riskmap.publish.store.DataStore
    vintages : dict
        ``{vintage: (municipios, estados)}``; ``estados`` None dissolves them from the
        municipalities.
    crosswalks : iterable of (str, str)
        ``(vintage_from, vintage_to)`` pairs of ``vintages`` to overlay and store.

    Returns
    -------
    dict
        Seconds spent: ``store_geography`` and, with crosswalks, ``crosswalk``.
    """
    from ..ingest.crosswalk import area_crosswalk
    from ..ingest.boundaries import states_from

    clock = time.perf_counter()
    for name, (municipios, estados) in vintages.items():
        store.save_vintage(name, municipios,
                           states_from(municipios) if estados is None else estados)
    timings = {"store_geography": time.perf_counter() - clock}
    if crosswalks:
        clock = time.perf_counter()
        for old, new in crosswalks:
            table = area_crosswalk(vintages[old][0], vintages[new][0])
            store.save_crosswalk(old, new, table)
        timings["crosswalk"] = time.perf_counter() - clock
    return timings


def publish_editions(store, jobs, spec, *, synthetic: bool,
                     progress: Callable[[str], None] | None = None,
                     message: str = "edition {edition}",
                     options: dict | None = None) -> tuple[dict, dict]:
    """Build and publish editions one after the other.

    Parameters
    ----------
    store : riskmap.publish.store.DataStore
    jobs : iterable of EditionJob
    spec : riskmap.spec.ModelSpec
    synthetic : bool
        Whether the records are simulated (labels every output).
    progress : callable, optional
        Called with ``message`` before each edition and with the pipeline's own steps.
    message : str
        Progress message, formatted with ``edition``.
    options : dict, optional
        Further keyword arguments of :func:`riskmap.publish.pipeline.build_edition` (e.g.
        ``estimator``, ``bootstrap``).

    Returns
    -------
    (dict, dict)
        ``{edition: published path}`` and ``{"edition_<name>": seconds}``.
    """
    from .pipeline import build_edition

    published, timings = {}, {}
    for job in jobs:
        clock = time.perf_counter()
        if progress is not None:
            progress(message.format(edition=job.edition))
        job.survey.attrs["file"] = job.survey_file
        job.census.attrs["file"] = job.census_file
        edition = build_edition(job.edition, job.survey, job.census, job.boundaries, spec,
                                vintage=job.vintage, year=job.year, sources=job.sources,
                                synthetic=synthetic, territorial=job.territorial,
                                progress=progress, **(options or {}))
        if job.label is not None:
            job.label(edition.card)
        if job.check is not None:
            edition.card["truth_check"] = job.check(edition)
        published[job.edition] = store.publish_edition(edition)
        timings[f"edition_{job.edition}"] = time.perf_counter() - clock
    return published, timings


def link_vintage(store, vintage: str,
                 municipalities: gpd.GeoDataFrame) -> list[tuple[str, str]]:
    """Store a vintage (if new) and the crosswalks between it and every other stored vintage.

    Editions on different vintages are compared through a stored crosswalk
    (:func:`riskmap.model.compare.compare`); without one, municipalities created in between get no
    earlier value. Crosswalks already stored are kept; both directions are stored, since
    either edition may come first in a comparison.

    Parameters
    ----------
    store : riskmap.publish.store.DataStore
    vintage : str
    municipalities : geopandas.GeoDataFrame
        Normalised boundaries of ``vintage``.

    Returns
    -------
    list of (str, str)
        The ``(vintage_from, vintage_to)`` crosswalks written.
    """
    from ..ingest.crosswalk import area_crosswalk

    others = [v for v in store.vintage_names() if v != vintage]
    if vintage not in store.vintage_names():
        store_vintages(store, {vintage: (municipalities, None)})
    written = []
    for other in others:
        pairs = [(other, vintage), (vintage, other)]
        pairs = [p for p in pairs if not store.crosswalk_path(*p).exists()]
        if not pairs:
            continue
        geo = {vintage: municipalities, other: store.load_vintage(other)}
        for old, new in pairs:
            store.save_crosswalk(old, new, area_crosswalk(geo[old], geo[new]))
            written.append((old, new))
    return written
