"""The ``trend`` command: what changed between two editions, and why (docs/METHOD.md §8).

Writes one CSV row per municipality (on the older edition's geography), state or the nation:
the change in the mean probability split into composition (the population's characteristics
changed) and behaviour (the same characteristics carry a different risk), with one part per
common covariate and, for states and the nation, 95 % intervals from coefficient draws.
"""

from __future__ import annotations

import click

from ..errors import BadParameter
from . import cli, data_dir_option

LEVELS = ("municipality", "state", "nation")


@cli.command()
@click.option("--a", "a", required=True, help="Older edition, e.g. 2017.")
@click.option("--b", "b", required=True, help="Newer edition, e.g. 2023.")
@click.option("--by", type=click.Choice(LEVELS), default="municipality", show_default=True,
              help="One row per municipality, state or the nation.")
@click.option("--state", default=None, help="Only this state (2-digit code, e.g. 07).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Output CSV file.")
@data_dir_option
def trend(a, b, by, state, output, data_dir):
    """Decompose the change between editions A and B into composition and behaviour."""
    from pathlib import Path

    from ..model.trend import N_DRAWS, columns, load_trend
    from ..publish.store import atomic_path
    from .core import _os_errors_as_input, _published_store, _warnings_as_lines

    store = _published_store(data_dir)
    with _warnings_as_lines():
        result = load_trend(store, a, b)
    table = result.table(by)
    if state is not None:
        code = state.strip().zfill(2) if state.strip().isdigit() else state.strip()
        known = sorted(result.states["unit"])
        if by == "nation" or code not in known:
            raise BadParameter("--state", state, known if by != "nation" else None,
                               message=None if by != "nation" else
                               "--state does not apply to --by nation")
        table = table[table["cve_ent"] == code]
    with _os_errors_as_input(), atomic_path(Path(output)) as tmp:
        table[columns(result, by)].to_csv(tmp, index=False, float_format="%.10g")
    withheld = int(((table["composition_withheld"] != "") | (table["behaviour_withheld"] != ""))
                   .sum())
    click.echo(f"wrote {output}: {len(table)} rows ({result.a} -> {result.b}, geography of "
               f"edition {result.geography})", err=True)
    if by != "municipality":
        click.echo(f"intervals: {N_DRAWS} coefficient draws (seed {result.seed}); the "
                   "census-sample uncertainty is ignored", err=True)
    if withheld:
        click.echo(f"{withheld} row(s) with a detailed split withheld (near-zero "
                   "denominator): their parts are empty", err=True)
