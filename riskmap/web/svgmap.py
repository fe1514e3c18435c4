"""Static maps as SVG: municipalities filled by level, for printed fichas.

A printed fact sheet cannot run the interactive folium map, so the ficha carries a small
vector map drawn on the server. Coordinates (EPSG:4326) are projected with a local
equirectangular projection (longitude scaled by the cosine of the map's central latitude,
which keeps shapes right at state scale), simplified to about half a pixel, and written as
SVG paths with the even-odd fill rule so that holes (enclaves) stay holes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

import numpy as np
import shapely

from .maps import LEVEL_COLOURS



@dataclass
class Frame:
    """The projection of a map: lon/lat -> SVG pixels.

    Attributes
    ----------
    x0, y1 : float
        West and north edges in projected units.
    k : float
        Pixels per projected unit.
    cos : float
        Cosine of the central latitude.
    width, height : int
        Size of the drawing in pixels.
    """

    x0: float
    y1: float
    k: float
    cos: float
    width: int
    height: int

    @classmethod
    def fit(cls, bounds, width: int, max_height: int | None = None, pad: float = 0.03):
        """The frame that fits ``bounds`` (minx, miny, maxx, maxy) into ``width`` pixels."""
        minx, miny, maxx, maxy = (float(b) for b in bounds)
        cos = math.cos(math.radians((miny + maxy) / 2))
        w = max((maxx - minx) * cos, 1e-9)
        h = max(maxy - miny, 1e-9)
        w, h = w * (1 + 2 * pad), h * (1 + 2 * pad)
        k = width / w
        if max_height is not None and h * k > max_height:
            k = max_height / h
        height = int(math.ceil(h * k))
        x0 = minx * cos - (w - (maxx - minx) * cos) / 2
        y1 = maxy + (h - (maxy - miny)) / 2
        return cls(x0, y1, k, cos, int(width), height)

    def project(self, coords: np.ndarray) -> np.ndarray:
        """(n, 2) lon/lat -> (n, 2) pixels."""
        out = np.empty_like(coords, dtype=float)
        out[:, 0] = (coords[:, 0] * self.cos - self.x0) * self.k
        out[:, 1] = (self.y1 - coords[:, 1]) * self.k
        return out

    @property
    def tolerance(self) -> float:
        """Half a pixel, in degrees of latitude: detail finer than this cannot be seen."""
        return 0.5 / self.k


def path_data(geom, frame: Frame) -> str:
    """SVG path data (``d``) of a polygonal geometry, simplified to the frame's resolution."""
    if geom is None or geom.is_empty:
        return ""
    geom = shapely.simplify(geom, frame.tolerance, preserve_topology=True)
    parts = []
    for poly in getattr(geom, "geoms", [geom]):
        if poly.geom_type != "Polygon" or poly.is_empty:
            continue
        for ring in (poly.exterior, *poly.interiors):
            xy = np.round(frame.project(np.asarray(ring.coords)[:, :2]), 1)
            if len(xy) < 3:
                continue
            pts = " ".join(f"{x:g},{y:g}" for x, y in xy[:-1])
            parts.append(f"M{pts}Z")
    return "".join(parts)


def level_map(rows, *, width: int = 640, max_height: int = 520, highlight: str | None = None,
              title: str = "", bounds=None, label_level=None) -> str:
    """An SVG map of municipalities filled by level.

    Parameters
    ----------
    rows : geopandas.GeoDataFrame
        ``cvegeo``, ``nom_mun``, ``level`` and geometry (EPSG:4326).
    width, max_height : int
        Size limits in pixels.
    highlight : str, optional
        A code drawn with a heavy outline (the municipality of a municipal ficha).
    title : str
        Accessible name of the drawing (``<title>`` and ``aria-label``).
    bounds : tuple, optional
        The extent to draw; default the rows' total bounds.
    label_level : callable, optional
        Level -> readable label, for each polygon's tooltip.

    Returns
    -------
    str
        The ``<svg>`` element (values escaped).
    """
    bounds = rows.total_bounds if bounds is None else bounds
    frame = Frame.fit(bounds, width, max_height)
    label_level = label_level or (lambda level: level)
    paths, top = [], ""
    for code, name, level, geom in zip(rows["cvegeo"], rows["nom_mun"], rows["level"],
                                       rows.geometry):
        d = path_data(geom, frame)
        if not d:
            continue
        colour = LEVEL_COLOURS.get(str(level), LEVEL_COLOURS["sin_informacion"])
        tip = escape(f"{name} ({code}): {label_level(str(level))}")
        if highlight is not None and str(code) == str(highlight):
            top = (f'<path d="{d}" fill="{colour}" stroke="#111" stroke-width="2.5">'
                   f"<title>{tip}</title></path>")
            continue
        paths.append(f'<path d="{d}" fill="{colour}" stroke="#fff" stroke-width="0.6">'
                     f"<title>{tip}</title></path>")
    label = escape(title)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="staticmap" role="img" '
            f'aria-label="{label}" width="{frame.width}" height="{frame.height}" '
            f'viewBox="0 0 {frame.width} {frame.height}" fill-rule="evenodd">'
            f"<title>{label}</title>{''.join(paths)}{top}</svg>")


def locator_map(state_geoms, selected_geom, *, width: int = 200, title: str = "") -> str:
    """A small inset: a state's outline in grey with one municipality in dark ink."""
    union = shapely.union_all(list(state_geoms))
    frame = Frame.fit(union.bounds, width, width)
    d_state = path_data(union, frame)
    d_sel = path_data(selected_geom, frame)
    label = escape(title)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="locator" role="img" '
            f'aria-label="{label}" width="{frame.width}" height="{frame.height}" '
            f'viewBox="0 0 {frame.width} {frame.height}" fill-rule="evenodd">'
            f"<title>{label}</title>"
            f'<path d="{d_state}" fill="#e5e7eb" stroke="#6b7280" stroke-width="0.8"/>'
            f'<path d="{d_sel}" fill="#111827" stroke="#111827" stroke-width="1"/></svg>')
