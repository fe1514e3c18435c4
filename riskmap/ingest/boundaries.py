"""Read municipal boundaries from any file GDAL reads and normalise them.

Output contract (docs/DESIGN.md "Boundaries"): a GeoDataFrame with columns
``cvegeo, cve_ent, cve_mun, nom_ent, nom_mun, geometry`` in EPSG:4326, one row per
municipality, polygonal geometries only, valid.

What is accepted
----------------
* Shapefile (DBF in latin-1 as INEGI ships it, or UTF-8; the ``.cpg`` is honoured and, when
  absent, the encoding is detected), GeoPackage, GeoJSON, anything else pyogrio opens.
* Any CRS (INEGI ships EPSG:6372, Lambert conformal conic). A file without CRS is accepted
  only when its coordinates are plausible longitudes/latitudes.
* Codes in ``CVEGEO`` or ``CVE_ENT`` + ``CVE_MUN`` (any case); codes stored as integers that
  lost their leading zeros are zero-padded (with a warning).
* Names in ``NOMGEO`` or ``NOM_MUN`` and ``NOM_ENT``; a missing state name is filled from the
  table of Mexico's 32 states when the codes are Mexican.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from ..errors import InputError
from ..fileio import pad_code

#: Mexico's 32 states (INEGI catalogue, Marco Geoestadístico names).
MX_STATES = {
    "01": "Aguascalientes", "02": "Baja California", "03": "Baja California Sur",
    "04": "Campeche", "05": "Coahuila de Zaragoza", "06": "Colima", "07": "Chiapas",
    "08": "Chihuahua", "09": "Ciudad de México", "10": "Durango", "11": "Guanajuato",
    "12": "Guerrero", "13": "Hidalgo", "14": "Jalisco", "15": "México",
    "16": "Michoacán de Ocampo", "17": "Morelos", "18": "Nayarit", "19": "Nuevo León",
    "20": "Oaxaca", "21": "Puebla", "22": "Querétaro", "23": "Quintana Roo",
    "24": "San Luis Potosí", "25": "Sinaloa", "26": "Sonora", "27": "Tabasco",
    "28": "Tamaulipas", "29": "Tlaxcala", "30": "Veracruz de Ignacio de la Llave",
    "31": "Yucatán", "32": "Zacatecas",
}

OUTPUT_COLUMNS = ("cvegeo", "cve_ent", "cve_mun", "nom_ent", "nom_mun")
_MUN_NAME_COLUMNS = ("nomgeo", "nom_mun", "nombre", "nom_geo")
# Mojibake left when UTF-8 bytes are decoded as latin-1 ("Ã©" for "é", "Ã±" for "ñ").
_MOJIBAKE = re.compile("[ÃÂ][\u0080-\u00bf]")


def read_boundaries(path, layer=None) -> gpd.GeoDataFrame:
    """Read a boundary file and normalise it to the riskmap boundary contract.

    Parameters
    ----------
    path : str or Path
        Any vector file GDAL reads (Shapefile, GeoPackage, GeoJSON...), or a zip holding
        one (INEGI's ``mg_2020_integrado.zip``: ``conjunto_de_datos/00mun.shp`` is picked).
    layer : str or int, optional
        Layer to read from a multi-layer source (default: the first layer); for a zip with
        several files, the member's name or stem.

    Returns
    -------
    geopandas.GeoDataFrame
        ``cvegeo, cve_ent, cve_mun, nom_ent, nom_mun, geometry``, EPSG:4326, sorted by cvegeo.

    Raises
    ------
    InputError
        Unreadable or empty file; no polygons; no code columns; malformed or duplicated
        codes; no CRS with projected-looking coordinates.

    Warns
    -----
    UserWarning
        Codes zero-padded; CRS assumed to be EPSG:4326; invalid geometries repaired;
        encoding guessed for a Shapefile without ``.cpg``.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("boundary file not found", file=path)
    gdf = _read(path, layer)
    if len(gdf) == 0 or gdf.geometry.isna().all():
        raise InputError("the boundary file holds no features with geometry", file=path)
    gdf = _ensure_crs(gdf, path)
    cols = {c.lower(): c for c in gdf.columns if c != gdf.geometry.name}
    codes = _codes(gdf, cols, path)
    out = pd.DataFrame(codes)
    out["nom_ent"] = _names(gdf, cols, ("nom_ent", "nomgeo_ent", "estado"))
    out["nom_mun"] = _names(gdf, cols, _MUN_NAME_COLUMNS)
    if out["nom_ent"].isna().all():
        mexican = out["cve_ent"].isin(list(MX_STATES)).all()
        out["nom_ent"] = out["cve_ent"].map(MX_STATES) if mexican else ""
    out["nom_ent"] = out["nom_ent"].fillna("").astype(str)
    out["nom_mun"] = out["nom_mun"].fillna("").astype(str)
    _reject_duplicates(out, path)
    geoms = _polygonal(gdf.geometry.to_numpy(), out["cvegeo"].to_numpy(), path)
    result = gpd.GeoDataFrame(out, geometry=geoms, crs=gdf.crs)
    if result.crs is None or not result.crs.equals("EPSG:4326"):
        result = result.to_crs(4326)
    result = result.sort_values("cvegeo").reset_index(drop=True)
    for col in OUTPUT_COLUMNS:
        result[col] = result[col].astype(str)
    return result[[*OUTPUT_COLUMNS, "geometry"]]


def states_from(municipios: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Dissolve municipalities into states.

    Parameters
    ----------
    municipios : geopandas.GeoDataFrame
        Normalised boundaries (output of :func:`read_boundaries`).

    Returns
    -------
    geopandas.GeoDataFrame
        ``cve_ent, nom_ent, geometry``, one row per state, same CRS as the input.
    """
    names = municipios.groupby("cve_ent")["nom_ent"].first()
    geoms = []
    for cve, part in municipios.groupby("cve_ent", sort=True):
        # union_all rather than the faster coverage_union: simplified sources leave
        # slivers/overlaps, which coverage_union does not accept.
        try:
            geom = shapely.union_all(part.geometry.to_numpy())
        except shapely.errors.GEOSException:  # pragma: no cover - defensive
            geom = shapely.union_all(shapely.make_valid(part.geometry.to_numpy()))
        geoms.append((cve, geom))
    states = gpd.GeoDataFrame(
        {"cve_ent": [c for c, _ in geoms], "nom_ent": [names[c] for c, _ in geoms]},
        geometry=[g for _, g in geoms], crs=municipios.crs)
    return states


# -- helpers --------------------------------------------------------------------------------
def _zip_member(path: Path, layer):
    """Pick the boundary file inside a zip (INEGI ships the Marco Geoestadístico zipped)."""
    import zipfile

    try:
        names = zipfile.ZipFile(path).namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"cannot open the zip archive ({exc})", file=path) from None
    vector = [n for n in names if n.lower().endswith((".shp", ".gpkg", ".geojson", ".json"))]
    if layer is not None:
        hits = [n for n in vector if n == layer or Path(n).stem == str(layer)]
        if hits:
            return hits[0], None, names
    if len(vector) == 1:
        return vector[0], layer, names
    # INEGI's national municipal layer is conjunto_de_datos/00mun.shp
    mun = [n for n in vector if Path(n).stem.lower().endswith("mun")]
    if len(mun) == 1:
        return mun[0], layer, names
    raise InputError("the zip holds several vector files; name one with layer= (or --layer): "
                     + ", ".join(vector[:20]) if vector else "the zip holds no vector file",
                     file=path)


def _read(path: Path, layer) -> gpd.GeoDataFrame:
    kwargs = {}
    if path.suffix.lower() == ".zip":
        member, layer, names = _zip_member(path, layer)
        source = f"/vsizip/{path.resolve()}/{member}"
        stem = member.rsplit(".", 1)[0]
        if member.lower().endswith(".shp") and not any(
                n.lower() == f"{stem.lower()}.cpg" for n in names):
            kwargs["encoding"] = "latin1"
        try:
            gdf = pyogrio.read_dataframe(source, layer=layer, **kwargs)
        except Exception as exc:  # pyogrio raises several DataSource/Field error types
            raise InputError(f"cannot read {member} ({exc})", file=path) from None
        return _fix_encoding(gdf, path) if kwargs else gdf
    if path.suffix.lower() == ".shp" and not path.with_suffix(".cpg").exists() \
            and not path.with_suffix(".CPG").exists():
        # INEGI's DBFs are latin-1 and often ship without .cpg; read the raw bytes as latin-1
        # (a lossless byte->char mapping) and decide below whether they were really UTF-8.
        kwargs["encoding"] = "latin1"
    try:
        if layer is None:
            layer = _default_layer(path)
        gdf = pyogrio.read_dataframe(path, layer=layer, **kwargs)
    except InputError:
        raise
    except Exception as exc:  # pyogrio raises several DataSource/Field error types
        raise InputError(f"cannot read boundaries ({exc})", file=path) from None
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.name not in gdf.columns:
        raise InputError("the file has no geometry column", file=path)
    if kwargs:
        gdf = _fix_encoding(gdf, path)
    return gdf


def _default_layer(path: Path):
    """The municipal layer of a multi-layer source: 'municipios' or a '*mun*' layer, else the
    first spatial one (riskmap's own GeoPackages hold 'municipios' and 'estados')."""
    layers = pyogrio.list_layers(path)
    if len(layers) <= 1:
        return None
    names = [str(name) for name, geom in layers if geom is not None]
    for name in names:
        if name.lower() in ("municipios", "municipalities", "mun", "00mun"):
            return name
    for name in names:
        if "mun" in name.lower():
            return name
    if not names:
        raise InputError("the file has no layer with geometry", file=path)
    return names[0]


def _fix_encoding(gdf: gpd.GeoDataFrame, path: Path) -> gpd.GeoDataFrame:
    text_cols = [c for c in gdf.columns if c != gdf.geometry.name
                 and (gdf[c].dtype == object or pd.api.types.is_string_dtype(gdf[c]))]
    sample = " ".join(str(v) for c in text_cols for v in gdf[c].dropna().head(5000))
    if not _MOJIBAKE.search(sample):
        return gdf
    try:
        for c in text_cols:
            gdf[c] = gdf[c].map(lambda v: v.encode("latin1").decode("utf-8")
                                if isinstance(v, str) else v)
    except (UnicodeDecodeError, UnicodeEncodeError):
        return gdf
    warnings.warn(f"{path.name}: no .cpg file; the DBF text was detected as UTF-8",
                  stacklevel=3)
    return gdf


def _ensure_crs(gdf: gpd.GeoDataFrame, path: Path) -> gpd.GeoDataFrame:
    if gdf.crs is not None:
        return gdf
    xmin, ymin, xmax, ymax = gdf.total_bounds
    if -180 <= xmin <= xmax <= 180 and -90 <= ymin <= ymax <= 90:
        warnings.warn(f"{path.name}: no CRS; coordinates look like longitude/latitude, "
                      "assuming EPSG:4326", stacklevel=3)
        return gdf.set_crs(4326)
    raise InputError("the file has no CRS and its coordinates are not longitude/latitude "
                     f"(bounds {xmin:.0f}, {ymin:.0f}, {xmax:.0f}, {ymax:.0f}); supply the "
                     ".prj file (INEGI's Marco Geoestadístico is EPSG:6372)", file=path)


def _codes(gdf, cols: dict, path: Path) -> dict:
    padded_cols = []
    if "cvegeo" in cols:
        cvegeo, padded = pad_code(gdf[cols["cvegeo"]], 5, cols["cvegeo"], path, 1)
        if padded:
            padded_cols.append(cols["cvegeo"])
        cve_ent, cve_mun = cvegeo.str[:2], cvegeo.str[2:]
    elif "cve_ent" in cols and "cve_mun" in cols:
        cve_ent, p1 = pad_code(gdf[cols["cve_ent"]], 2, cols["cve_ent"], path, 1)
        cve_mun, p2 = pad_code(gdf[cols["cve_mun"]], 3, cols["cve_mun"], path, 1)
        padded_cols += [c for c, p in ((cols["cve_ent"], p1), (cols["cve_mun"], p2)) if p]
        cvegeo = cve_ent + cve_mun
    else:
        found = ", ".join(c for c in gdf.columns if c != gdf.geometry.name) or "none"
        raise InputError("no municipal code columns: expected CVEGEO, or CVE_ENT and CVE_MUN "
                         f"(any case); found {found}", file=path)
    if padded_cols:
        warnings.warn(f"{path.name}: codes in {', '.join(padded_cols)} had lost their leading "
                      "zeros (stored as numbers); zero-padded them", stacklevel=3)
    return {"cvegeo": cvegeo.to_numpy(), "cve_ent": cve_ent.to_numpy(),
            "cve_mun": cve_mun.to_numpy()}


def _names(gdf, cols: dict, candidates) -> pd.Series:
    for cand in candidates:
        if cand in cols:
            values = gdf[cols[cand]]
            return pd.Series(values.to_numpy(), dtype=object).map(
                lambda v: v.strip() if isinstance(v, str) else v)
    return pd.Series([None] * len(gdf), dtype=object)


def _reject_duplicates(out: pd.DataFrame, path: Path) -> None:
    dup = out["cvegeo"][out["cvegeo"].duplicated()].unique()
    if len(dup):
        shown = ", ".join(sorted(dup)[:10]) + (" ..." if len(dup) > 10 else "")
        raise InputError(f"{len(dup)} municipal code(s) appear more than once: {shown}; "
                         "dissolve multi-part features into one row per municipality",
                         file=path, errors=[str(c) for c in dup])


def _polygonal(geoms: np.ndarray, codes: np.ndarray, path: Path) -> np.ndarray:
    """Repair invalid geometries and keep only their polygonal parts."""
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any():
        raise InputError(f"{int(missing.sum())} feature(s) without geometry: "
                         + ", ".join(codes[missing][:10]), file=path)
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        warnings.warn(f"{path.name}: repaired {int(invalid.sum())} invalid geometr"
                      f"{'y' if invalid.sum() == 1 else 'ies'} with make_valid: "
                      + ", ".join(codes[invalid][:20]), stacklevel=3)
    geoms = clean_polygons(geoms)
    empty = shapely.is_empty(geoms)
    if empty.any():
        raise InputError("features without any polygon (points or lines?): "
                         + ", ".join(codes[empty][:10]), file=path)
    return geoms


def clean_polygons(geoms) -> np.ndarray:
    """Repair geometries and keep only their polygonal parts.

    Parameters
    ----------
    geoms : array-like of shapely geometries
        Any geometries, including missing ones, invalid polygons and GeometryCollections
        (what ``make_valid`` or a careless export can leave).

    Returns
    -------
    numpy.ndarray
        Valid ``Polygon``/``MultiPolygon`` geometries, same length and order; a missing or
        non-polygonal input becomes an empty Polygon (never ``None``).
    """
    geoms = np.array(geoms, dtype=object, copy=True)
    missing = shapely.is_missing(geoms)
    geoms[missing] = shapely.Polygon()
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        geoms[invalid] = shapely.make_valid(geoms[invalid])
    # 3 Polygon, 6 MultiPolygon; anything else (collections from make_valid) is filtered.
    odd = ~np.isin(shapely.get_type_id(geoms), (3, 6))
    for i in np.flatnonzero(odd):
        geoms[i] = _polygon_parts(geoms[i])
    return geoms


def _polygon_parts(geom):
    parts = [g for g in shapely.get_parts(geom)]
    polys = []
    for p in parts:
        tid = shapely.get_type_id(p)
        if tid == 3:
            polys.append(p)
        elif tid == 6:
            polys.extend(shapely.get_parts(p))
        elif tid == 7:
            inner = _polygon_parts(p)
            if not inner.is_empty:
                polys.extend(shapely.get_parts(inner))
    if not polys:
        return shapely.Polygon()
    return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)


def vintage_name(path, default: str | None = None) -> str:
    """The default geography-vintage name of a boundary file.

    The year in the file name (``municipios_2020.geojson`` -> ``"2020"``), so that building and
    importing from the same file name the same vintage; else ``default`` when the name has no
    digit at all; else the file name made a safe vintage name (letters, digits, ``_.-``).

    Parameters
    ----------
    path : str or Path
    default : str, optional

    Returns
    -------
    str
    """
    stem = Path(path).stem
    match = re.search(r"(19|20)\d\d", stem)
    if match:
        return match.group(0)
    if default is not None and not any(ch.isdigit() for ch in stem):
        return default
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("_.-")[:64] or "boundaries"
