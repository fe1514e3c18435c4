"""The ``riskmap`` command line: one Click group; each area registers its commands.

- :mod:`riskmap.cli.core`  demo, build, export, show, relevel
- :mod:`riskmap.cli.web`   serve
- :mod:`riskmap.cli.real`  crosswalk, simulate, import-edition, fetch, harmonise
- :mod:`riskmap.cli.trend` trend
- :mod:`riskmap.cli.ficha` ficha
- :mod:`riskmap.cli.outcomes`  users add|list|disable|token, outcomes import|export

Commands that read or write the data directory take ``--data-dir``; ``crosswalk`` and
``harmonise`` only turn input files into an output file (``-o``).

Errors the user can cause (:class:`~riskmap.errors.RiskmapError`, and Click's usage errors
such as a missing option or a directory given for a file) print one line
``riskmap: error: ...`` on stderr and exit with code 2, never a traceback.
"""

from __future__ import annotations

import sys

import click

from ..errors import RiskmapError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="riskmap")
def cli():
    """riskmap: municipal risk maps of child labour (MIRTI-style model)."""


def data_dir_option(func):
    """The shared ``--data-dir`` option (default: the RISKMAP_DATA_DIR setting, else ./data)."""
    return click.option("--data-dir", type=click.Path(file_okay=False), default=None,
                        help="Data directory (default: $RISKMAP_DATA_DIR or ./data).")(func)


def resolve_data_dir(data_dir: str | None) -> str:
    import warnings

    from ..settings import resolve

    if data_dir:
        return data_dir
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = resolve()["data_dir"]
    for w in caught:  # an unknown RISKMAP_* variable: one line, like every other warning
        click.echo(f"riskmap: warning: {w.message}", err=True)
    return value


def main(argv=None):
    """Console-script entry point."""
    try:
        cli.main(args=argv, prog_name="riskmap", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("riskmap: aborted", err=True)
        sys.exit(1)
    except click.exceptions.UsageError as exc:
        # One line like every other input error (a directory given for a file, a missing
        # option...), with where to look for help instead of the multi-line usage block.
        where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        click.echo(f"riskmap: error: {exc.format_message()}{where}", err=True)
        sys.exit(2)
    except click.exceptions.ClickException as exc:
        click.echo(f"riskmap: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code if exc.exit_code else 2)
    except RiskmapError as exc:
        click.echo(f"riskmap: error: {exc.message}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(0)


# Register the commands (imported for their side effect on ``cli``).
from . import core, ficha, outcomes, real, trend, web  # noqa: E402, F401
