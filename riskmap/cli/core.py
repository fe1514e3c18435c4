"""Core commands: ``demo``, ``build``, ``relevel``, ``export`` and ``show``.

Progress goes to stderr as one line per step (``[  3.2s] fitting the model...``), so stdout
stays clean for ``show``'s JSON. Warnings (poor input with a documented fallback, e.g. a
stratum with one PSU) print as one ``riskmap: warning: ...`` line each.
"""

from __future__ import annotations

import errno
import json
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import click

from ..publish.edition import LEVELS, rule_of
from ..errors import InputError
from . import cli, data_dir_option, resolve_data_dir


LEVELS_HELP = ("Level rule: mirti (bajo <= national rate < medio <= mean + 1 SD < alto), "
               "significance (95 % interval vs the national rate) or cortes:A,B (cut-offs "
               "in percent, e.g. cortes:7.5,12.2).")


def _progress():
    """A progress callable printing elapsed time and the step on stderr."""
    start = time.monotonic()

    def say(message: str) -> None:
        click.echo(f"[{time.monotonic() - start:6.1f}s] {message}", err=True)

    return say


@contextmanager
def _warnings_as_lines():
    """Show each warning once, as one line, without source file and line number."""
    seen = set()

    def show(message, category, filename, lineno, file=None, line=None):
        # The same design fact (e.g. a single-PSU stratum) is met by the fit and by the
        # national rate; say it once.
        text = " ".join(str(message).split())
        if text not in seen:
            seen.add(text)
            click.echo(f"riskmap: warning: {text}", err=True)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        # Library deprecation notices are for developers, not for someone building a map.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        warnings.showwarning = show
        yield


_WRITE_ERRORS = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT}


@contextmanager
def _os_errors_as_input():
    """Turn a file-system error (permission, missing folder, disk full) into one line."""
    try:
        yield
    except OSError as exc:
        where = exc.filename
        reason = exc.strerror or str(exc)
        if where is not None and exc.errno in _WRITE_ERRORS:
            path = Path(where)
            # a temporary file of an atomic write (".name.xxxx..."): name its folder
            if path.name.startswith(".") and not path.exists():
                path = path.parent
            raise InputError(f"cannot write here ({reason}); choose a writable "
                             "--data-dir or output path", file=str(path)) from None
        raise InputError(reason, file=where) from None


def _published_store(data_dir):
    """The store of an existing data directory (for commands that only read it)."""
    from ..publish.store import DataStore

    root = Path(resolve_data_dir(data_dir))
    if not root.is_dir():
        raise InputError("no such data directory; give --data-dir (or set RISKMAP_DATA_DIR), "
                         "or build one with 'riskmap demo'", file=str(root))
    return DataStore(root)


def _level_counts(store, name) -> dict:
    card = store.load_card(name)
    counts = card.get("level_counts")
    if not counts:
        counts = store.load_edition(name).level_counts()
    return {lev: int(counts.get(lev, 0)) for lev in LEVELS}


def _summary(store) -> list[str]:
    lines = []
    for name in store.edition_names():
        counts = _level_counts(store, name)
        rule = rule_of(store.load_card(name))
        lines.append(f"{name:<12} " + "  ".join(f"{lev} {counts[lev]:>5}" for lev in LEVELS)
                     + f"  (rule {rule})")
    return lines


@cli.command()
@data_dir_option
@click.option("--seed", type=int, default=None,
              help="Random seed of the synthetic country (default: the demo_seed setting).")
@click.option("--estimator", type=click.Choice(["synthetic", "ebp"]), default="synthetic",
              show_default=True, help="Estimator of the demo editions (ebp adds a few minutes).")
def demo(data_dir, seed, estimator):
    """Build the synthetic demonstration atlas end to end."""
    from ..demo import build_demo
    from ..settings import resolve
    from ..publish.store import DataStore

    data_dir = resolve_data_dir(data_dir)
    settings = resolve()
    seed = settings["demo_seed"] if seed is None else seed
    with _warnings_as_lines(), _os_errors_as_input():
        extra = ({} if estimator == "synthetic" else
                 {"estimator": estimator, "bootstrap": settings["bootstrap"]})
        build_demo(data_dir, seed, progress=_progress(), **extra)
    click.echo(f"synthetic demo atlas in {data_dir} (seed {seed}); editions and level counts:")
    for line in _summary(DataStore(data_dir)):
        click.echo("  " + line)
    from .outcomes import print_demo_account, setup_demo_outcomes

    print_demo_account(setup_demo_outcomes(data_dir))


def _parse_rasters(values) -> dict:
    out = {}
    for item in values:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise click.BadParameter(f"expected NAME=FILE, got {item!r}", param_hint="--raster")
        if name.strip() in out:
            raise click.BadParameter(f"{name.strip()!r} given twice", param_hint="--raster")
        out[name.strip()] = path.strip()
    return out


@cli.command()
@click.option("--edition", "name", required=True, help="Edition name, e.g. 2023.")
@click.option("--survey", required=True, type=click.Path(dir_okay=False),
              help="Harmonised survey records (CSV or Parquet).")
@click.option("--census", required=True, type=click.Path(dir_okay=False),
              help="Harmonised census records (CSV or Parquet).")
@click.option("--boundaries", required=True, type=click.Path(dir_okay=False),
              help="Municipal boundaries (Shapefile, GeoPackage, GeoJSON; any CRS).")
@click.option("--spec", type=click.Path(dir_okay=False), default=None,
              help="Model spec TOML (default models/mirti.toml).")
@click.option("--raster", "rasters", multiple=True, metavar="NAME=FILE",
              help="Raster for a territorial covariate of the spec (repeatable).")
@click.option("--vintage", default=None,
              help="Geography vintage name (default: the boundary file's name).")
@click.option("--year", type=int, default=None, help="Reference year of the edition.")
@click.option("--source", "sources", multiple=True,
              help="Data source for the attribution (repeatable; default: the file names).")
@click.option("--synthetic", is_flag=True, help="Mark the edition as synthetic demo data.")
@click.option("--full-count", is_flag=True,
              help="The census records are a full count, not a sample (no census-sample "
                   "variance).")
@click.option("--min-records", type=click.IntRange(min=1), default=None,
              help="Minimum census child records to classify a municipality "
                   "(default: the min_records setting).")
@click.option("--levels", "level_rule", default="mirti", show_default=True, metavar="RULE",
              help=LEVELS_HELP)
@click.option("--estimator", type=click.Choice(["synthetic", "ebp"]), default="synthetic",
              show_default=True,
              help="synthetic: the classic MIRTI estimator; ebp: mixed model with a municipal "
                   "random effect (empirical best predictor, bootstrap MSE).")
@click.option("--bootstrap", "n_boot", type=click.IntRange(min=1), default=None,
              help="EBP bootstrap replicates B (default: the bootstrap setting, 200).")
@click.option("--benchmark/--no-benchmark", default=False, show_default=True,
              help="EBP: ratio-benchmark to direct state estimates with CV <= 20 %.")
@data_dir_option
def build(name, survey, census, boundaries, spec, rasters, vintage, year, sources, synthetic,
          full_count, min_records, level_rule, estimator, n_boot, benchmark, data_dir):
    """Fit, score, classify and publish one edition."""
    from ..model.rules import get_rule
    from ..publish.pipeline import build_and_publish
    from ..settings import resolve

    rule = get_rule(level_rule)  # a bad rule fails before any file is read
    data_dir = resolve_data_dir(data_dir)
    settings = resolve()
    min_records = settings["min_records"] if min_records is None else min_records
    n_boot = settings["bootstrap"] if n_boot is None else n_boot
    with _warnings_as_lines(), _os_errors_as_input():
        edition = build_and_publish(data_dir, name, survey, census, boundaries,
                                    spec_path=spec, rasters=_parse_rasters(rasters),
                                    vintage=vintage, year=year, progress=_progress(),
                                    sources=list(sources) or None, synthetic=synthetic,
                                    min_records=min_records, census_sample=not full_count,
                                    level_rule=rule,
                                    estimator=estimator, bootstrap=n_boot,
                                    bootstrap_seed=settings["bootstrap_seed"],
                                    benchmark=benchmark)
    counts = edition.level_counts()
    click.echo(f"published edition {edition.name} ({len(edition.rows)} municipalities, "
               f"level rule {rule.spec}): "
               + ", ".join(f"{lev} {counts[lev]}" for lev in LEVELS))


@cli.command()
@click.option("--edition", "name", required=True, help="Edition name.")
@click.option("--levels", "level_rule", required=True, metavar="RULE", help=LEVELS_HELP)
@data_dir_option
def relevel(name, level_rule, data_dir):
    """Re-classify a published edition under another level rule, without refitting."""
    from ..model.rules import get_rule
    from ..publish.relevel import relevel_published

    rule = get_rule(level_rule)
    store = _published_store(data_dir)
    before = _level_counts(store, name)
    with _os_errors_as_input():
        edition = relevel_published(store, name, rule)
    counts = edition.level_counts()
    click.echo(f"edition {edition.name} re-classified under level rule {rule.spec}: "
               + ", ".join(f"{lev} {before[lev]} -> {counts[lev]}" for lev in LEVELS))


@cli.command()
@click.option("--edition", "name", required=True, help="Edition name.")
@click.option("--format", "fmt", required=True, metavar="csv|xlsx|geojson|gpkg|shp",
              help="Output format (shp writes a zip).")
@click.option("--state", default=None,
              help="Only this state: its 2-digit code (07) or name (Chiapas; any case).")
@click.option("--level", default=None,
              help="Only this level (any case): " + ", ".join(LEVELS) + ".")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Output file.")
@click.option("--lang", type=click.Choice(["es", "en"]), default="es", show_default=True,
              help="Language of spreadsheet headers and metadata (xlsx).")
@data_dir_option
def export(name, fmt, state, level, output, lang, data_dir):
    """Export an edition's municipal results (same filters as the API)."""
    from ..publish.export import export_edition, normalise_format

    normalise_format(fmt)  # an unknown format fails before the edition is read
    edition = _published_store(data_dir).load_edition(name)
    with _os_errors_as_input():
        path = export_edition(edition, fmt, output, state=state, level=level, lang=lang)
    click.echo(f"wrote {path}", err=True)


@cli.command()
@click.option("--edition", "name", required=True, help="Edition name.")
@data_dir_option
def show(name, data_dir):
    """Print the edition's model card (JSON)."""
    card = _published_store(data_dir).load_card(name)
    click.echo(json.dumps(card, ensure_ascii=False, indent=2))
