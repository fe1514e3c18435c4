"""Commands for real INEGI data: crosswalk, simulate, import-edition, fetch."""

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
              help="CSV to write: cvegeo_from, cvegeo_to, share.")
@click.option("--min-share", default=0.001, show_default=True, type=float,
              help="Overlaps below this share of the from-municipality are dropped as slivers.")
def crosswalk_cmd(path_from, path_to, output, min_share):
    """Area-overlay crosswalk between two boundary vintages; lists new and removed codes."""
    from ..crosswalk import area_crosswalk, detect_changes
    from ..ingest.boundaries import read_boundaries
    from ..store import atomic_path

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = read_boundaries(path_from)
        new = read_boundaries(path_to)
        table = area_crosswalk(old, new, min_share=min_share)
    for w in caught:
        click.echo(f"riskmap: warning: {w.message}", err=True)
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
