"""Read-only, in-memory view of a data directory for the web service.

:class:`Atlas` loads editions lazily, keeps them in memory and reloads one when its file changes
on disk (a new publication replaces the file atomically, so the modification time moves).
Everything the views need is derived here, once, and cached: rows without geometry, rank
denominators, neighbours, search keys, comparisons. Views never touch the store directly.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import pandas as pd

from ..publish.edition import ESTIMATOR_COLUMNS, EXTRA_COLUMNS, LEVELS, ROW_COLUMNS, Edition
from ..choices import fold
from ..errors import InputError, NotFound
from ..ingest.adjacency import adjacency as touching
from ..jsonable import jsonable
from ..publish.store import DataStore
from ..model.factors import describe_factor
from . import params

EXTENSION_KEY = "riskmap_atlas"
WORKLIST_CACHE = 32


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
        self._bounded: OrderedDict = OrderedDict()

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
        """The model card of edition ``name``.

        Keyed by the card file's own modification time too: a publication renames the
        GeoPackage and then the card, and a card read between the two must not stick.
        """
        self._check(name)
        try:
            card_mtime = self.store.edition_path(name).with_suffix(
                ".model_card.json").stat().st_mtime_ns
        except FileNotFoundError:
            card_mtime = None
        return self.derived(name, "card", lambda: self.store.load_card(name), card_mtime)

    def loaded(self) -> list[str]:
        """Names of the editions held in memory now (what ``/salud`` reports)."""
        with self._lock:
            return sorted(self._loaded)

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
    def rows(self, name: str, state: str | None = None, level: str | None = None) -> pd.DataFrame:
        """Municipal rows of an edition without geometry, optionally filtered.

        Parameters
        ----------
        name : str
            Edition name.
        state : str, optional
            A state of the edition: its code (``"07"``, ``"7"``) or name (``"chiapas"``;
            case and accents are ignored).
        level : str, optional
            One of :data:`riskmap.publish.edition.LEVELS` (case and accents are ignored).

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
        state = params.estado(state, self.state_names(name))
        level = params.nivel(level)
        mask = np.ones(len(table), dtype=bool)
        if state is not None:
            mask &= (table["cve_ent"] == state).to_numpy()
        if level is not None:
            mask &= (table["level"] == level).to_numpy()
        return table.loc[mask].reset_index(drop=True)

    def state_names(self, name: str) -> dict[str, str]:
        """``{cve_ent: nom_ent}`` of the states of edition ``name``, by code."""
        table = self._entry(name)[2]
        return self.derived(name, "state_names", lambda: dict(
            table[["cve_ent", "nom_ent"]].drop_duplicates("cve_ent").sort_values("cve_ent")
            .itertuples(index=False, name=None)))

    def derived(self, name, what: str, build, *extra, bounded: bool = False):
        """``build()``, computed once per file of edition ``name`` and shared (callers must
        not mutate it): for what views derive from a whole edition.

        Parameters
        ----------
        name : str or tuple of str
            The edition, or the editions (a comparison, a trend) the value derives from; a
            new file of any of them gives a new value.
        what : str
            What is derived (part of the key).
        build : callable
            Computes the value (called once per key).
        *extra
            Further key parts: parameters, or the modification time of another file the
            value depends on (a crosswalk).
        bounded : bool
            Keep the value in a small LRU (:data:`WORKLIST_CACHE` entries) instead of for
            the life of the files: for keys with free parameters (worklists), whose number
            is unbounded.
        """
        names = (name,) if isinstance(name, str) else tuple(name)
        key = (what, *names, *(self._mtime(n) for n in names), *extra)
        if not bounded:
            return self._cached(key, build)
        with self._lock:
            if key in self._bounded:
                self._bounded.move_to_end(key)
                return self._bounded[key]
        value = build()
        with self._lock:
            self._bounded[key] = value
            while len(self._bounded) > WORKLIST_CACHE:
                self._bounded.popitem(last=False)
        return value

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
        out = jsonable(table.iloc[pos])
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
            rec = jsonable(rec)
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
                            lambda: [jsonable(r) for r in table.to_dict("records")])

    def records_for(self, name: str, codes) -> list[dict]:
        """The JSON-ready rows of ``codes`` (in that order)."""
        positions, recs = self._positions(name), self.records(name)
        return [recs[positions[c]] for c in codes]

    # -- history through crosswalks ------------------------------------------------------------
    def history(self, cvegeo: str) -> list[dict]:
        """A municipality across all editions: :func:`riskmap.model.compare.history` over the
        cached editions and crosswalks.

        Raises
        ------
        NotFound
            When the code is in no edition's geography.
        """
        from ..model.compare import history

        return history(str(cvegeo), [self._history_rows(n) for n in self.names()],
                       self._crosswalk)

    def _history_rows(self, name: str):
        """:class:`riskmap.model.compare.EditionRows` of an edition (built once per file)."""
        from ..model.compare import EditionRows

        def build():
            edition, table = self.edition(name), self._entry(name)[2]
            cols = [c for c in ("nom_mun", "level", "probability", "ci_low", "ci_high", "se",
                                "level_rule")
                    if c in table.columns]
            rows = {code: {k: jsonable(v) for k, v in zip(cols, values)}
                    for code, values in zip(table["cvegeo"],
                                            table[cols].itertuples(index=False))}
            return EditionRows(name=name, year=edition.year, vintage=str(edition.vintage),
                               rows=rows, kind=self.card(name).get("kind", "modelled"))

        return self.derived(name, "history_rows", build)

    def _crosswalk(self, src: str, dst: str) -> pd.DataFrame | None:
        """The stored crosswalk ``src -> dst`` (cached per file), ``None`` when not stored."""
        path = self.store.crosswalk_path(src, dst)
        if not path.exists():
            return None
        mtime = path.stat().st_mtime_ns
        return self._cached(("crosswalk", src, dst, mtime),
                            lambda: self.store.load_crosswalk(src, dst))

    # -- geography --------------------------------------------------------------------------
    def _vintage_mtime(self, vintage: str) -> int:
        try:
            path = self.store.vintage_path(vintage)
        except InputError:  # not even a valid name: unknown all the same (404, not 400)
            path = None
        if path is None or not path.exists():
            raise NotFound(f"geography vintage {vintage!r} is not stored; stored: "
                           + (", ".join(self.store.vintage_names()) or "none"),
                           errors=[f"vintage: stored vintages are "
                                   f"{', '.join(self.store.vintage_names())}"])
        return path.stat().st_mtime_ns

    def vintages(self) -> list[str]:
        """Stored geography vintages."""
        return self.store.vintage_names()

    def geometry(self, vintage: str, fmt: str = "geojson") -> tuple[bytes, str]:
        """The vintage's web layer as ``(gzip-compressed bytes, etag)``.

        ``fmt`` is ``"geojson"`` or ``"topojson"`` (:mod:`riskmap.web.weblayer`). The layer
        carries the attribution of the latest edition published on the vintage, so the key
        holds that attribution too: a new edition with another credit rebuilds the layer.
        """
        mtime = self._vintage_mtime(vintage)
        attribution = self.vintage_attribution(vintage)

        def build():
            from .weblayer import cached_web_layer

            return cached_web_layer(self.store, vintage, fmt=fmt)

        return self._cached(("geometry", vintage, mtime, fmt, repr(attribution)), build)

    def vintage_attribution(self, vintage: str) -> dict | None:
        """Attribution of the latest edition published on ``vintage`` (None when none is):
        :func:`riskmap.web.weblayer.vintage_attribution` over the cached cards."""
        from .weblayer import attribution_of

        def cards():
            for name in reversed(self.names()):
                try:
                    yield self.card(name)
                except NotFound:  # removed since the listing was read
                    continue

        return attribution_of(cards(), vintage)

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
        adjacency = self._cached(("adjacency", vintage, mtime),
                                 lambda: touching(self.store.load_vintage(vintage)))
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
                            probability=jsonable(row["probability"]))
            out.append(item)
        return out

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
        return [jsonable(table.loc[i, cols]) for _, i in order[:limit]]

    # -- level rules ----------------------------------------------------------------------------
    def under_rule(self, name: str, rule=None) -> Edition:
        """Edition ``name`` classified under level rule ``rule`` (default ``mirti``).

        The edition itself when its stored rule is ``rule`` or it is imported (published
        levels are kept); otherwise re-levelled in memory (rows without geometry), once per
        edition file and rule.
        """
        from ..model.rules import get_rule
        from ..publish.edition import rule_of

        rule = get_rule(rule, "regla")
        edition = self.edition(name)
        if edition.kind == "imported" or rule_of(edition.card) == rule.spec:
            return edition

        def build():
            from ..publish.relevel import relevelled

            plain = Edition(name=edition.name, rows=self._entry(name)[2],
                            factors=edition.factors, card=edition.card)
            return relevelled(plain, rule, "regla")

        return self.derived(name, ("relevelled", rule.spec), build)

    def rule_use(self, name: str, rule=None) -> dict:
        """How edition ``name`` is classified when rule ``rule`` is asked for.

        Returns
        -------
        dict
            ``edition``, ``stored`` (its stored rule spec, ``publicado`` for imported
            editions), ``used`` (the rule its levels follow here), ``relevelled`` (bool),
            ``text`` {es, en} (the rule's description with this edition's cut-offs) and
            ``counts`` (levels under ``used``).
        """
        from ..publish.edition import rule_of

        edition = self.under_rule(name, rule)
        stored = rule_of(self.card(name))
        used = rule_of(edition.card)
        rule_entry = edition.card.get("rule") or {}
        from ..provenance import rule_text

        return {"edition": name, "stored": stored, "used": used, "relevelled": used != stored,
                "text": {lang: rule_text(rule_entry, lang) for lang in ("es", "en")},
                "counts": edition.level_counts()}

    # -- comparison and targeting -------------------------------------------------------------
    def comparison(self, a: str, b: str, rule=None):
        """The comparison of editions ``a`` and ``b`` under one level rule (default
        ``mirti``; riskmap.model.compare), computed once per pair of files, crosswalks and
        rule (shared by the page, the API and its CSV)."""
        from ..model.rules import get_rule

        spec = get_rule(rule, "regla").spec
        ea, eb = self.under_rule(a, spec), self.under_rule(b, spec)

        def build():
            from ..model import compare

            return compare.compare(ea, eb, store=self.store)

        return self.derived((a, b), "comparison", build, spec,
                            self._crosswalk_mtimes(ea.vintage, eb.vintage))

    def comparison_summary(self, a: str, b: str, rule=None) -> dict:
        """JSON-ready summary of :meth:`comparison` (without the per-municipality table),
        with ``rule`` (the rule asked for), ``levels`` (:meth:`rule_use` of ``a`` and ``b``)
        and ``counts_by_rule`` (level counts under ``mirti`` and ``significance``)."""
        from ..model.rules import get_rule

        spec = get_rule(rule, "regla").spec

        def build():
            comparison = self.comparison(a, b, spec)
            data = comparison.to_dict()
            data["changes_count"] = len(data.pop("changes", []) or [])
            data["rule"] = spec
            data["levels"] = {"a": self.rule_use(a, spec), "b": self.rule_use(b, spec)}
            data["counts_by_rule"] = self.counts_by_rule(a, b, spec)
            return data

        ea, eb = self.edition(a), self.edition(b)
        return self.derived((a, b), "comparison_summary", build, spec,
                            self._crosswalk_mtimes(ea.vintage, eb.vintage))

    def _crosswalk_mtimes(self, *vintages: str) -> tuple:
        """Modification times of the crosswalks between ``vintages`` (None when absent): a
        crosswalk stored later changes what a comparison can align."""
        out = []
        for src in vintages:
            for dst in vintages:
                if src != dst:
                    path = self.store.crosswalk_path(src, dst)
                    out.append(path.stat().st_mtime_ns if path.exists() else None)
        return tuple(out)

    def trend(self, a: str, b: str):
        """The trend decomposition of editions ``a`` and ``b`` (riskmap.model.trend), computed
        once per pair of edition files."""
        self._check(a)
        self._check(b)
        key = ("trend", a, b, self._mtime(a), self._mtime(b))

        def build():
            from ..model.trend import load_trend

            # The municipal rows follow the older edition's geography; its names are here.
            older = a if self.edition(a).year <= self.edition(b).year else b
            names = self._entry(older)[2][["cvegeo", "cve_ent", "nom_ent", "nom_mun"]]
            return load_trend(self.store, a, b, names=names)

        return self._cached(key, build)
    def counts_by_rule(self, a: str, b: str, rule=None) -> dict:
        """``{rule: {level: {"a": n, "b": n}}}`` for ``rule``, ``mirti`` and ``significance``
        (each edition on its own geography; imported editions keep their published counts)."""
        from ..model.rules import get_rule

        specs = list(dict.fromkeys([get_rule(rule, "regla").spec, "mirti", "significance"]))
        out = {}
        for spec in specs:
            ca, cb = (self.rule_use(n, spec)["counts"] for n in (a, b))
            out[spec] = {lev: {"a": ca[lev], "b": cb[lev]} for lev in LEVELS}
        return out

    def targeting(self, edition: str, visits: int, lam: float, states=None, levels=None,
                  by: str = "conteo", exclude=(), workplaces=None) -> pd.DataFrame:
        """Greedy allocation of ``visits`` inspections (riskmap.model.targeting.allocate).

        Parameters
        ----------
        edition : str
        visits : int
        lam : float
            λ, children found per visited workplace at the national rate.
        states, levels : list of str, optional
            Restrict to these state codes / levels (validated; empty = all).
        by : {"conteo", "tasa"}
            Order by expected children found in total or per visit.
        exclude : iterable of str
            Municipalities left out (visited within the cool-down window).
        workplaces : (key, DataFrame) or None
            Workplace table ``cvegeo, count`` with a hashable cache key.
        """
        return self._worklist(edition, visits, lam, states, levels, by, exclude,
                              workplaces)[0].copy()

    def targeting_records(self, edition: str, visits: int, lam: float, states=None,
                          levels=None, by: str = "conteo", exclude=(), workplaces=None
                          ) -> list[dict]:
        """:meth:`targeting` as JSON-ready dicts (converted once per cached worklist)."""
        entry = self._worklist(edition, visits, lam, states, levels, by, exclude, workplaces)
        if entry[1] is None:
            entry[1] = [jsonable(r) for r in entry[0].to_dict("records")]
        return entry[1]

    def _worklist(self, edition, visits, lam, states, levels, by, exclude, workplaces) -> list:
        """``[worklist, records or None]`` from a small LRU keyed by the parameters."""
        from ..model import targeting

        table = self._entry(edition)[2]
        states = params.choices("estados", states, sorted(table["cve_ent"].unique()))
        levels = params.choices("niveles", levels, LEVELS)
        by = params.choice("criterio", by, params.CRITERIA, "conteo")
        exclude = tuple(sorted(exclude or ()))

        def build():
            worklist = targeting.allocate(table, visits=visits, lam=lam, states=states or None,
                                          levels=levels or None,
                                          by="count" if by == "conteo" else "rate",
                                          workplaces=workplaces[1] if workplaces else None,
                                          exclude=exclude)
            return [worklist, None]

        # The form's defaults and permalinks repeat; arbitrary combinations do not: bounded.
        return self.derived(edition, "worklist", build, int(visits), float(lam), tuple(states),
                            tuple(levels), by, exclude, workplaces[0] if workplaces else None,
                            bounded=True)

    # -- cache ------------------------------------------------------------------------------
    def _cached(self, key: tuple, build):
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        value = build()
        with self._lock:
            self._cache[key] = value
        return value


def _plain_rows(edition: Edition) -> pd.DataFrame:
    """Edition rows without geometry, in contract column order, codes as str, ranks Int64."""
    cols = [c for c in ROW_COLUMNS + EXTRA_COLUMNS + ESTIMATOR_COLUMNS
            if c in edition.rows.columns]
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
def init_app(app) -> None:
    """Attach an :class:`Atlas` of ``settings["data_dir"]`` to ``app`` (it builds no data: the
    demo is built by ``riskmap serve`` and ``wsgi.py``, see :mod:`riskmap.demo.ensure`)."""
    app.extensions[EXTENSION_KEY] = Atlas(app.config["RISKMAP"]["data_dir"])


def get_atlas() -> Atlas:
    """The current application's :class:`Atlas`."""
    from flask import current_app

    return current_app.extensions[EXTENSION_KEY]
