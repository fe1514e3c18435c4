"""The data directory: published editions, geography vintages and crosswalks.

Layout::

    <data_dir>/editions/<name>.gpkg             layers municipios (geometry), factores, model_card
    <data_dir>/editions/<name>.model_card.json  convenience copy of the card (read-only use)
    <data_dir>/editions/<name>.census.parquet   census records the edition was scored on
                                                (SHA-256 in the card's ``census_records``)
    <data_dir>/geography/<vintage>.gpkg          layers municipios, estados
    <data_dir>/crosswalks/<from>__<to>.csv       cvegeo_from, cvegeo_to, share[, share_to]

Every write goes to a temporary file in the same folder and is renamed into place
(:func:`os.replace` is atomic on POSIX), so a reader never sees half a file and a failed
build leaves what was published before byte-for-byte intact.
"""

from __future__ import annotations

import json
import re
from contextlib import ExitStack
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from .edition import Edition, EXTRA_COLUMNS, FACTOR_COLUMNS, ROW_COLUMNS
from ..errors import InputError, NotFound
from ..fileio import atomic_path, sha256_file, write_gpkg
from ..jsonable import jsonable

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_CODE_COLUMNS = {"cvegeo": str, "cve_ent": str, "cve_mun": str}


def check_name(name: str, what: str = "edition") -> str:
    """Return ``name`` if it is a safe file-name token, else raise :class:`InputError`."""
    name = str(name)
    if not _NAME.match(name) or name.endswith(".tmp"):
        raise InputError(f"invalid {what} name {name!r}: use letters, digits, '-', '_' or '.'")
    return name


class DataStore:
    """Read and write the data directory.

    Parameters
    ----------
    data_dir : str or Path
    """

    def __init__(self, data_dir):
        self.root = Path(data_dir)

    # -- editions ---------------------------------------------------------------------------
    def edition_path(self, name: str) -> Path:
        return self.root / "editions" / f"{check_name(name)}.gpkg"

    def edition_names(self) -> list[str]:
        """Names of published editions, oldest first (by card year, then name)."""
        folder = self.root / "editions"
        if not folder.is_dir():
            return []
        names = [p.stem for p in folder.glob("*.gpkg") if not p.name.startswith(".")]
        return sorted(names, key=lambda n: (self._year(n), n))

    def _year(self, name: str) -> int:
        card_file = self.root / "editions" / f"{name}.model_card.json"
        try:
            return int(json.loads(card_file.read_text(encoding="utf-8")).get("year") or 0)
        except (OSError, ValueError):
            return 0

    def publish_edition(self, edition: Edition) -> Path:
        """Write ``edition`` atomically; return the GeoPackage path."""
        name = check_name(edition.name)
        missing = [c for c in ROW_COLUMNS + EXTRA_COLUMNS if c not in edition.rows.columns]
        if missing:
            raise ValueError(f"edition rows lack columns: {missing}")
        target = self.edition_path(name)
        rows = edition.rows.to_crs(4326) if edition.rows.crs else edition.rows.set_crs(4326)
        factors = edition.factors
        if factors is None or len(factors) == 0:
            factors = pd.DataFrame({c: pd.Series(dtype="float64" if c.endswith(("mean", "tion"))
                                                 else "str") for c in FACTOR_COLUMNS})
        with ExitStack() as stack:
            if edition.census is not None:
                # Written first, renamed last: its digest goes into the card, and a failure
                # anywhere leaves the previous records (and edition) in place.
                census_tmp = stack.enter_context(atomic_path(self.census_path(name)))
                edition.census.to_parquet(census_tmp, index=False)
                edition.card["census_records"] = {
                    "file": self.census_path(name).name, "sha256": sha256_file(census_tmp),
                    "n_records": int(len(edition.census))}
            card = jsonable(edition.card)
            card_json = json.dumps(card, ensure_ascii=False, allow_nan=False)
            with atomic_path(target) as tmp:
                write_gpkg(rows, tmp, layer="municipios")
                write_gpkg(pd.DataFrame(factors), tmp, layer="factores")
                write_gpkg(pd.DataFrame({"key": ["model_card"], "json": [card_json]}), tmp,
                           layer="model_card")
        with atomic_path(target.with_suffix(".model_card.json")) as tmp:
            tmp.write_text(json.dumps(card, ensure_ascii=False, indent=2), encoding="utf-8")
        if edition.census is None and not edition.card.get("census_records"):
            # An edition without records (an imported list) replaced one that had them.
            self.census_path(name).unlink(missing_ok=True)
        return target

    def load_edition(self, name: str) -> Edition:
        """Read a published edition; :class:`NotFound` lists the published ones."""
        path = self.edition_path(name)
        if not path.exists():
            raise NotFound(f"edition {name!r} is not published; published: "
                           + (", ".join(self.edition_names()) or "none"))
        rows = pyogrio.read_dataframe(path, layer="municipios")
        for col in _CODE_COLUMNS:
            if col in rows.columns:
                rows[col] = rows[col].astype(str)
        factors = pyogrio.read_dataframe(path, layer="factores", read_geometry=False)
        if "cvegeo" in factors.columns:
            factors["cvegeo"] = factors["cvegeo"].astype(str)
        card_df = pyogrio.read_dataframe(path, layer="model_card", read_geometry=False)
        card = json.loads(card_df["json"].iloc[0])
        return Edition(name=name, rows=rows, factors=pd.DataFrame(factors), card=card)

    def load_table(self, name: str, columns) -> pd.DataFrame:
        """Some attribute columns of an edition's municipal rows, without geometry (fast:
        a history across editions needs levels and probabilities, not shapes)."""
        path = self.edition_path(name)
        if not path.exists():
            raise NotFound(f"edition {name!r} is not published; published: "
                           + (", ".join(self.edition_names()) or "none"))
        table = pyogrio.read_dataframe(path, layer="municipios", columns=list(columns),
                                       read_geometry=False)
        for col in _CODE_COLUMNS:
            if col in table.columns:
                table[col] = table[col].astype(str)
        return pd.DataFrame(table)

    def load_card(self, name: str) -> dict:
        """The model card only (cheap: reads the JSON copy)."""
        path = self.edition_path(name)
        if not path.exists():
            raise NotFound(f"edition {name!r} is not published; published: "
                           + (", ".join(self.edition_names()) or "none"))
        return json.loads(path.with_suffix(".model_card.json").read_text(encoding="utf-8"))

    def census_path(self, name: str) -> Path:
        return self.root / "editions" / f"{check_name(name)}.census.parquet"

    def load_census(self, name: str, card: dict | None = None) -> pd.DataFrame:
        """The census records edition ``name`` was scored on, checked against the card's digest.

        Raises
        ------
        InputError
            The edition keeps no census records (imported, or published before they were
            kept) or the file does not match the digest in its model card.
        """
        card = self.load_card(name) if card is None else card
        kept = card.get("census_records") or {}
        path = self.census_path(name)
        if not kept.get("sha256") or not path.exists():
            what = ("an imported list of published levels" if card.get("kind") == "imported"
                    else f"{path.name}, named in its model card, is missing"
                    if kept.get("sha256") else "published without them")
            raise InputError(f"edition {name} keeps no census records ({what}): it cannot be "
                             "re-scored, so no trend decomposition is possible")
        if sha256_file(path) != kept["sha256"]:
            raise InputError(f"the census records of edition {name} do not match the digest in "
                             "its model card (the file changed after publication); publish "
                             "the edition again", file=path.name)
        census = pd.read_parquet(path)
        census["cvegeo"] = census["cvegeo"].astype(str)
        return census

    # -- geography --------------------------------------------------------------------------
    def vintage_path(self, vintage: str) -> Path:
        return self.root / "geography" / f"{check_name(vintage, 'vintage')}.gpkg"

    def vintage_names(self) -> list[str]:
        folder = self.root / "geography"
        return sorted(p.stem for p in folder.glob("*.gpkg")) if folder.is_dir() else []

    def save_vintage(self, vintage: str, municipalities: gpd.GeoDataFrame,
                     states: gpd.GeoDataFrame | None = None) -> Path:
        """Store a normalised boundary set (cvegeo, cve_ent, cve_mun, nom_ent, nom_mun) as the
        layer ``municipios`` and, when given, its states as the layer ``estados``."""
        target = self.vintage_path(vintage)
        with atomic_path(target) as tmp:
            write_gpkg(municipalities.to_crs(4326), tmp, layer="municipios")
            if states is not None:
                write_gpkg(states.to_crs(4326), tmp, layer="estados")
        return target

    def load_vintage(self, vintage: str, layer: str = "municipios") -> gpd.GeoDataFrame:
        path = self.vintage_path(vintage)
        if not path.exists():
            raise NotFound(f"geography vintage {vintage!r} is not stored; stored: "
                           + (", ".join(self.vintage_names()) or "none"))
        gdf = pyogrio.read_dataframe(path, layer=layer)
        for col in _CODE_COLUMNS:
            if col in gdf.columns:
                gdf[col] = gdf[col].astype(str)
        return gdf

    # -- crosswalks -------------------------------------------------------------------------
    def crosswalk_path(self, vintage_from: str, vintage_to: str) -> Path:
        return self.root / "crosswalks" / (f"{check_name(vintage_from, 'vintage')}__"
                                           f"{check_name(vintage_to, 'vintage')}.csv")

    def save_crosswalk(self, vintage_from: str, vintage_to: str, table: pd.DataFrame) -> Path:
        target = self.crosswalk_path(vintage_from, vintage_to)
        with atomic_path(target) as tmp:
            cols = ["cvegeo_from", "cvegeo_to", "share"]
            cols += [c for c in ("share_to",) if c in table.columns]
            table[cols].to_csv(tmp, index=False)
        return target

    def load_crosswalk(self, vintage_from: str, vintage_to: str) -> pd.DataFrame:
        """Return the crosswalk; identity for equal vintages; NotFound when not stored."""
        path = self.crosswalk_path(vintage_from, vintage_to)
        if not path.exists():
            raise NotFound(f"no crosswalk from vintage {vintage_from} to {vintage_to}")
        return pd.read_csv(path, dtype={"cvegeo_from": str, "cvegeo_to": str})
