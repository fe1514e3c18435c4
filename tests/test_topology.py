"""TopoJSON encoding of the web layer: lossless on its grid, shared borders stored once."""

from __future__ import annotations

import gzip
import json
from collections import Counter

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from riskmap.web.topology import to_features, to_topology
from riskmap.web.weblayer import encode_layer, web_layer


def _jagged_grid(n: int = 3, step: int = 30, seed: int = 0) -> gpd.GeoDataFrame:
    """n*n cells whose shared borders are jagged lines (identical on both sides), plus an
    enclave inside the first cell, a two-part municipality and one without geometry."""
    rng = np.random.default_rng(seed)
    size = 0.5
    t = np.linspace(0, size, step + 1)

    def border(k, horizontal):  # jagged line k of the lattice, from 0 to n*size
        pts = []
        for c in range(n):
            wiggle = rng.normal(0, 0.004, step + 1) if 0 < k < n else np.zeros(step + 1)
            wiggle[[0, -1]] = 0
            for i in range(step + (c == n - 1)):
                along, across = c * size + t[i], k * size + wiggle[i]
                pts.append((along, across) if horizontal else (across, along))
        return pts

    h = [border(k, True) for k in range(n + 1)]
    v = [border(k, False) for k in range(n + 1)]
    cells = []
    for i in range(n):
        for j in range(n):
            lo, hi = j * step, (j + 1) * step
            bottom = h[i][lo:hi + 1]
            right = v[j + 1][i * step:(i + 1) * step + 1]
            top = h[i + 1][lo:hi + 1][::-1]
            left = v[j][i * step:(i + 1) * step + 1][::-1]
            ring = bottom + right[1:] + top[1:] + left[1:]
            cells.append(Polygon([(-100 + x, 20 + y) for x, y in ring]))
    hole = box(-99.9, 20.1, -99.8, 20.2)
    cells[0] = Polygon(cells[0].exterior.coords, [hole.exterior.coords])
    geoms = cells + [hole, MultiPolygon([box(-98, 20, -97.9, 20.1), box(-97.8, 20, -97.7, 20.1)]),
                     None]
    codes = [f"01{k + 1:03d}" for k in range(len(geoms))]
    return gpd.GeoDataFrame({"cvegeo": codes, "cve_ent": "01", "nom_ent": "Estado",
                             "nom_mun": [f"Municipio {c}" for c in codes]},
                            geometry=geoms, crs=4326)


def test_round_trip_is_exact_on_the_grid():
    layer = web_layer(_jagged_grid(), tolerance_m=0)
    topo = to_topology(layer, quantize=5)
    assert topo["type"] == "Topology"
    back = to_features(topo)
    assert [f["properties"] for f in back] == [f["properties"] for f in layer["features"]]
    for ours, theirs in zip(back, layer["features"]):
        if theirs["geometry"] is None:
            assert ours["geometry"] is None
            continue
        a = shapely.geometry.shape(ours["geometry"])
        b = shapely.geometry.shape(theirs["geometry"])
        assert a.is_valid and a.geom_type == b.geom_type
        assert shapely.equals_exact(shapely.normalize(a), shapely.normalize(b), 1e-9)


def test_shared_borders_are_stored_once():
    gdf = _jagged_grid()
    layer = web_layer(gdf, tolerance_m=0)
    topo = to_topology(layer, quantize=5)
    uses = Counter()
    for geom in topo["objects"]["municipios"]["geometries"]:
        polys = [geom["arcs"]] if geom["type"] == "Polygon" else geom.get("arcs", [])
        for poly in polys:
            for ring in poly:
                uses.update(i if i >= 0 else ~i for i in ring)
    # 3x3 grid: 12 interior borders between two cells, and the enclave's ring, used twice.
    assert sum(1 for n in uses.values() if n == 2) == 12 + 1
    assert max(uses.values()) == 2 and len(uses) == len(topo["arcs"])
    # Each shared vertex is written once: far fewer positions than the GeoJSON has.
    positions = sum(len(a) for a in topo["arcs"])
    geo_positions = int(shapely.get_num_coordinates(gdf.geometry.dropna().to_numpy()).sum())
    assert positions < 0.75 * geo_positions


def test_arcs_are_delta_encoded_integers_and_smaller_on_the_wire():
    layer = web_layer(_jagged_grid(n=4, step=60), tolerance_m=0)
    topo = json.loads(gzip.decompress(encode_layer(layer, "topojson")))
    assert topo["transform"]["scale"] == [1e-5, 1e-5]
    flat = [v for arc in topo["arcs"] for pos in arc for v in pos]
    assert all(isinstance(v, int) for v in flat)
    deltas = [abs(v) for arc in topo["arcs"] for pos in arc[1:] for v in pos]
    assert np.median(deltas) < 2000  # small offsets, not absolute positions
    assert len(encode_layer(layer, "topojson")) < 0.75 * len(encode_layer(layer, "geojson"))


def test_simplified_coverage_stays_shared_in_the_topology():
    layer = web_layer(_jagged_grid(n=4, step=60, seed=3), tolerance_m=800)
    back = gpd.GeoDataFrame.from_features(to_features(to_topology(layer)), crs=4326)
    geoms = back.geometry.dropna().to_numpy()
    assert shapely.is_valid(geoms).all()
    tree = shapely.STRtree(geoms)
    i, j = tree.query(geoms, predicate="intersects")
    keep = i < j
    overlap = shapely.area(shapely.intersection(geoms[i[keep]], geoms[j[keep]])).sum()
    np.testing.assert_allclose(overlap, 0.0, atol=1e-12)
