"""The simplified, topology-preserving geometry layer the web maps draw.

Geometry is served once per geography vintage from a cached endpoint rather than embedded
in every page. The layer is simplified as a *coverage* (``shapely.coverage_simplify``): every
shared border is simplified once, so neighbours stay edge-matched (no gaps or overlaps appear
between municipalities). Coordinates are then rounded (5 decimals is about 1 m), which keeps
shared vertices identical on both sides.

The layer is served in two encodings of the same simplified shapes: GeoJSON for API clients,
and TopoJSON (:mod:`riskmap.web.topology`: shared borders stored once, integer deltas), which
the pages load because it is about 40 % smaller on the wire.

Cache: ``<data_dir>/geography/<vintage>.web.json.gz`` and ``.web.topojson.gz`` plus a small
``.meta.json`` that records the key they were built from (size, modification time and sha256
of the vintage GeoPackage, and the simplification parameters). A changed vintage file rebuilds
the layer; writes are atomic, and a data directory that cannot be written (read-only mount) only
loses the disk cache.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from ..ingest.crosswalk import equal_area_crs
from ..fileio import sha256_file
from ..ingest.boundaries import clean_polygons
from ..fileio import atomic_path
from ..publish.store import DataStore

#: Properties carried by each feature (everything else is joined client-side by cvegeo).
WEB_PROPERTIES = ("cvegeo", "cve_ent", "nom_mun", "nom_ent")
DEFAULT_TOLERANCE_M = 500.0
DEFAULT_QUANTIZE = 5
#: Encodings of the layer: format -> cache file suffix.
FORMATS = {"geojson": "web.json.gz", "topojson": "web.topojson.gz"}
_LAYER_VERSION = 3  # bump when the output format changes, to invalidate old caches

_memo: dict = {}
_lock = threading.Lock()


def web_layer(gdf: gpd.GeoDataFrame, tolerance_m: float = DEFAULT_TOLERANCE_M,
              quantize: int = DEFAULT_QUANTIZE, attribution: dict | None = None) -> dict:
    """Build the simplified GeoJSON FeatureCollection of a boundary set.

    Parameters
    ----------
    gdf : geopandas.GeoDataFrame
        Boundaries (``cvegeo, cve_ent, nom_mun, nom_ent``, any CRS). Geometries need not be
        clean: invalid ones are repaired, only polygonal parts are kept (GeometryCollections
        lose their points and lines) and a missing geometry gives a feature with ``null``
        geometry; rows are never dropped.
    tolerance_m : float, default 500
        Simplification tolerance in metres (0 keeps every vertex).
    quantize : int, default 5
        Decimal places kept in the output longitudes/latitudes.
    attribution : dict, optional
        ``{"es": ..., "en": ...}`` credit of the boundaries' producer, added as the
        collection's ``attribution`` member (a GeoJSON foreign member).

    Returns
    -------
    dict
        A GeoJSON FeatureCollection (EPSG:4326) whose features carry only
        :data:`WEB_PROPERTIES`, in the input order.
    """
    if gdf.crs is None:
        gdf = gdf.set_crs(4326)
    # A stored vintage may not have gone through read_boundaries (GeometryCollections,
    # invalid rings, missing geometries): clean here so the simplifier never sees them.
    gdf = gdf.set_geometry(clean_polygons(gdf.geometry.to_numpy()), crs=gdf.crs)
    geoms = gdf.geometry.to_numpy()
    if tolerance_m and tolerance_m > 0:
        metric = gdf.to_crs(equal_area_crs(gdf))
        simplified = _coverage_simplify(metric.geometry.to_numpy(), float(tolerance_m))
        geoms = gpd.GeoSeries(simplified, crs=metric.crs).to_crs(4326).to_numpy()
    elif not gdf.crs.equals("EPSG:4326"):
        geoms = gdf.geometry.to_crs(4326).to_numpy()
    geoms = shapely.transform(geoms, lambda xy: np.round(xy, quantize))
    # rounding collapses slivers thinner than the grid into degenerate rings: drop those parts
    broken = ~shapely.is_valid(geoms)
    if broken.any():
        geoms[broken] = clean_polygons(geoms[broken])
    features = []
    props = {c: gdf[c].astype(str).to_numpy() if c in gdf.columns else [""] * len(gdf)
             for c in WEB_PROPERTIES}
    for i, geom in enumerate(geoms):
        features.append({
            "type": "Feature",
            "properties": {c: str(props[c][i]) for c in WEB_PROPERTIES},
            "geometry": None if geom is None or geom.is_empty else geom.__geo_interface__,
        })
    layer = {"type": "FeatureCollection"}
    if attribution:
        layer["attribution"] = dict(attribution)
    layer["features"] = features
    return layer


def vintage_attribution(store: DataStore, vintage: str) -> dict | None:
    """The attribution of the latest edition published on ``vintage`` (its boundaries come
    from the same producer, e.g. INEGI's Marco Geoestadístico), or None when no edition
    uses it."""
    def cards():
        for name in reversed(store.edition_names()):
            try:
                yield store.load_card(name)
            except (OSError, ValueError):
                continue

    return attribution_of(cards(), vintage)


def attribution_of(cards, vintage: str) -> dict | None:
    """The attribution of the first card (newest first) published on ``vintage``, if any."""
    for card in cards:
        if str(card.get("vintage")) == vintage and isinstance(card.get("attribution"), dict):
            return card["attribution"]
    return None


def encode_layer(layer: dict, fmt: str = "geojson", quantize: int = DEFAULT_QUANTIZE) -> bytes:
    """Compact UTF-8 JSON, gzip-compressed deterministically (no timestamp in the header).

    ``fmt="topojson"`` encodes the layer as a topology first
    (:func:`riskmap.web.topology.to_topology` on the ``quantize`` grid).
    """
    if fmt == "topojson":
        from .topology import to_topology

        layer = to_topology(layer, quantize)
    raw = json.dumps(layer, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return gzip.compress(raw, compresslevel=9, mtime=0)


def cached_web_layer(store: DataStore, vintage: str, tolerance_m: float = DEFAULT_TOLERANCE_M,
                     quantize: int = DEFAULT_QUANTIZE, fmt: str = "geojson") -> tuple[bytes, str]:
    """Return the gzip-compressed web layer of a stored vintage and its ETag.

    Built on first use and cached on disk (and in memory) until the vintage file, or the
    attribution of the editions published on it (:func:`vintage_attribution`), changes.

    Parameters
    ----------
    store : DataStore
    vintage : str
        A geography vintage stored in ``store``.
    tolerance_m, quantize
        As in :func:`web_layer`; part of the cache key.
    fmt : {"geojson", "topojson"}
        The encoding (both are built and cached together).

    Returns
    -------
    (bytes, str)
        The gzip bytes of the layer and a strong ETag (quoted hex digest).

    Raises
    ------
    riskmap.errors.NotFound
        When the vintage is not stored.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown web layer format {fmt!r}; known: {', '.join(FORMATS)}")
    source = store.vintage_path(vintage)
    if not source.exists():
        store.load_vintage(vintage)  # raises NotFound listing the stored vintages
    stat = source.stat()
    attribution = vintage_attribution(store, vintage)
    quick_key = (str(source), stat.st_size, stat.st_mtime_ns, float(tolerance_m), int(quantize),
                 json.dumps(attribution, sort_keys=True), fmt)
    with _lock:
        hit = _memo.get(quick_key)
    if hit is not None:
        return hit
    targets = {f: source.with_name(f"{source.stem}.{suffix}") for f, suffix in FORMATS.items()}
    meta_path = source.with_name(f"{source.stem}.web.meta.json")
    meta = _read_meta(meta_path)
    params = {"tolerance_m": float(tolerance_m), "quantize": int(quantize),
              "version": _LAYER_VERSION, "attribution": attribution}
    reusable = (bool(meta) and meta.get("params") == params
                and isinstance(meta.get("etags"), dict) and targets[fmt].exists())
    if (reusable and meta.get("size") == stat.st_size
            and meta.get("mtime_ns") == stat.st_mtime_ns):
        result = (targets[fmt].read_bytes(), meta["etags"][fmt])
    else:
        digest = sha256_file(source)
        if reusable and meta.get("sha256") == digest:
            result = (targets[fmt].read_bytes(), meta["etags"][fmt])  # touched but unchanged
            etags = meta["etags"]
        else:
            gdf = store.load_vintage(vintage)
            layer = web_layer(gdf, tolerance_m=tolerance_m, quantize=quantize,
                              attribution=attribution)
            etags = {}
            for name, path in targets.items():
                body = encode_layer(layer, name, quantize)
                etags[name] = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
                _write_cache(path, body)
                if name == fmt:
                    result = (body, etags[name])
        _write_cache(meta_path, json.dumps({"size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                                            "sha256": digest, "params": params,
                                            "etags": etags}).encode("utf-8"))
    with _lock:
        _memo[quick_key] = result
    return result


# -- helpers --------------------------------------------------------------------------------
def _coverage_simplify(geoms: np.ndarray, tolerance: float) -> np.ndarray:
    # coverage_simplify needs valid input; it keeps shared edges shared. simplify_boundary
    # stays True so the outer coastline is simplified too.
    valid = clean_polygons(geoms)  # reprojection can invalidate a ring that was valid
    out = shapely.coverage_simplify(valid, tolerance)
    bad = ~shapely.is_valid(out)
    if bad.any():  # overlapping input is not a true coverage; repair what came out broken
        out[bad] = clean_polygons(out[bad])
    # Very small islands can collapse; keep the unsimplified part rather than lose the
    # municipality from the map.
    lost = shapely.is_empty(out) & ~shapely.is_empty(valid)
    if lost.any():
        out[lost] = valid[lost]
    return out


def _write_cache(path: Path, data: bytes) -> None:
    """Write a cache file atomically; a read-only data directory only costs the disk cache
    (the layer is still served, from memory)."""
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
    except OSError as exc:
        warnings.warn(f"cannot write the web layer cache {path.name} ({exc}); "
                      "serving it from memory", stacklevel=3)


def _read_meta(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
