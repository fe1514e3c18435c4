"""Named worklists: a targeting plan saved by a user under a name.

A worklist stores the plan's normalised query string (the permalink of the targeting page),
its edition and when it was saved; the list itself is recomputed when it is reopened. Names are
unique per user; a user sees and deletes only their own worklists. Every save and delete adds
an audit row.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from ..errors import BadParameter, InputError, NotFound
from .db import worklists, writing
from .users import User, now, record_audit

MAX_NAME = 80
MAX_QUERY = 4000


def check_name(name) -> str:
    """A worklist name without surrounding spaces: 1-80 characters, no control characters.

    Raises
    ------
    BadParameter
        Empty, too long or with control characters.
    """
    text = name.strip() if isinstance(name, str) else ""
    if not 1 <= len(text) <= MAX_NAME or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise BadParameter("nombre", text[:MAX_NAME], message=(
            f"invalid worklist name: 1-{MAX_NAME} characters without control characters"))
    return text


def save(engine, user: User, name: str, query: str, edition: str) -> dict:
    """Store a worklist for ``user``; return it (see :func:`list_for`).

    Parameters
    ----------
    query : str
        The normalised query string of the targeting page (no leading ``?``).

    Raises
    ------
    BadParameter
        Bad name, or a query string longer than :data:`MAX_QUERY` characters.
    InputError
        The user already has a worklist with this name.
    """
    name = check_name(name)
    if not isinstance(query, str) or len(query) > MAX_QUERY:
        raise BadParameter("consulta", "...", message=f"the query string of a worklist has at "
                           f"most {MAX_QUERY} characters")
    with writing(engine).begin() as conn:
        taken = conn.execute(sa.select(worklists.c.id).where(
            worklists.c.user_id == user.id, worklists.c.name == name)).first()
        if taken:
            raise InputError(f"you already have a worklist named {name!r}; choose another name "
                             "or delete it first")
        created = now()
        wid = int(conn.execute(worklists.insert().values(
            user_id=user.id, name=name, query=query, edition=str(edition), created=created)
        ).inserted_primary_key[0])
        record_audit(conn, user.name, "worklist_save", id=wid, name=name, query=query)
    return {"id": wid, "name": name, "query": query, "edition": str(edition),
            "created": created}


def list_for(engine, user: User) -> list[dict]:
    """The worklists of ``user``, newest first: id, name, query, edition, created."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(worklists.c.id, worklists.c.name, worklists.c.query,
                                      worklists.c.edition, worklists.c.created)
                            .where(worklists.c.user_id == user.id)
                            .order_by(worklists.c.created.desc(), worklists.c.id.desc()))
        items = [dict(r._mapping) for r in rows]
    for item in items:
        if item["created"].tzinfo is None:  # SQLite gives naive UTC times
            item["created"] = item["created"].replace(tzinfo=dt.timezone.utc)
    return items


def delete(engine, user: User, wid: int) -> None:
    """Delete worklist ``wid`` of ``user``.

    Raises
    ------
    NotFound
        No such worklist among the user's own (another user's looks the same).
    """
    with writing(engine).begin() as conn:
        row = conn.execute(sa.select(worklists.c.name).where(
            worklists.c.id == int(wid), worklists.c.user_id == user.id)).first()
        if row is None:
            raise NotFound(f"no worklist {wid} of yours")
        conn.execute(worklists.delete().where(worklists.c.id == int(wid)))
        record_audit(conn, user.name, "worklist_delete", id=int(wid), name=row[0])
