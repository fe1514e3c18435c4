"""The ``serve`` command: run the web service with Werkzeug's server.

For production use ``gunicorn wsgi:app`` (same settings, from ``RISKMAP_*`` variables).
When the data directory holds no edition and the ``auto_demo`` setting is on (the default),
the synthetic demo is built first, so ``riskmap serve`` on a fresh checkout shows a map.
"""

from __future__ import annotations

import click

from . import cli, data_dir_option, resolve_data_dir


@cli.command()
@data_dir_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on (0.0.0.0 to accept other machines).")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535),
              help="TCP port.")
@click.option("--debug/--no-debug", default=False, help="Reload on code changes (development).")
@click.option("--establishments", type=click.Path(dir_okay=False), default=None,
              help="CSV cvegeo,count of inspectable workplaces per municipality for targeting "
                   "(default: the establishments_file setting, else 0.2 x children).")
def serve(data_dir, host, port, debug, establishments):
    """Serve the maps, pages and JSON API (read-only) on HOST:PORT."""
    from ..demo.ensure import ensure_demo_from_settings
    from ..settings import resolve
    from ..web import create_app
    from ..web.atlas import EXTENSION_KEY

    data_dir = resolve_data_dir(data_dir)
    click.echo(f"riskmap: data directory {data_dir}", err=True)
    if ensure_demo_from_settings(resolve({"data_dir": data_dir})):
        click.echo("riskmap: no edition found; built the synthetic demo", err=True)
    config = {"data_dir": data_dir}
    if establishments:
        from ..model.targeting import read_workplaces

        read_workplaces(establishments)  # a bad table stops here with one line, exit 2
        config["establishments_file"] = str(establishments)
    app = create_app(config)
    names = app.extensions[EXTENSION_KEY].names()
    from .outcomes import print_demo_account, setup_demo_outcomes

    print_demo_account(setup_demo_outcomes(data_dir))  # a demo built on start: its account
    click.echo(f"riskmap: editions {', '.join(names) or 'none'}; "
               f"open http://{host}:{port}/", err=True)
    app.run(host=host, port=port, debug=debug, use_reloader=debug)
