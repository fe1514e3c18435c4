"""Inspection outcomes on the command line: ``users add|list|disable|token`` and
``outcomes import|export``; also the demo's outcomes and inspector account.

The database is the ``database_url`` setting (``RISKMAP_DATABASE_URL``), else SQLite at
``<data dir>/riskmap.sqlite``. Passwords come from a prompt (never echoed) or, for scripts,
from standard input with ``--password-stdin``; they are never printed or logged.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import click

from ..errors import InputError
from . import cli, data_dir_option, resolve_data_dir

DEMO_USER = "demo"


def _engine(data_dir):
    from ..outcomes import db
    from ..settings import resolve

    settings = dict(resolve(), data_dir=resolve_data_dir(data_dir))
    return db.get_engine(db.database_url(settings))


@cli.group()
def users():
    """Accounts of the inspection-outcome pages (roles: inspector, admin)."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["inspector", "admin"]), required=True,
              help="inspector: uploads and sees outcomes; admin: also manages users.")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input.")
@data_dir_option
def users_add(name, role, password_stdin, data_dir):
    """Create account NAME (password from a prompt, or --password-stdin)."""
    from ..outcomes import users as accounts

    accounts.check_name(name)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    accounts.add_user(_engine(data_dir), name, role, password)
    click.echo(f"user {name} added ({role})")


@users.command("list")
@data_dir_option
def users_list(data_dir):
    """List accounts (name, role, state, created)."""
    from ..outcomes import users as accounts

    for u in accounts.list_users(_engine(data_dir)):
        state = "disabled" if u["disabled"] else "active"
        click.echo(f"{u['name']:<24} {u['role']:<10} {state:<9} {u['created']:%Y-%m-%d}")


@users.command("disable")
@click.argument("name")
@data_dir_option
def users_disable(name, data_dir):
    """Disable account NAME and revoke its API tokens."""
    from ..outcomes import users as accounts

    accounts.disable_user(_engine(data_dir), name)
    click.echo(f"user {name} disabled")


@users.command("token")
@click.argument("name")
@data_dir_option
def users_token(name, data_dir):
    """Print a new API token for NAME once (earlier tokens stop working)."""
    from ..outcomes import users as accounts

    token = accounts.issue_token(_engine(data_dir), name)
    click.echo(token)
    click.echo("riskmap: store this token now; only its hash is kept "
               "(send it as 'Authorization: Bearer <token>')", err=True)


@cli.group()
def outcomes():
    """Inspection visit records: import and export."""


def _known_codes(data_dir) -> set | None:
    from ..publish.store import DataStore

    store = DataStore(resolve_data_dir(data_dir))
    codes: set = set()
    for name in store.edition_names():
        codes.update(store.load_edition(name).rows["cvegeo"].astype(str))
    return codes or None


@outcomes.command("import")
@click.option("--file", "path", required=True, type=click.Path(dir_okay=False),
              help="Visit records, CSV (UTF-8 or latin-1) or XLSX.")
@click.option("--user", "actor", default=None,
              help="Who imports (recorded in the audit table; default: the system user).")
@data_dir_option
def outcomes_import(path, actor, data_dir):
    """Import visit records in one transaction (any bad row: nothing imported, exit 2)."""
    import getpass

    from ..outcomes import visits

    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", file=path) from None
    actor = actor or f"cli:{getpass.getuser()}"
    try:
        result = visits.import_bytes(_engine(data_dir), data, path.name, actor,
                                     known_codes=_known_codes(data_dir))
    except visits.ImportRefused as exc:
        for line in exc.errors:
            click.echo(f"riskmap: {line}", err=True)
        raise
    click.echo(f"{path.name}: {result.inserted:,} visits imported, {result.unchanged:,} "
               "already stored unchanged")


@outcomes.command("export")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Output file, .csv or .xlsx.")
@data_dir_option
def outcomes_export(output, data_dir):
    """Write every stored visit to a CSV or XLSX file (formulas neutralised)."""
    from ..outcomes import visits

    eng = _engine(data_dir)
    visits.export(eng, output)
    click.echo(f"{visits.count(eng):,} visits written to {output}")


def setup_demo_outcomes(data_dir) -> str | None:
    """Import the demo's synthetic visits and create the demo inspector account.

    Returns the account's password (to print once; it is stored only as a hash), or ``None``
    when the account already exists or the data directory has no synthetic visits.
    """
    from ..demo.outcomes import FILE_NAME
    from ..outcomes import users as accounts, visits

    path = Path(resolve_data_dir(data_dir)) / "demo" / FILE_NAME
    if not path.exists():
        return None
    eng = _engine(data_dir)
    visits.import_bytes(eng, path.read_bytes(), path.name, "demo",
                        known_codes=_known_codes(data_dir))
    if any(u["name"] == DEMO_USER for u in accounts.list_users(eng)):
        return None
    password = secrets.token_urlsafe(12)
    accounts.add_user(eng, DEMO_USER, "inspector", password, actor="demo")
    return password


def print_demo_account(password: str | None) -> None:
    if password:
        click.echo(f"demo inspector account: user '{DEMO_USER}', password '{password}' "
                   "(shown once; only its hash is stored)")
