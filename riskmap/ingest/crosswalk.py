"""Area-overlay crosswalks between two boundary vintages, and the changes they reveal.

A crosswalk row ``(cvegeo_from, cvegeo_to, share, share_to)`` says that ``share`` of the
from-municipality's area lies in the to-municipality, and that this piece is ``share_to`` of
the to-municipality's area. ``share`` apportions an old municipality over the new ones;
``share_to`` tells which old municipality a new one mainly comes from (its parent). Areas are
measured in an Albers equal-area projection (EPSG:6372, INEGI's Lambert conformal conic, is
conformal, not equal area, so its areas are biased by latitude). Overlaps below ``min_share``
of both municipalities are simplification slivers and are dropped; the remaining ``share`` of
each from-code and ``share_to`` of each to-code are renormalised to sum to 1.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer

from ..errors import InputError
from .boundaries import clean_polygons

#: Albers equal-area conic fitted to Mexico (standard parallels 14.5 N and 32.5 N).
MEXICO_ALBERS = ("+proj=aea +lat_1=14.5 +lat_2=32.5 +lat_0=24 +lon_0=-102 "
                 "+ellps=GRS80 +units=m +no_defs")

#: Columns of a crosswalk. The first three are the documented CSV contract; ``share_to``
#: follows them (user-supplied crosswalks may lack it).
CROSSWALK_COLUMNS = ("cvegeo_from", "cvegeo_to", "share", "share_to")
CHANGE_COLUMNS = ("change", "cvegeo_from", "cvegeo_to", "share")


def equal_area_crs(gdf: gpd.GeoDataFrame) -> CRS:
    """An Albers equal-area CRS suited to the extent of ``gdf``.

    Mexico's own parameters are used when the data lie within Mexico's extent; elsewhere the
    standard parallels are placed at 1/6 and 5/6 of the latitude range (Snyder's rule).
    """
    # transform the bounding box only, not every vertex
    lon0, lat0, lon1, lat1 = Transformer.from_crs(gdf.crs, 4326, always_xy=True).transform_bounds(
        *gdf.total_bounds)
    if lon0 >= -118.5 and lon1 <= -86.5 and lat0 >= 14.0 and lat1 <= 33.0:
        return CRS.from_proj4(MEXICO_ALBERS)
    span = max(lat1 - lat0, 1e-6)
    p1, p2 = lat0 + span / 6, lat1 - span / 6
    return CRS.from_proj4(f"+proj=aea +lat_1={p1:.4f} +lat_2={p2:.4f} "
                          f"+lat_0={(lat0 + lat1) / 2:.4f} +lon_0={(lon0 + lon1) / 2:.4f} "
                          "+ellps=GRS80 +units=m +no_defs")


def area_crosswalk(gdf_from: gpd.GeoDataFrame, gdf_to: gpd.GeoDataFrame,
                   min_share: float = 0.001) -> pd.DataFrame:
    """Crosswalk two boundary vintages by area overlay.

    Parameters
    ----------
    gdf_from, gdf_to : geopandas.GeoDataFrame
        Normalised boundaries (a ``cvegeo`` column and polygon geometries, any CRS).
    min_share : float, default 0.001
        Overlaps smaller than this fraction of both the from- and the to-municipality are
        treated as simplification noise and dropped before renormalising (a tiny new
        municipality carved from a huge one is a small fraction of its parent but the whole
        of itself, so it is kept).

    Returns
    -------
    pandas.DataFrame
        ``cvegeo_from, cvegeo_to, share, share_to``: ``share`` is the fraction of the
        from-municipality's area in the to-municipality (summing to 1 per from-code),
        ``share_to`` the fraction of the to-municipality's area coming from the
        from-municipality (summing to 1 per to-code over the rows kept). Sorted by
        ``cvegeo_from`` then decreasing share.

    Raises
    ------
    InputError
        Missing ``cvegeo`` column, missing CRS, or duplicated codes.

    Warns
    -----
    UserWarning
        From-municipalities that overlap nothing in ``gdf_to`` (listed by code; they are
        absent from the result).
    """
    for name, gdf in (("from", gdf_from), ("to", gdf_to)):
        if "cvegeo" not in gdf.columns:
            raise InputError(f"the '{name}' boundaries have no cvegeo column")
        if gdf.crs is None:
            raise InputError(f"the '{name}' boundaries have no CRS")
        dup = gdf["cvegeo"][gdf["cvegeo"].duplicated()]
        if len(dup):
            raise InputError(f"the '{name}' boundaries repeat codes: "
                             + ", ".join(sorted(set(dup))[:10]))
    crs = equal_area_crs(gdf_from)
    a = gdf_from.to_crs(crs)
    b = gdf_to.to_crs(crs)
    ga = clean_polygons(a.geometry.to_numpy())
    gb = clean_polygons(b.geometry.to_numpy())
    codes_a = a["cvegeo"].astype(str).to_numpy()
    codes_b = b["cvegeo"].astype(str).to_numpy()

    tree = shapely.STRtree(gb)
    ia, ib = tree.query(ga, predicate="intersects")
    inter = _intersection_area(ga, gb, ia, ib)
    area_a = shapely.area(ga)
    area_b = shapely.area(gb)
    share = np.divide(inter, area_a[ia], out=np.zeros_like(inter), where=area_a[ia] > 0)
    share_to = np.divide(inter, area_b[ib], out=np.zeros_like(inter), where=area_b[ib] > 0)
    table = pd.DataFrame({"cvegeo_from": codes_a[ia], "cvegeo_to": codes_b[ib],
                          "share": share, "share_to": share_to})
    table = table[((table["share"] >= min_share) | (table["share_to"] >= min_share))
                  & (table["share"] > 0)]
    for col, key in (("share", "cvegeo_from"), ("share_to", "cvegeo_to")):
        table[col] = table[col] / table.groupby(key)[col].transform("sum")
    lost = sorted(set(codes_a) - set(table["cvegeo_from"]))
    if lost:
        warnings.warn(f"{len(lost)} municipalit{'y' if len(lost) == 1 else 'ies'} of the "
                      "'from' boundaries overlap nothing in the 'to' boundaries: "
                      + ", ".join(lost[:20]), stacklevel=2)
    table = table.sort_values(["cvegeo_from", "share"], ascending=[True, False])
    table = table.reset_index(drop=True)[list(CROSSWALK_COLUMNS)]
    return table


def detect_changes(crosswalk: pd.DataFrame, codes_from, codes_to,
                   threshold: float = 0.02, areas_from=None) -> pd.DataFrame:
    """List the territorial changes a crosswalk reveals.

    Only changes that create or remove codes are listed: boundary adjustments between
    municipalities that exist in both vintages are indistinguishable from the noise of
    differently simplified boundary files, so they are not reported as splits or merges.

    Parameters
    ----------
    crosswalk : pandas.DataFrame
        Output of :func:`area_crosswalk`.
    codes_from, codes_to : iterable of str
        All municipal codes of each vintage.
    threshold : float, default 0.02
        Minimum share of the from-municipality for a piece to count as substantial.
    areas_from : mapping or pandas.Series, optional
        Area of each from-municipality (any unit). When given, the parents of a new code are
        ranked by the area they gave it (``share`` x area); otherwise by the crosswalk's
        ``share_to`` column (the same ranking), else, for crosswalks without it, by
        ``share``.

    Returns
    -------
    pandas.DataFrame
        ``change, cvegeo_from, cvegeo_to, share`` with ``change`` one of

        * ``new``: ``cvegeo_to`` did not exist before; ``cvegeo_from`` is a municipality it
          was carved from, the main parent (largest contributed area) first; ``share`` is
          the fraction of the parent's area it took;
        * ``split``: ``cvegeo_from`` is now spread over two or more codes, at least one of
          them new (or ``cvegeo_from`` itself no longer exists); one row per piece;
        * ``merge``: ``cvegeo_to`` took more than half of two or more municipalities, at
          least one of which no longer exists; one row per absorbed code;
        * ``removed``: ``cvegeo_from`` no longer exists; ``cvegeo_to`` receives most of it
          (empty when it overlaps nothing).
    """
    codes_from = {str(c) for c in codes_from}
    codes_to = {str(c) for c in codes_to}
    cw = crosswalk[crosswalk["share"] > threshold].copy()
    new_codes = codes_to - codes_from
    removed_codes = codes_from - codes_to
    rows = []
    # Parents of new codes. A tiny new municipality carved from a huge one takes a small
    # share of its parent but is mostly made of it: a piece counts when it is substantial on
    # either side, and parents rank by the area they gave (share_to, or share x area).
    share_to = (pd.to_numeric(crosswalk["share_to"], errors="coerce")
                if "share_to" in crosswalk.columns else None)
    if share_to is not None and share_to.notna().any():
        cw_new = crosswalk[(crosswalk["share"] > threshold) | (share_to > threshold)].copy()
        cw_new["weight"] = share_to.fillna(0)
    else:
        cw_new = cw.copy()
        cw_new["weight"] = cw_new["share"]
    if areas_from is not None:
        cw_new["weight"] = cw_new["share"] * cw_new["cvegeo_from"].map(
            pd.Series(areas_from)).fillna(0)
    for code in sorted(new_codes):
        parents = cw_new[cw_new["cvegeo_to"] == code].sort_values("weight", ascending=False)
        if parents.empty:
            rows.append(("new", "", code, np.nan))
        for _, p in parents.iterrows():
            rows.append(("new", p["cvegeo_from"], code, p["share"]))
    pieces = cw.groupby("cvegeo_from")["cvegeo_to"].transform("size")
    cw["to_new"] = cw["cvegeo_to"].isin(new_codes)
    touches_new = cw.groupby("cvegeo_from")["to_new"].transform("any")
    split = cw[(pieces >= 2) & (touches_new | cw["cvegeo_from"].isin(removed_codes))]
    for _, r in split.iterrows():
        rows.append(("split", r["cvegeo_from"], r["cvegeo_to"], r["share"]))
    whole = cw[cw["share"] > 0.5]
    absorbed = whole.groupby("cvegeo_to")["cvegeo_from"].transform("size")
    gone = whole["cvegeo_from"].isin(removed_codes).groupby(whole["cvegeo_to"]).transform("any")
    for _, r in whole[(absorbed >= 2) & gone].iterrows():
        rows.append(("merge", r["cvegeo_from"], r["cvegeo_to"], r["share"]))
    for code in sorted(removed_codes):
        dest = crosswalk[crosswalk["cvegeo_from"] == code].sort_values("share", ascending=False)
        if dest.empty:
            rows.append(("removed", code, "", np.nan))
        else:
            rows.append(("removed", code, dest["cvegeo_to"].iloc[0], dest["share"].iloc[0]))
    out = pd.DataFrame(rows, columns=list(CHANGE_COLUMNS))
    out["share"] = out["share"].astype(float)
    return out


# -- helpers --------------------------------------------------------------------------------
def _intersection_area(ga, gb, ia, ib) -> np.ndarray:
    """Areas of ga[ia] ∩ gb[ib], vectorised, with a per-pair fallback on GEOS errors."""
    # Identical polygons (an unchanged municipality) are the common case between vintages:
    # skip the costly overlay for them.
    same = shapely.equals_exact(ga[ia], gb[ib], tolerance=0.0)
    out = np.empty(len(ia))
    out[same] = shapely.area(ga[ia[same]])
    rest = np.flatnonzero(~same)
    try:
        out[rest] = shapely.area(shapely.intersection(ga[ia[rest]], gb[ib[rest]]))
    except shapely.errors.GEOSException:
        for k in rest:
            try:
                out[k] = shapely.intersection(ga[ia[k]], gb[ib[k]]).area
            except shapely.errors.GEOSException:
                out[k] = shapely.intersection(ga[ia[k]], gb[ib[k]], grid_size=1.0).area
    return out
