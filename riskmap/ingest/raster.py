"""Zonal statistics of a raster covariate per municipality.

The polygons are rasterised once into a label raster (pixel -> polygon number, pixel centre
rule, i.e. ``all_touched=False``) and the statistics come from :func:`numpy.bincount` over the
labels, so the cost is one pass over the pixels whatever the number of polygons, instead of
one mask per polygon. Large rasters are processed in strips of rows to bound memory.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
import rasterio.features
import rasterio.windows
import shapely

from ..errors import InputError

STATS = ("mean", "count", "sum", "min", "max", "std")
#: Pixels handled per strip (float64 values + int32 labels: ~12 bytes a pixel).
MAX_STRIP_PIXELS = 2 ** 25


def zonal_stats(raster_path, gdf, id_column: str = "cvegeo", band: int = 1,
                stats=("mean", "count")) -> pd.DataFrame:
    """Summarise one raster band over each polygon of ``gdf``.

    Parameters
    ----------
    raster_path : str or Path
        Any raster GDAL reads (GeoTIFF...), with a CRS.
    gdf : geopandas.GeoDataFrame
        Polygons with a CRS; reprojected to the raster's CRS. Polygons should not overlap
        (a pixel belongs to one polygon only: where they overlap, the later row wins).
    id_column : str
        Column holding the polygon identifiers (the index of the result).
    band : int
        1-based band number.
    stats : sequence of str
        Any of ``mean, count, sum, min, max, std``. ``count`` is the number of valid pixels
        whose centre falls in the polygon; nodata and non-finite pixels are excluded.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``id_column`` (same order as ``gdf``), one column per statistic. Polygons
        containing no valid pixel centre get NaN (and count 0), with a warning naming them.

    Raises
    ------
    InputError
        Unknown statistic, missing id column, missing CRS, or a band the raster lacks.
    """
    stats = tuple(stats)
    unknown = [s for s in stats if s not in STATS]
    if unknown:
        raise InputError(f"unknown zonal statistic(s) {', '.join(unknown)}; "
                         f"known: {', '.join(STATS)}")
    if id_column not in gdf.columns:
        raise InputError("polygon id column not found", column=id_column)
    if gdf.crs is None:
        raise InputError("polygons have no CRS; cannot align them with the raster")
    ids = gdf[id_column].to_numpy()
    n = len(gdf)
    try:
        src = rasterio.open(raster_path)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"cannot read raster ({exc})", file=raster_path) from None
    with src:
        if src.crs is None:
            raise InputError("raster has no CRS", file=raster_path)
        if not 1 <= band <= src.count:
            raise InputError(f"band {band} requested; the raster has {src.count}",
                             file=raster_path)
        geoms = gdf.geometry.to_crs(src.crs).to_numpy()
        nodata = src.nodatavals[band - 1]
        acc = _Accumulator(n, stats)
        rows_per_strip = max(1, MAX_STRIP_PIXELS // max(src.width, 1))
        tree = shapely.STRtree(geoms)
        for row0 in range(0, src.height, rows_per_strip):
            window = rasterio.windows.Window(0, row0, src.width,
                                             min(rows_per_strip, src.height - row0))
            transform = src.window_transform(window)
            # Only polygons reaching this strip are burnt (all of them for a single strip).
            box = shapely.box(*rasterio.windows.bounds(window, src.transform))
            hit = np.sort(tree.query(box, predicate="intersects"))
            if len(hit) == 0:
                continue
            labels = rasterio.features.rasterize(
                zip(geoms[hit], hit + 1), out_shape=(window.height, window.width),
                transform=transform, fill=0, all_touched=False, dtype="int32")
            values = src.read(band, window=window).astype("float64", copy=False)
            valid = (labels > 0) & np.isfinite(values)
            if nodata is not None and not np.isnan(nodata):
                valid &= values != nodata
            acc.add(labels[valid] - 1, values[valid])
    table = acc.result()
    table.index = pd.Index(ids, name=id_column)
    empty = table.index[acc.count == 0]
    if len(empty):
        shown = ", ".join(map(str, empty[:20])) + (" ..." if len(empty) > 20 else "")
        warnings.warn(f"{len(empty)} polygon(s) contain no valid pixel centre of "
                      f"{raster_path}; their statistics are NaN: {shown}", stacklevel=2)
    return table[list(stats)]


def zonal_mean(raster_path, gdf, id_column: str = "cvegeo", band: int = 1) -> pd.Series:
    """Mean of the valid pixels whose centre lies in each polygon (see :func:`zonal_stats`).

    Returns
    -------
    pandas.Series
        Indexed by ``id_column``, named after the raster band description or file stem.
    """
    table = zonal_stats(raster_path, gdf, id_column=id_column, band=band, stats=("mean",))
    with rasterio.open(raster_path) as src:
        name = src.descriptions[band - 1]
    return table["mean"].rename(name or Path(str(raster_path)).stem)


class _Accumulator:
    """Running per-polygon sums so that strips can be combined exactly."""

    def __init__(self, n: int, stats):
        self.n = n
        self.want = set(stats)
        self.count = np.zeros(n, dtype=np.int64)
        self.sum = np.zeros(n)
        self.sumsq = np.zeros(n) if "std" in self.want else None
        self.min = np.full(n, np.inf) if "min" in self.want else None
        self.max = np.full(n, -np.inf) if "max" in self.want else None

    def add(self, labels: np.ndarray, values: np.ndarray) -> None:
        self.count += np.bincount(labels, minlength=self.n)
        self.sum += np.bincount(labels, weights=values, minlength=self.n)
        if self.sumsq is not None:
            # Centre on the strip mean first would be more stable; the values of covariate
            # rasters are small (shares, indices), so plain sums of squares are exact enough.
            self.sumsq += np.bincount(labels, weights=values * values, minlength=self.n)
        if self.min is not None:
            np.minimum.at(self.min, labels, values)
        if self.max is not None:
            np.maximum.at(self.max, labels, values)

    def result(self) -> pd.DataFrame:
        count = self.count
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, self.sum / count, np.nan)
            out = {"mean": mean, "count": count, "sum": np.where(count > 0, self.sum, np.nan)}
            if self.sumsq is not None:
                var = np.maximum(self.sumsq / count - mean ** 2, 0.0)
                out["std"] = np.where(count > 0, np.sqrt(var), np.nan)
            if self.min is not None:
                out["min"] = np.where(count > 0, self.min, np.nan)
            if self.max is not None:
                out["max"] = np.where(count > 0, self.max, np.nan)
        return pd.DataFrame(out)
