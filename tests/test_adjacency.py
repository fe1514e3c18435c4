"""Adjacency of a vintage's municipalities (riskmap.ingest.adjacency)."""

from __future__ import annotations

import geopandas as gpd
from shapely.geometry import box

from riskmap.ingest.adjacency import adjacency


def test_touching_squares_corners_and_islands():
    # 2 x 2 grid (corners touch: queen adjacency), one island far away, one square a hair
    # (below the tolerance) away from the grid: round-off still counts as touching.
    frame = gpd.GeoDataFrame({
        "cvegeo": ["01001", "01002", "01003", "01004", "01005", "01006"],
        "nom_mun": ["A", "B", "C", "D", "Isla", "Casi"],
        "geometry": [box(0, 0, 1, 1), box(1, 0, 2, 1), box(0, 1, 1, 2), box(1, 1, 2, 2),
                     box(10, 10, 11, 11), box(2 + 5e-7, 0, 3, 1)]}, crs=4326)
    out = adjacency(frame)
    assert out["01001"] == [("01002", "B"), ("01003", "C"), ("01004", "D")]
    assert out["01002"] == [("01001", "A"), ("01003", "C"), ("01004", "D"), ("01006", "Casi")]
    assert out["01005"] == []
    assert adjacency(frame, tolerance=1e-9)["01006"] == []
