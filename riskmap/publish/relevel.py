"""Re-classify an edition under another level rule, without refitting (docs/METHOD.md section 4).

:func:`relevelled` works in memory (the web service uses it to compare editions under one
rule); :func:`relevel_published` rewrites a published edition through the store's atomic
publish, so a failure or a kill mid-way leaves the previous classification serving.
"""

from __future__ import annotations

from datetime import datetime, timezone

from ..model import rules
from .edition import LEVELS, Edition
from .store import DataStore


def relevelled(edition: Edition, spec=None, name: str = "levels") -> Edition:
    """A copy of ``edition`` classified under rule ``spec``.

    Parameters
    ----------
    edition : Edition
        A modelled edition (rows with ``probability``, ``se``, ``ci_low``, ``ci_high``,
        ``n_records``; rows may lack geometry).
    spec : str or riskmap.model.rules.LevelRule, optional
        Default ``mirti``.
    name : str
        Option or parameter named in error messages.

    Returns
    -------
    Edition
        New rows (``level``, ``level_rule``, ``level_certainty``) and card (``rule``,
        ``level_counts``, and ``relevelled_from``: the rule it replaced); factors shared.

    Raises
    ------
    BadParameter, InputError
        See :func:`riskmap.model.rules.relevel`.
    """
    level, certainty, rule = rules.relevel(edition.rows, edition.card, spec, name)
    rows = edition.rows.copy()
    rows["level"] = level.to_numpy(dtype=object)
    rows["level_rule"] = rule["spec"]
    rows["level_certainty"] = certainty.to_numpy(dtype=float)
    counts = rows["level"].value_counts()
    card = dict(edition.card)
    previous = (edition.card.get("rule") or {}).get("spec") or (
        edition.card.get("rule") or {}).get("id")
    card["rule"] = rule
    card["level_counts"] = {lev: int(counts.get(lev, 0)) for lev in LEVELS}
    if previous != rule["spec"]:
        card["relevelled_from"] = previous
    return Edition(name=edition.name, rows=rows, factors=edition.factors, card=card)


def relevel_published(data_dir, edition_name: str, spec=None) -> Edition:
    """Re-classify the published edition ``edition_name`` and publish it atomically.

    Parameters
    ----------
    data_dir : str, Path or DataStore
    edition_name : str
    spec : str, optional
        Level rule (default ``mirti``); checked before the edition is read.

    Returns
    -------
    Edition
        The edition as now published.

    Raises
    ------
    NotFound
        The edition is not published (lists those that are).
    BadParameter, InputError
        A bad rule, or an imported edition (its levels stay as published).
    """
    rule = rules.get_rule(spec)
    store = data_dir if isinstance(data_dir, DataStore) else DataStore(data_dir)
    edition = store.load_edition(edition_name)
    new = relevelled(edition, rule)
    new.card["relevelled"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    store.publish_edition(new)
    return new


def counts_under(edition: Edition, spec) -> dict[str, int]:
    """Level counts of ``edition`` under rule ``spec`` (published counts for imported ones)."""
    if edition.kind == "imported":
        return edition.level_counts()
    level, _, _ = rules.relevel(edition.rows, edition.card, spec)
    counts = level.value_counts()
    return {lev: int(counts.get(lev, 0)) for lev in LEVELS}


__all__ = ["counts_under", "relevel_published", "relevelled"]
