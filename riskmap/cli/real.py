"""Commands for real INEGI data: crosswalk, simulate, import-edition, fetch, harmonise."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from . import cli, data_dir_option, resolve_data_dir


@cli.command("crosswalk")
@click.option("--from", "path_from", required=True, type=click.Path(dir_okay=False),
              help="Boundaries of the older vintage (any GDAL format).")
@click.option("--to", "path_to", required=True, type=click.Path(dir_okay=False),
              help="Boundaries of the newer vintage.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="CSV to write: cvegeo_from, cvegeo_to, share (of the from-municipality's "
                   "area) and share_to (of the to-municipality's area).")
@click.option("--min-share", default=0.001, show_default=True,
              type=click.FloatRange(0.0, 0.5),
              help="Overlaps below this share of the from-municipality are dropped as slivers.")
def crosswalk_cmd(path_from, path_to, output, min_share):
    """Area-overlay crosswalk between two boundary vintages; lists new and removed codes."""
    from ..ingest.crosswalk import area_crosswalk, detect_changes
    from ..ingest.boundaries import read_boundaries
    from ..fileio import atomic_path

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = read_boundaries(path_from)
        new = read_boundaries(path_to)
        table = area_crosswalk(old, new, min_share=min_share)
    _echo_warnings(caught)
    with atomic_path(Path(output)) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6f")
    names = dict(zip(new["cvegeo"], new["nom_mun"] + ", " + new["nom_ent"]))
    names.update(zip(old["cvegeo"], old["nom_mun"] + ", " + old["nom_ent"]))
    changes = detect_changes(table, old["cvegeo"], new["cvegeo"])
    new_rows = changes[changes["change"] == "new"].drop_duplicates("cvegeo_to")
    removed = changes[changes["change"] == "removed"]
    click.echo(f"{len(old)} -> {len(new)} municipalities; {len(table)} crosswalk rows "
               f"written to {output}")
    click.echo(f"new municipalities: {len(new_rows)}")
    for _, r in new_rows.iterrows():
        parent = r["cvegeo_from"] or "?"
        click.echo(f"  {r['cvegeo_to']} {names.get(r['cvegeo_to'], '')}  <- split from "
                   f"{parent} {names.get(parent, '')} ({r['share']:.1%} of its area)")
    click.echo(f"removed municipalities: {len(removed)}")
    for _, r in removed.iterrows():
        click.echo(f"  {r['cvegeo_from']} {names.get(r['cvegeo_from'], '')}  -> "
                   f"{r['cvegeo_to'] or '?'}")


def _echo_warnings(caught):
    # only warnings about the user's input (UserWarning); library noise stays out
    for w in caught:
        if issubclass(w.category, UserWarning):
            click.echo(f"riskmap: warning: {w.message}", err=True)


@cli.command("simulate")
@click.option("--boundaries", required=True, type=click.Path(dir_okay=False),
              help="Municipal boundaries (e.g. INEGI Marco Geoestadístico, any GDAL format).")
@click.option("--census-table", required=True, type=click.Path(dir_okay=False),
              help="Municipal census table in ITER layout (raw INEGI column names).")
@click.option("--vintage", default=None, help="Geography vintage name (default: the year in "
              "the boundaries file name, else 2020).")
@click.option("--seed", default=2020, show_default=True, type=int)
@click.option("--census-records", default=300_000, show_default=True,
              type=click.IntRange(min=1000),
              help="Simulated census child records (about: every municipality gets at least "
                   "40, or all its children when it has fewer).")
@click.option("--survey-records", default=45_000, show_default=True,
              type=click.IntRange(min=1000),
              help="Simulated survey child records per edition (about: PSUs of 25 children, "
                   "at least 2 per state).")
@click.option("--replace", is_flag=True,
              help="Overwrite editions 2017/2019/2023 that are not semi-synthetic (the demo's).")
@click.option("--old-boundaries", default=None, type=click.Path(dir_okay=False),
              help="Older boundary vintage (e.g. municipios_2015): edition 2017 is built on "
                   "it and the crosswalks to and from the newer vintage are stored.")
@click.option("--old-vintage", default=None,
              help="Name of the older vintage (default: the year in its file name, else 2015).")
@data_dir_option
def simulate_cmd(boundaries, census_table, vintage, seed, census_records, survey_records,
                 replace, old_boundaries, old_vintage, data_dir):
    """Semi-synthetic Mexico: real INEGI geography and shares, simulated records, editions
    2017, 2019 and 2023 published as in the demo (labelled semi-synthetic)."""
    from tqdm import tqdm

    from ..inegi.simulate import SOURCES_NOTE, SimConfig, build_semisynthetic
    from ..ingest.boundaries import vintage_name

    vintage = vintage or vintage_name(boundaries, "2020")
    if old_boundaries and not old_vintage:
        old_vintage = vintage_name(old_boundaries, "2015")
    config = SimConfig(n_census=census_records, n_survey=survey_records)
    bars = []  # created on the first step, so an input error prints no empty bar first

    def progress(message):
        if not bars:
            bars.append(tqdm(total=None, unit=" step", desc="simulate", leave=False))
        bars[0].set_postfix_str(message[:60])
        bars[0].update(1)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        result = build_semisynthetic(resolve_data_dir(data_dir), boundaries, census_table,
                                     seed=seed, vintage=vintage, config=config,
                                     progress=progress, replace=replace,
                                     old_boundaries_path=old_boundaries,
                                     old_vintage=old_vintage or "2015")
    for bar in bars:
        bar.close()
    _echo_warnings(caught)
    click.echo(f"semi-synthetic data ({SOURCES_NOTE}); vintage {vintage}")
    for name, path in result["published"].items():
        click.echo(f"  edition {name}: {path}")
    if result["no_data"]:
        click.echo(f"  {len(result['no_data'])} municipalities without census data "
                   "(sin_informacion)")
    click.echo("  timings (s): " + ", ".join(f"{k} {v}" for k, v in result["timings"].items()))


@cli.command("import-edition")
@click.option("--edition", required=True, help="Name of the edition to publish, e.g. mirti2017.")
@click.option("--levels", required=True, type=click.Path(dir_okay=False),
              help="CSV or .xlsx: cvegeo (or cve_ent + cve_mun), level (or nivel) [, "
                   "probability, ci_low, ci_high]; title rows above the header and a footer "
                   "such as 'Fuente: ...' are skipped and reported.")
@click.option("--sheet", default=None,
              help="Sheet of an .xlsx workbook (name or 1-based number; default the first "
                   "sheet with a header).")
@click.option("--boundaries", required=True, type=click.Path(dir_okay=False),
              help="Boundaries of the list's vintage (any GDAL format).")
@click.option("--vintage", default=None,
              help="Geography vintage name (default: the year in the boundaries file name).")
@click.option("--year", default=None, type=int, help="Reference year (default: from the name).")
@click.option("--national-rate", default=None, type=float,
              help="Published national child-labour rate (0-1), when known.")
@click.option("--source", "sources", multiple=True,
              help="Who published the list, quoted verbatim in every attribution, e.g. "
                   "'STPS, MIRTI 2017' (repeatable; default the file name).")
@click.option("--boundaries-source", default=None,
              help="Producer of the boundaries (default 'INEGI, Marco Geoestadístico'); INEGI "
                   "is credited only when this names it.")
@click.option("--allow-missing", is_flag=True,
              help="Publish even if municipalities of the boundaries are absent from the list "
                   "(they become sin información and are listed); without it they are an "
                   "error.")
@data_dir_option
def import_edition_cmd(edition, levels, sheet, boundaries, vintage, year, national_rate,
                       sources, boundaries_source, allow_missing, data_dir):
    """Publish a list of municipal levels (e.g. published MIRTI results) as an edition.

    Every problem of the list (unknown levels, malformed or repeated codes, codes outside the
    boundaries, municipalities missing) is reported in one message, exit code 2; nothing is
    published. The summary names every value read as another word ("Alta" -> alto).
    """
    from ..errors import InputError
    from ..ingest.boundaries import read_boundaries, vintage_name
    from ..inegi.imported import check_codes, import_edition, raise_problems, read_list
    from ..publish.builders import link_vintage
    from ..publish.store import DataStore

    store = DataStore(resolve_data_dir(data_dir))
    vintage = vintage or vintage_name(boundaries)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        listing = read_list(levels, sheet=sheet)
        gdf = read_boundaries(boundaries)
    _echo_warnings(caught)
    problems, missing = check_codes(listing.table, gdf, vintage, allow_missing=allow_missing)
    raise_problems(listing.problems + problems, Path(levels).name)
    if vintage in store.vintage_names():
        stored = set(store.load_vintage(vintage)["cvegeo"])
        if stored != set(gdf["cvegeo"]):
            raise InputError(f"vintage {vintage!r} is already stored with other municipalities "
                             f"({len(stored)} vs {len(gdf)}); choose another --vintage",
                             file=boundaries)
    ed = import_edition(edition, listing.table, gdf, vintage=vintage, year=year,
                        sources=list(sources) or [Path(levels).name],
                        national_rate=national_rate, file=Path(levels).name,
                        allow_missing=allow_missing, boundaries_source=boundaries_source,
                        report=listing.report())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        linked = link_vintage(store, vintage, gdf)
    _echo_warnings(caught)
    path = store.publish_edition(ed)
    counts = ed.level_counts()
    click.echo(f"edition {edition} (imported, vintage {vintage}): "
               + ", ".join(f"{k} {v}" for k, v in counts.items()) + f" -> {path}")
    _import_summary(listing, missing)
    click.echo(f"  credited: {ed.card['attribution']['es']}")
    for old, new in linked:
        click.echo(f"  crosswalk {old} -> {new} stored (editions on these vintages compare "
                   "through it)")


def _import_summary(listing, missing: list[str]) -> None:
    """What import-edition did to the list: header, skipped rows, reinterpreted values."""
    where = f"sheet {listing.sheet!r}, " if listing.sheet else ""
    click.echo(f"  read {where}header on row {listing.header_row}: "
               f"{len(listing.table)} municipalities listed")
    for row in listing.skipped:
        kind = "title row" if row["kind"] == "title" else "footer row"
        click.echo(f"  {kind} {row['row']} ignored: {row['text']!r}")
    if listing.reinterpreted:
        click.echo("  values reinterpreted:")
        for r in listing.reinterpreted:
            shown = repr(r["value"]) if r["value"] != "" else "(empty)"
            click.echo(f"    {shown} -> {r['level']} ({r['rows']} row"
                       f"{'' if r['rows'] == 1 else 's'})")
    if missing:
        click.echo(f"  {len(missing)} municipalities missing from the list, published as "
                   "sin_informacion (--allow-missing):")
        for item in missing:
            click.echo(f"    {item}")


@cli.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--all", "fetch_all", is_flag=True, help="Every file of the catalogue.")
@click.option("--list", "list_only", is_flag=True, help="List the catalogue and exit.")
@click.option("--url-base", default=None, help="Mirror base URL (the file names are kept).")
@click.option("--catalog", default=None, type=click.Path(dir_okay=False),
              help="Download catalogue (default: models/sources/fetch_catalog.toml).")
@data_dir_option
def fetch_cmd(names, fetch_all, list_only, url_base, catalog, data_dir):
    """Download official INEGI files (default: Marco Geoestadístico and ITER) with resume and
    sha256 verification into <data-dir>/downloads/."""
    from tqdm import tqdm

    from ..errors import BadParameter
    from ..inegi.fetch import fetch, load_catalog

    entries = load_catalog(catalog)
    if list_only:
        for e in entries.values():
            flag = "*" if e.default else " "
            click.echo(f"{flag} {e.name:28s} {e.filename:32s} {e.description}")
        return
    if fetch_all:
        chosen = list(entries.values())
    elif names:
        unknown = [n for n in names if n not in entries]
        if unknown:
            raise BadParameter("name", unknown[0], allowed=list(entries))
        chosen = [entries[n] for n in names]
    else:
        chosen = [e for e in entries.values() if e.default]
    root = resolve_data_dir(data_dir)
    for entry in chosen:
        with tqdm(total=None, unit="B", unit_scale=True, desc=entry.filename,
                  leave=False) as bar:
            def progress(done, total, bar=bar):
                if total is not None and bar.total != total:
                    bar.total = total
                bar.n = done
                bar.refresh()

            result = fetch(entry, root, url_base=url_base, progress=progress)
        click.echo(f"{entry.name}: {result.status} {result.path} ({result.bytes:,} bytes)")
        if not result.checksum_known:
            click.echo(f"  unknown checksum: sha256 {result.sha256} (record it in the "
                       "catalogue to verify future downloads)")
        else:
            click.echo("  sha256 verified")


@cli.command("harmonise")
@click.option("--mapping", "mapping_name", required=True,
              help="Mapping name in models/sources (e.g. censo2020_ampliado, enti2022) or a "
                   "TOML file.")
@click.option("--input", "inputs", required=True, multiple=True,
              type=click.Path(dir_okay=False),
              help="Main table (persons): CSV, DBF or Parquet; repeat for several states.")
@click.option("--table", "tables", multiple=True, metavar="NAME=FILE",
              help="Extra table named in the mapping, e.g. dwellings=Viviendas07.CSV "
                   "(repeat; with several inputs give one per input, in the same order).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Harmonised records to write (.parquet or .csv).")
def harmonise_cmd(mapping_name, inputs, tables, output):
    """Turn raw INEGI microdata into harmonised child records with a source mapping."""
    import pandas as pd

    from ..errors import InputError
    from ..inegi.mapping import apply_mapping, load_mapping, read_table
    from ..fileio import atomic_path

    mapping = load_mapping(mapping_name)
    extra: dict[str, list] = {}
    for item in tables:
        if "=" not in item:
            raise InputError(f"--table expects NAME=FILE, got {item!r}")
        name, path = item.split("=", 1)
        extra.setdefault(name.strip(), []).append(path)
    for name, paths in extra.items():
        if name not in mapping.tables:
            raise InputError(f"--table {name}: the mapping {mapping.name!r} declares "
                             + (", ".join(mapping.tables) or "no tables"))
        if len(paths) not in (1, len(inputs)):
            raise InputError(f"--table {name}: give one file, or one per --input "
                             f"({len(inputs)})")
    parts = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        # a table given once serves every input: read it once
        shared = {name: read_table(paths[0]) for name, paths in extra.items()
                  if len(paths) == 1}
        for i, path in enumerate(inputs):
            chosen = {name: shared[name] if name in shared else read_table(paths[i])
                      for name, paths in extra.items()}
            parts.append(apply_mapping(read_table(path), mapping, Path(path).name,
                                       tables=chosen))
    _echo_warnings(caught)
    records = pd.concat(parts, ignore_index=True)
    out = Path(output)
    with atomic_path(out) as tmp:
        if out.suffix.lower() in (".parquet", ".pq"):
            records.to_parquet(tmp, index=False)
        else:
            records.to_csv(tmp, index=False)
    unsure = sorted(c for c, conf in mapping.confidence.items() if conf in ("I", "?"))
    click.echo(f"{len(records):,} {mapping.kind} child records ({mapping.name}) -> {output}")
    if unsure:
        click.echo("  unconfirmed INEGI names/codes [I/?] used for: " + ", ".join(unsure)
                   + f"; check them in {Path(mapping.source).name}")
