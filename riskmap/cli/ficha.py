"""The ``ficha`` command: a state's or a municipality's printable fact sheet as PDF.

It renders through the web service's own renderer (:func:`riskmap.web.fichas.ficha_pdf`) in
an offline request context, so the file is the one ``/estado/<cve>/ficha.pdf`` serves.
"""

from __future__ import annotations

import click

from . import cli, data_dir_option, resolve_data_dir


@cli.command()
@click.option("--edition", required=True, help="Edition name, e.g. 2023.")
@click.option("--state", "state", default=None, help="Two-digit state code: a state ficha.")
@click.option("--municipality", default=None, help="Five-digit municipal code (cvegeo).")
@click.option("--lang", type=click.Choice(["es", "en"]), default="es", show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="PDF file to write.")
@data_dir_option
def ficha(edition, state, municipality, lang, output, data_dir):
    """Write the printable ficha (PDF) of a state or a municipality."""
    from pathlib import Path

    from ..errors import InputError
    from ..publish.store import atomic_path
    from ..web import create_app
    from ..web.fichas import ficha_pdf

    if (state is None) == (municipality is None):
        raise InputError("give exactly one of --state CVE or --municipality CVEGEO")
    kind, code = ("estado", state.strip().zfill(2)) if state else ("municipio",
                                                                   municipality.strip())
    app = create_app({"data_dir": resolve_data_dir(data_dir), "auto_demo": False})
    with app.test_request_context(f"/?lang={lang}"):
        from ..web.atlas import get_atlas

        names = get_atlas().names()
        if edition not in names:
            raise InputError(f"edition {edition!r} is not published; published: "
                             + (", ".join(names) or "none"))
        body = ficha_pdf(kind, edition, code, lang)
    target = Path(output)
    with atomic_path(target) as tmp:
        tmp.write_bytes(body)
    click.echo(f"riskmap: wrote {target} ({len(body):,} bytes)", err=True)
