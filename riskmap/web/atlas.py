"""Read-only, in-memory view of a data directory for the web service.

:class:`Atlas` loads editions lazily, keeps them in memory and reloads one when its file changes
on disk (a new publication replaces the file atomically, so the modification time moves).
Everything the views need is derived here, once, and cached: rows without geometry, rank
denominators, neighbours, search keys, comparisons. Views never touch the store directly.
"""

from __future__ import annotations

import fcntl
import math
import threading
import unicodedata
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd

from ..model.compare import parents
from ..publish.edition import EXTRA_COLUMNS, LEVELS, ROW_COLUMNS, Edition
from ..errors import NotFound
from ..publish.store import DataStore
from ..model.factors import describe_factor
from . import params

EXTENSION_KEY = "riskmap_atlas"
#: Two polygons closer than this (degrees) are neighbours; absorbs coordinate round-off.
NEIGHBOUR_TOLERANCE = 1e-6
#: Significance threshold of a change between editions (METHOD.md section 6, as riskmap.model.compare).
Z_CHANGE = 1.96
WORKLIST_CACHE = 32
_CHANGE_WORDS = {"increase": "aumento", "decrease": "disminucion", "none": "sin_cambio"}


def fold(text) -> str:
    """Lower-case, accent-free form of ``text`` for accent-insensitive matching."""
    decomposed = unicodedata.normalize("NFKD", str(text))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold().strip()


def clean(value):
    """JSON-friendly scalar: NaN/NA -> None, numpy scalars -> Python."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def record(row: pd.Series | dict) -> dict:
    """A row as a dict of JSON-friendly values."""
    return {k: clean(v) for k, v in dict(row).items()}


class Atlas:
    """In-memory, read-only view of a :class:`~riskmap.publish.store.DataStore`.

    Parameters
    ----------
    data_dir : str or Path
        The data directory (``RISKMAP_DATA_DIR``).

    Notes
    -----
    Thread-safe: gunicorn thread workers may share one instance. Loaded data are never
    mutated; methods that return tables return copies.
    """

    def __init__(self, data_dir):
        self.store = DataStore(data_dir)
        self._lock = threading.RLock()
        self._loaded: dict[str, tuple[int, Edition, pd.DataFrame]] = {}
        self._cache: dict[tuple, object] = {}
        self._names: tuple[int, list[str]] | None = None
        self._worklists: OrderedDict = OrderedDict()

    # -- editions ---------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Published edition names, oldest first.

        Cached until the editions folder changes: every publication renames a file into it,
        which moves the folder's modification time.
        """
        try:
            key = (self.store.root / "editions").stat().st_mtime_ns
        except FileNotFoundError:
            return []
        with self._lock:
            if self._names is not None and self._names[0] == key:
                return list(self._names[1])
        names = self.store.edition_names()
        with self._lock:
            self._names = (key, names)
        return list(names)

    def _check(self, name: str) -> str:
        names = self.names()
        if str(name) not in names:
            raise NotFound(f"edition {name!r} is not published; published: "
                           + (", ".join(names) or "none"),
                           errors=[f"edicion: published editions are {', '.join(names)}"])
        return str(name)

    def _mtime(self, name: str) -> int:
        try:
            return self.store.edition_path(name).stat().st_mtime_ns
        except FileNotFoundError:  # removed since the listing was read
            raise NotFound(f"edition {name!r} is not published") from None

    def _entry(self, name: str) -> tuple[int, Edition, pd.DataFrame]:
        name = self._check(name)
        mtime = self._mtime(name)
        with self._lock:
            entry = self._loaded.get(name)
            if entry is None or entry[0] != mtime:
                edition = self.store.load_edition(name)
                entry = (mtime, edition, _plain_rows(edition))
                self._loaded[name] = entry
                # Anything derived from the previous file is stale now.
                self._cache = {k: v for k, v in self._cache.items() if name not in k}
            return entry

    def _positions(self, name: str) -> dict[str, int]:
        """cvegeo -> row position in the edition's plain table (O(1) look-ups)."""
        table = self._entry(name)[2]
        return self.derived(name, "positions",
                            lambda: {c: i for i, c in enumerate(table["cvegeo"])})

    def has(self, name: str, cvegeo: str) -> bool:
        """Whether edition ``name``'s geography has municipality ``cvegeo``."""
        return str(cvegeo) in self._positions(name)

    def edition(self, name: str) -> Edition:
        """The published edition ``name``; :class:`NotFound` lists the valid names."""
        return self._entry(name)[1]

    def card(self, name: str) -> dict:
        """The model card of edition ``name``."""
        self._check(name)
        return self.derived(name, "card", lambda: self.store.load_card(name))

    def editions(self) -> list[dict]:
        """``[{name, year, kind, vintage, synthetic, semi_synthetic}]``, oldest first.

        ``synthetic`` is true for any simulated data; ``semi_synthetic`` singles out simulated
        records on INEGI's real geography (``riskmap simulate``), which the pages label
        differently from the fully synthetic demo.
        """
        out = []
        for name in self.names():
            card = self.card(name)
            synthetic = bool(card.get("synthetic", False))
            out.append({"name": name, "year": int(card.get("year") or 0),
                        "kind": card.get("kind", "modelled"), "vintage": str(card.get("vintage")),
                        "synthetic": synthetic,
                        "semi_synthetic": synthetic and bool(card.get("semi_synthetic", False))})
        return out

    def latest(self) -> str:
        """Name of the most recent edition; :class:`NotFound` when none is published."""
        names = self.names()
        if not names:
            raise NotFound("no edition is published in the data directory")
        return names[-1]

    def provenance(self, name: str) -> dict:
        """Provenance block (synthetic flags, sources, attribution) of edition ``name``."""
        from ..provenance import provenance

        return provenance(self.card(name))

    # -- rows -------------------------------------------------------------------------------
    def rows(self, name: str, estado: str | None = None, nivel: str | None = None) -> pd.DataFrame:
        """Municipal rows of an edition without geometry, optionally filtered.

        Parameters
        ----------
        name : str
            Edition name.
        estado : str, optional
            Two-digit state code; must be a state of the edition.
        nivel : str, optional
            One of :data:`riskmap.publish.edition.LEVELS`.

        Returns
        -------
        pandas.DataFrame
            ROW_COLUMNS + EXTRA_COLUMNS, sorted by ``cvegeo`` (a copy).

        Raises
        ------
        NotFound
            Unknown edition.
        BadParameter
            Unknown state or level (the message lists the allowed values).
        """
        table = self._entry(name)[2]
        estado = params.estado(estado, table["cve_ent"].unique())
        nivel = params.nivel(nivel)
        mask = np.ones(len(table), dtype=bool)
        if estado is not None:
            mask &= (table["cve_ent"] == estado).to_numpy()
        if nivel is not None:
            mask &= (table["level"] == nivel).to_numpy()
        return table.loc[mask].reset_index(drop=True)

    def derived(self, name: str, what: str, build):
        """``build()``, computed once per file of edition ``name`` and shared (callers must
        not mutate it): for what views derive from a whole edition."""
        return self._cached((what, name, self._mtime(name)), build)

    def layer_table(self, name: str) -> tuple[dict, dict]:
        """:func:`riskmap.web.maps.layer_table` of all an edition's rows (built once, shared:
        callers must not mutate it)."""
        def build():
            from . import maps

            return maps.layer_table(self._entry(name)[2])

        return self.derived(name, "layers", build)

    def geojson_geometries(self, name: str) -> dict[str, str]:
        """cvegeo -> GeoJSON geometry text of an edition's rows (encoded once, cached)."""
        def build():
            import shapely

            rows = self.edition(name).rows
            texts = shapely.to_geojson(rows.geometry.to_numpy())
            return dict(zip(rows["cvegeo"].astype(str), (str(t) for t in texts)))

        return self.derived(name, "geojson", build)

    def municipality(self, name: str, cvegeo: str) -> dict:
        """One municipality of an edition: its row, factor contributions and rank context.

        Returns
        -------
        dict
            The row's fields, plus ``factors`` (list sorted by decreasing contribution, each
            with covariate, label_es, label_en, domain, contribution, municipal_mean,
            national_mean), ``n_ranked`` (classified municipalities nationally) and
            ``n_ranked_state``.

        Raises
        ------
        NotFound
            Unknown edition or code (the message says which edition was searched).
        """
        _, edition, table = self._entry(name)
        pos = self._positions(name).get(str(cvegeo))
        if pos is None:
            raise NotFound(f"municipality {cvegeo!r} is not in edition {name} "
                           f"(geography {edition.vintage})",
                           errors=["cvegeo: a 5-digit INEGI code of that geography"])
        out = record(table.iloc[pos])
        ranked = table["rank_national"].notna()
        out["n_ranked"] = int(ranked.sum())
        out["n_ranked_state"] = int((ranked & (table["cve_ent"] == out["cve_ent"])).sum())
        out["factors"] = self._factors(name, edition, str(cvegeo))
        out["national_rate"] = edition.national_rate
        return out

    def _factors(self, name: str, edition: Edition, cvegeo: str) -> list[dict]:
        """Factor contributions of one municipality, by decreasing contribution.

        The edition's factor table is sorted and indexed by code once; only the asked
        municipality's rows (about ten) become dicts, per request. Converting all 2,469 x 10
        records up front cost the first municipality page of each worker ~0.7 s.
        """
        def build():
            fac = edition.factors
            if fac is None or len(fac) == 0:
                return None, {}, {}
            fac = pd.DataFrame(fac).sort_values(["cvegeo", "contribution"],
                                                ascending=[True, False], kind="stable")
            codes = fac["cvegeo"].astype(str).to_numpy()
            index = pd.Series(range(len(fac))).groupby(codes, sort=False).indices
            return (fac.drop(columns="cvegeo").reset_index(drop=True), index,
                    _covariate_labels(edition.card))

        fac, index, labels = self.derived(name, "factors", build)
        if cvegeo not in index:
            return []
        out = []
        for rec in fac.iloc[index[cvegeo]].to_dict("records"):
            rec = record(rec)
            lab = labels.get(rec["covariate"], {})
            rec["label_es"] = lab.get("es", rec["covariate"])
            rec["label_en"] = lab.get("en", rec["covariate"])
            for lang in ("es", "en"):
                rec[f"phrase_{lang}"] = describe_factor(rec[f"label_{lang}"],
                                                        rec.get("municipal_mean"),
                                                        rec.get("national_mean"), lang)
            out.append(rec)
        return out

    def records(self, name: str) -> list[dict]:
        """Every row of an edition as a JSON-ready dict, in table order (built once)."""
        table = self._entry(name)[2]
        return self.derived(name, "records",
                            lambda: [record(r) for r in table.to_dict("records")])

    def records_for(self, name: str, codes) -> list[dict]:
        """The JSON-ready rows of ``codes`` (in that order)."""
        positions, recs = self._positions(name), self.records(name)
        return [recs[positions[c]] for c in codes]

    # -- history through crosswalks ------------------------------------------------------------
    def history(self, cvegeo: str) -> list[dict]:
        """A municipality across all editions, oldest first, mapped through crosswalks.

        For each edition: ``edition, year, vintage, cvegeo`` (the code used in that edition),
        ``derived_from`` (the parent's code when the municipality did not exist in that
        vintage and takes its parent's value, else ``None``), ``level, probability, ci_low,
        ci_high, se`` and ``change`` versus the previous listed edition (``None`` for the
        first): ``{diff, sd, significant, direction, change}`` with ``direction`` one of
        ``increase`` / ``decrease`` / ``none`` and ``change`` the same in the vocabulary of
        :mod:`riskmap.model.compare` (``aumento`` / ``disminucion`` / ``sin_cambio``); METHOD.md
        section 6: significant when |d| > 1.96 sd, Var = Var_A + Var_B.

        Raises
        ------
        NotFound
            When the code is in no edition's geography.
        """
        cvegeo = str(cvegeo)
        names = self.names()
        home = None  # newest vintage where the code exists
        for name in reversed(names):
            if self.has(name, cvegeo):
                home = self.edition(name).vintage
                break
        if home is None:
            raise NotFound(f"municipality {cvegeo!r} is in no published edition",
                           errors=["cvegeo: a 5-digit INEGI code"])
        out, previous = [], None
        for name in names:
            edition, table = self.edition(name), self._entry(name)[2]
            positions = self._positions(name)
            code, parent = self._map_code(cvegeo, home, edition.vintage, positions)
            if code is None:
                continue
            row = table.iloc[positions[code]]
            item = {"edition": name, "year": edition.year, "vintage": edition.vintage,
                    "cvegeo": code, "derived_from": parent,
                    **{k: clean(row[k]) for k in ("nom_mun", "level", "probability", "ci_low",
                                                  "ci_high", "se")}}
            item["change"] = None if previous is None else change(previous, item)
            out.append(item)
            previous = item
        return out

    def _map_code(self, code: str, home: str, vintage: str, positions: dict):
        """Code of municipality ``code`` (of vintage ``home``) in ``vintage``: (code, parent)."""
        if code in positions:
            return code, None
        for src, dst, pick in ((vintage, home, "cvegeo_from"), (home, vintage, "cvegeo_to")):
            try:
                cw = self._crosswalk(src, dst)
            except NotFound:
                continue
            if pick == "cvegeo_from":
                # The edition's geography is older: the parent is the municipality that made
                # up most of this one's area (the same rule as riskmap.model.compare).
                parent = parents(cw[cw["cvegeo_to"] == code], pd.Index(list(positions))).get(code)
                if parent is not None:
                    return parent, parent
                continue
            # The edition's geography is newer: the piece that got most of this one's area.
            rows = cw[cw["cvegeo_from"] == code].sort_values("share", ascending=False)
            for other in rows["cvegeo_to"]:
                if other in positions:
                    return other, other
        return None, None

    def _crosswalk(self, src: str, dst: str) -> pd.DataFrame:
        path = self.store.crosswalk_path(src, dst)
        mtime = path.stat().st_mtime_ns if path.exists() else None
        return self._cached(("crosswalk", src, dst, mtime), lambda: self.store.load_crosswalk(src, dst))

    # -- geography --------------------------------------------------------------------------
    def _vintage_mtime(self, vintage: str) -> int:
        path = self.store.vintage_path(vintage)
        if not path.exists():
            raise NotFound(f"geography vintage {vintage!r} is not stored; stored: "
                           + (", ".join(self.store.vintage_names()) or "none"),
                           errors=[f"vintage: stored vintages are "
                                   f"{', '.join(self.store.vintage_names())}"])
        return path.stat().st_mtime_ns

    def vintages(self) -> list[str]:
        """Stored geography vintages."""
        return self.store.vintage_names()

    def geometry(self, vintage: str) -> tuple[bytes, str]:
        """The vintage's web layer as ``(gzip-compressed GeoJSON bytes, etag)``."""
        mtime = self._vintage_mtime(vintage)

        def build():
            from .weblayer import cached_web_layer

            return cached_web_layer(self.store, vintage)

        return self._cached(("geometry", vintage, mtime), build)

    def states(self, vintage: str) -> list[dict]:
        """``[{cve_ent, nom_ent, bounds, bbox}]`` sorted by code.

        ``bounds`` is ``[[south, west], [north, east]]`` (Leaflet's order), ``bbox`` is
        ``[west, south, east, north]`` (GeoJSON's order).
        """
        mtime = self._vintage_mtime(vintage)

        def build():
            mun = self.store.load_vintage(vintage)
            out = []
            for (ent, nom), group in mun.groupby(["cve_ent", "nom_ent"], sort=True):
                w, s, e, n = (float(v) for v in group.total_bounds)
                out.append({"cve_ent": str(ent), "nom_ent": str(nom),
                            "bounds": [[s, w], [n, e]], "bbox": [w, s, e, n]})
            return out

        return self._cached(("states", vintage, mtime), build)

    def neighbours(self, vintage: str, cvegeo: str, edition: str | None = None) -> list[dict]:
        """Municipalities touching ``cvegeo`` in ``vintage``, with their level and probability.

        Parameters
        ----------
        vintage : str
        cvegeo : str
        edition : str, optional
            Edition whose values are attached; default the latest edition on ``vintage``.
        """
        mtime = self._vintage_mtime(vintage)
        adjacency = self._cached(("adjacency", vintage, mtime), lambda: self._adjacency(vintage))
        if str(cvegeo) not in adjacency:
            raise NotFound(f"municipality {cvegeo!r} is not in geography {vintage}")
        if edition is None:
            on_vintage = [e["name"] for e in self.editions() if e["vintage"] == vintage]
            edition = on_vintage[-1] if on_vintage else None
        table, positions = None, {}
        if edition is not None:
            table, positions = self._entry(edition)[2], self._positions(edition)
        out = []
        for code, name in adjacency[str(cvegeo)]:
            item = {"cvegeo": code, "nom_mun": name, "level": None, "probability": None}
            if code in positions:
                row = table.iloc[positions[code]]
                item.update(nom_mun=row["nom_mun"], level=row["level"],
                            probability=clean(row["probability"]))
            out.append(item)
        return out

    def _adjacency(self, vintage: str) -> dict[str, list[tuple[str, str]]]:
        """Touching polygons, computed once per vintage with an STRtree."""
        from shapely import STRtree

        mun = self.store.load_vintage(vintage)
        geoms = mun.geometry.to_numpy()
        tree = STRtree(geoms)
        left, right = tree.query(geoms, predicate="dwithin", distance=NEIGHBOUR_TOLERANCE)
        codes = mun["cvegeo"].astype(str).to_numpy()
        names = mun["nom_mun"].astype(str).to_numpy()
        out: dict[str, list[tuple[str, str]]] = {c: [] for c in codes}
        for i, j in zip(left, right):
            if i != j:
                out[codes[i]].append((codes[j], names[j]))
        return {k: sorted(v) for k, v in out.items()}

    # -- search -----------------------------------------------------------------------------
    def search(self, query: str, edition: str | None = None, limit: int = 20) -> list[dict]:
        """Municipalities whose name or code matches ``query`` (accent- and case-insensitive).

        Exact matches come first, then prefixes, then substrings; codes match by prefix.
        Returns ``[{cvegeo, nom_mun, cve_ent, nom_ent, level}]`` (at most ``limit``).
        """
        edition = edition or self.latest()
        table = self._entry(edition)[2]
        key = self.derived(edition, "search", lambda: table["nom_mun"].map(fold).to_numpy())
        q = fold(query or "")
        if not q:
            return []
        if q.isdigit():
            hits = table.index[table["cvegeo"].str.startswith(q)]
            order = [(0 if table.at[i, "cvegeo"] == q else 1, i) for i in hits]
        else:
            order = []
            for i, name in zip(table.index, key):
                pos = name.find(q)
                if pos >= 0:
                    order.append((0 if name == q else 1 if pos == 0 else 2, i))
        sort_col = table["cvegeo"] if q.isdigit() else pd.Series(key, index=table.index)
        order.sort(key=lambda t: (t[0], sort_col.at[t[1]], t[1]))
        cols = ["cvegeo", "nom_mun", "cve_ent", "nom_ent", "level"]
        return [record(table.loc[i, cols]) for _, i in order[:limit]]

    # -- comparison and targeting -------------------------------------------------------------
    def comparison(self, a: str, b: str):
        """The comparison of editions ``a`` and ``b`` (riskmap.model.compare), cached."""
        ea, eb = self.edition(a), self.edition(b)
        key = ("comparison", a, b, self._mtime(a), self._mtime(b))

        def build():
            from ..model import compare

            return compare.compare(ea, eb, store=self.store)

        return self._cached(key, build)

    def comparison_summary(self, a: str, b: str) -> dict:
        """JSON-ready summary of :meth:`comparison` (without the per-municipality table)."""
        key = ("comparison_summary", a, b, self._mtime(a), self._mtime(b))

        def build():
            comparison = self.comparison(a, b)
            data = comparison.to_dict()
            data["changes_count"] = len(data.pop("changes", []) or [])
            return data

        return self._cached(key, build)

    def targeting(self, edition: str, visits: int, q: float, states=None, levels=None,
                  by: str = "conteo") -> pd.DataFrame:
        """Greedy allocation of ``visits`` inspections (riskmap.model.targeting.allocate).

        Parameters
        ----------
        edition : str
        visits : int
        q : float
            Share of a municipality's child labour one visit reaches, in (0, 1].
        states, levels : list of str, optional
            Restrict to these state codes / levels (validated; empty = all).
        by : {"conteo", "tasa"}
            Rank by expected children in child labour or by probability.
        """
        return self._worklist(edition, visits, q, states, levels, by)[0].copy()

    def targeting_records(self, edition: str, visits: int, q: float, states=None, levels=None,
                          by: str = "conteo") -> list[dict]:
        """:meth:`targeting` as JSON-ready dicts (converted once per cached worklist)."""
        entry = self._worklist(edition, visits, q, states, levels, by)
        if entry[1] is None:
            entry[1] = [record(r) for r in entry[0].to_dict("records")]
        return entry[1]

    def _worklist(self, edition, visits, q, states, levels, by) -> list:
        """``[worklist, records or None]`` from a small LRU keyed by the parameters."""
        from ..model import targeting

        table = self._entry(edition)[2]
        states = params.choices("estados", states, sorted(table["cve_ent"].unique()))
        levels = params.choices("niveles", levels, LEVELS)
        by = params.choice("criterio", by, params.CRITERIA, "conteo")
        key = (edition, self._mtime(edition), int(visits), float(q), tuple(states),
               tuple(levels), by)
        with self._lock:
            if key in self._worklists:
                self._worklists.move_to_end(key)
                return self._worklists[key]
        worklist = targeting.allocate(table, visits=visits, q=q, states=states or None,
                                      levels=levels or None,
                                      by="count" if by == "conteo" else "rate")
        entry = [worklist, None]
        # The form's defaults and permalinks repeat; arbitrary combinations do not.
        with self._lock:
            self._worklists[key] = entry
            while len(self._worklists) > WORKLIST_CACHE:
                self._worklists.popitem(last=False)
        return entry

    # -- cache ------------------------------------------------------------------------------
    def _cached(self, key: tuple, build):
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        value = build()
        with self._lock:
            self._cache[key] = value
        return value


def change(a: dict, b: dict) -> dict | None:
    """Change from ``a`` to ``b`` (dicts with probability and se).

    ``None`` when either side lacks a probability or a standard error (imported editions
    publish none): without both, no significance test is possible.
    """
    pa, pb, sa, sb = a.get("probability"), b.get("probability"), a.get("se"), b.get("se")
    if pa is None or pb is None or sa is None or sb is None:
        return None
    diff = pb - pa
    sd = math.sqrt(sa ** 2 + sb ** 2)
    significant = bool(abs(diff) > Z_CHANGE * sd)
    direction = ("increase" if diff > 0 else "decrease") if significant else "none"
    return {"diff": diff, "sd": sd, "significant": significant, "direction": direction,
            "change": _CHANGE_WORDS[direction]}


def _plain_rows(edition: Edition) -> pd.DataFrame:
    """Edition rows without geometry, in contract column order, codes as str, ranks Int64."""
    cols = [c for c in ROW_COLUMNS + EXTRA_COLUMNS if c in edition.rows.columns]
    table = pd.DataFrame(edition.rows[cols]).copy()
    for col in ("rank_national", "rank_state", "children", "n_records"):
        if col in table.columns:
            table[col] = pd.to_numeric(table[col]).round().astype("Int64")
    for col in ("cvegeo", "cve_ent", "cve_mun", "edition", "vintage"):
        if col in table.columns:
            table[col] = table[col].astype(str)
    table["top_factors"] = table["top_factors"].fillna("").astype(str)
    return table.sort_values("cvegeo").reset_index(drop=True)


def _covariate_labels(card: dict | None = None) -> dict[str, dict]:
    """Covariate -> {"es", "en"} labels: the edition's own spec first, then the default spec."""
    labels: dict[str, dict] = {}
    try:
        from ..spec import load_spec

        for c in load_spec().covariates:
            labels[c.name] = {"es": c.label_es, "en": c.label_en}
    except Exception:  # noqa: BLE001 - labels are a nicety; names are shown instead
        pass
    spec = (card or {}).get("spec") or {}
    for c in spec.get("covariates") or []:
        if isinstance(c, dict) and "name" in c:
            labels[c["name"]] = {"es": c.get("label_es", c["name"]),
                                 "en": c.get("label_en", c["name"])}
    return labels


# -- Flask wiring -----------------------------------------------------------------------------
def ensure_data(data_dir, auto_demo: bool, seed: int) -> None:
    """Build the synthetic demo into an empty data directory, once across processes.

    Several gunicorn workers start together; an exclusive ``fcntl`` lock on
    ``<data_dir>/.demo.lock`` makes the first build and the others wait, then find it built.
    A worker that starts while a build runs also waits, so it never serves half a demo.
    """
    if not auto_demo:
        return
    store = DataStore(data_dir)
    root = Path(data_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock = open(root / ".demo.lock", "a")
    except OSError:
        if store.edition_names():
            return  # a read-only directory with published editions needs no demo
        raise
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not store.edition_names():
                from ..demo import build_demo

                build_demo(root, seed=seed)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def init_app(app) -> None:
    """Attach an :class:`Atlas` of ``settings["data_dir"]`` to ``app`` (building the demo if due)."""
    settings = app.config["RISKMAP"]
    ensure_data(settings["data_dir"], settings["auto_demo"], settings["demo_seed"])
    app.extensions[EXTENSION_KEY] = Atlas(settings["data_dir"])


def get_atlas() -> Atlas:
    """The current application's :class:`Atlas`."""
    from flask import current_app

    return current_app.extensions[EXTENSION_KEY]
