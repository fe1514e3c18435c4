"""The simplified web layer: shared borders stay shared, properties, cache and ETag."""

from __future__ import annotations

import gzip
import json
import os

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon

from riskmap.errors import NotFound
from riskmap.publish.store import DataStore
from riskmap.web.weblayer import WEB_PROPERTIES, cached_web_layer, web_layer


def _wiggly_coverage(n=4) -> gpd.GeoDataFrame:
    """n*n cells whose shared edges are jagged (many vertices), edge-matched exactly."""
    rng = np.random.default_rng(0)
    size = 0.5
    xs = np.linspace(0, n * size, n * 40 + 1)
    # one jagged vertical line per column boundary, one horizontal per row boundary
    v_off = rng.normal(0, 0.003, (n + 1, len(xs)))
    h_off = rng.normal(0, 0.003, (n + 1, len(xs)))
    v_off[:, ::40] = 0  # lattice nodes stay put so corners match exactly
    h_off[:, ::40] = 0
    v_off[[0, -1]] = 0
    h_off[[0, -1]] = 0
    v_off[:, [0, -1]] = 0
    h_off[:, [0, -1]] = 0

    def vline(k, lo, hi):  # points along x = k*size from y index lo to hi
        return [(-100 + k * size + v_off[k, t], 20 + xs[t]) for t in range(lo, hi + 1)]

    def hline(k, lo, hi):
        return [(-100 + xs[t], 20 + k * size + h_off[k, t]) for t in range(lo, hi + 1)]

    rows, m = [], 40
    for i in range(n):
        for j in range(n):
            bottom = hline(i, j * m, (j + 1) * m)
            right = vline(j + 1, i * m, (i + 1) * m)
            top = hline(i + 1, j * m, (j + 1) * m)[::-1]
            left = vline(j, i * m, (i + 1) * m)[::-1]
            ring = bottom + right[1:] + top[1:] + left[1:-1]
            # start each ring mid-edge, at a different place: a per-polygon simplifier then
            # treats the two sides of a shared border differently
            shift = 13 + 7 * (i * n + j)
            ring = ring[shift:] + ring[:shift]
            rows.append({"cvegeo": f"01{i * n + j + 1:03d}", "cve_ent": "01",
                         "cve_mun": f"{i * n + j + 1:03d}", "nom_ent": "Aguascalientes",
                         "nom_mun": f"Municipio {i * n + j + 1}", "extra": 1,
                         "geometry": Polygon(ring)})
    return gpd.GeoDataFrame(rows, crs=4326)


def _pairwise_overlap(geoms) -> float:
    tree = shapely.STRtree(geoms)
    i, j = tree.query(geoms, predicate="intersects")
    keep = i < j
    return float(shapely.area(shapely.intersection(geoms[i[keep]], geoms[j[keep]])).sum())


def test_coverage_simplification_keeps_borders_shared():
    gdf = _wiggly_coverage()
    assert gdf.is_valid.all()
    layer = web_layer(gdf, tolerance_m=3000)
    out = gpd.GeoDataFrame.from_features(layer["features"], crs=4326)
    before = shapely.get_num_coordinates(gdf.geometry.to_numpy()).sum()
    after = shapely.get_num_coordinates(out.geometry.to_numpy()).sum()
    assert after < before / 3  # really simplified
    geoms = out.geometry.to_numpy()
    assert out.is_valid.all()
    total = shapely.area(geoms).sum()
    # no overlaps and no gaps: the union is the outer square, areas add up
    np.testing.assert_allclose(_pairwise_overlap(geoms) / total, 0.0, atol=1e-9)
    np.testing.assert_allclose(shapely.union_all(geoms).area, total, rtol=1e-9)
    # an independent per-polygon simplification would open gaps/overlaps (the oracle)
    naive = gdf.to_crs(6372).simplify(3000).to_crs(4326).to_numpy()
    assert _pairwise_overlap(naive) / total > 1e-4


def test_properties_order_and_quantisation():
    gdf = _wiggly_coverage(2)
    layer = web_layer(gdf, tolerance_m=0, quantize=3)
    assert layer["type"] == "FeatureCollection"
    props = [f["properties"] for f in layer["features"]]
    assert [p["cvegeo"] for p in props] == gdf["cvegeo"].tolist()
    assert all(tuple(p) == WEB_PROPERTIES for p in props)
    coords = np.array(layer["features"][0]["geometry"]["coordinates"][0])
    np.testing.assert_array_equal(coords, np.round(coords, 3))
    # tolerance 0 keeps every vertex
    assert len(coords) == len(gdf.geometry.iloc[0].exterior.coords)


def test_cached_web_layer_builds_once_and_rebuilds_on_change(tmp_path):
    store = DataStore(tmp_path)
    gdf = _wiggly_coverage(3)
    store.save_vintage("2020", gdf.drop(columns=["extra"]))
    body, etag = cached_web_layer(store, "2020")
    cache = tmp_path / "geography" / "2020.web.json.gz"
    assert cache.exists() and cache.read_bytes() == body
    layer = json.loads(gzip.decompress(body))
    assert len(layer["features"]) == 9
    assert etag.startswith('"') and etag.endswith('"')
    # second call: same bytes and ETag, no rebuild (the cache file is not rewritten)
    mtime = cache.stat().st_mtime_ns
    assert cached_web_layer(store, "2020") == (body, etag)
    assert cache.stat().st_mtime_ns == mtime
    # a new process (empty memo) reuses the disk cache too
    from riskmap.web import weblayer
    weblayer._memo.clear()
    assert cached_web_layer(store, "2020") == (body, etag)
    assert cache.stat().st_mtime_ns == mtime
    # the vintage is touched but unchanged: its digest matches, the layer is not rebuilt
    source = store.vintage_path("2020")
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))
    assert cached_web_layer(store, "2020") == (body, etag)
    assert cache.stat().st_mtime_ns == mtime
    # the vintage changes (other size) -> rebuilt with a new ETag
    store.save_vintage("2020", gdf.iloc[:4].drop(columns=["extra"]))
    body2, etag2 = cached_web_layer(store, "2020")
    assert etag2 != etag
    assert len(json.loads(gzip.decompress(body2))["features"]) == 4
    with pytest.raises(NotFound, match="2019.*stored: 2020"):
        cached_web_layer(store, "2019")
    assert not [p for p in os.listdir(tmp_path / "geography") if p.endswith(".tmp")]


@pytest.mark.slow
def test_real_national_layer_under_1mb(mx_dir):
    from riskmap.ingest.boundaries import read_boundaries

    gdf = read_boundaries(mx_dir / "municipios_2020.geojson")
    layer = web_layer(gdf)
    raw = json.dumps(layer, separators=(",", ":")).encode()
    packed = gzip.compress(raw, mtime=0)
    print(f"national web layer: {len(raw) / 1e6:.2f} MB raw, {len(packed) / 1e6:.2f} MB gzip")
    assert len(packed) < 1_000_000
    assert len(layer["features"]) == 2469
    out = gpd.GeoDataFrame.from_features(layer["features"], crs=4326)
    assert out.is_valid.all() and not out.is_empty.any()


def _dirty(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Break a clean coverage the way careless exports do (not through read_boundaries)."""
    from shapely.geometry import GeometryCollection, LineString, MultiPolygon, Point

    geoms = gdf.geometry.to_numpy().copy()
    x0, y0 = shapely.get_coordinates(geoms[0]).min(axis=0)
    # a GeometryCollection: the polygon plus a stray line and point
    geoms[0] = GeometryCollection([geoms[0], LineString([(x0, y0), (x0 - 0.1, y0 - 0.1)]),
                                   Point(x0 - 0.2, y0)])
    # a MultiPolygon carrying a sliver along its own edge and a far islet
    sliver = Polygon([(x0, y0 - 1e-7), (x0 + 0.4, y0 - 1e-7), (x0 + 0.4, y0)])
    islet = Polygon([(x0 - 1, y0 - 1), (x0 - 0.99, y0 - 1), (x0 - 0.99, y0 - 0.99)])
    geoms[1] = MultiPolygon([geoms[1], sliver, islet])
    # a self-intersecting (bow-tie) ring
    xa, ya, xb, yb = shapely.bounds(geoms[2])
    geoms[2] = Polygon([(xa, ya), (xb, yb), (xb, ya), (xa, yb)])
    out = gdf.copy()
    out["geometry"] = geoms
    return out


def test_web_layer_cleans_dirty_input_instead_of_crashing(tmp_path):
    gdf = _dirty(_wiggly_coverage(3).drop(columns=["extra"]))
    assert (gdf.geom_type == "GeometryCollection").any() and not gdf.is_valid.all()
    # the unguarded simplifier rejects such input (the oracle)
    with pytest.raises((TypeError, shapely.errors.GEOSException)):
        shapely.coverage_simplify(gdf.to_crs(6372).geometry.to_numpy(), 500.0)
    store = DataStore(tmp_path)
    store.save_vintage("sucio", gdf)  # saved raw, without read_boundaries
    body, _ = cached_web_layer(store, "sucio", tolerance_m=500)
    layer = json.loads(gzip.decompress(body))
    assert [f["properties"]["cvegeo"] for f in layer["features"]] == gdf["cvegeo"].tolist()
    out = gpd.GeoDataFrame.from_features(layer["features"], crs=4326)
    assert out.is_valid.all() and not out.is_empty.any()
    assert set(out.geom_type) <= {"Polygon", "MultiPolygon"}
    # the polygon inside the collection survives with its area; the bow-tie keeps both lobes
    area = gdf.to_crs(6372).area.to_numpy()
    got = out.to_crs(6372).area.to_numpy()
    np.testing.assert_allclose(got[0], area[0], rtol=0.05)
    assert got[2] > 0
    # a missing geometry becomes a feature with null geometry, not a crash or a dropped row
    gdf.loc[4, "geometry"] = None
    layer = web_layer(gdf, tolerance_m=500)
    assert len(layer["features"]) == 9 and layer["features"][4]["geometry"] is None


@pytest.mark.slow
def test_real_vintage_saved_raw_with_collections(mx_dir, tmp_path):
    raw = gpd.read_file(mx_dir / "municipios_2020.geojson")
    assert (raw.geom_type == "GeometryCollection").sum() >= 1  # what used to crash
    store = DataStore(tmp_path)
    store.save_vintage("2020", raw)
    body, _ = cached_web_layer(store, "2020")
    out = gpd.GeoDataFrame.from_features(json.loads(gzip.decompress(body))["features"],
                                         crs=4326)
    assert len(out) == 2469 and out.is_valid.all() and not out.is_empty.any()
    assert set(out.geom_type) <= {"Polygon", "MultiPolygon"}


def test_read_only_data_directory_still_serves_the_layer(tmp_path, monkeypatch):
    from riskmap.web import weblayer

    store = DataStore(tmp_path)
    store.save_vintage("2020", _wiggly_coverage(2).drop(columns=["extra"]))
    weblayer._memo.clear()

    def refuse(path):
        raise PermissionError(13, "Read-only file system", str(path))

    monkeypatch.setattr(weblayer, "atomic_path", refuse)
    with pytest.warns(UserWarning, match="cannot write the web layer cache"):
        body, etag = cached_web_layer(store, "2020")
    assert len(json.loads(gzip.decompress(body))["features"]) == 4
    assert not (tmp_path / "geography" / "2020.web.json.gz").exists()
    assert cached_web_layer(store, "2020") == (body, etag)  # memoised, no second warning


def test_layer_credits_the_producer_of_its_editions(tmp_path):
    from riskmap.web import weblayer
    from riskmap.inegi.imported import import_edition
    import pandas as pd

    store = DataStore(tmp_path)
    gdf = _wiggly_coverage(2).drop(columns=["extra"])
    store.save_vintage("2020", gdf)
    weblayer._memo.clear()
    body, etag = cached_web_layer(store, "2020")
    assert "attribution" not in json.loads(gzip.decompress(body))  # no edition uses it yet
    levels = pd.DataFrame({"cvegeo": gdf["cvegeo"], "level": ["alto", "medio", "bajo", "medio"]})
    store.publish_edition(import_edition("mirti2023", levels, gdf, vintage="2020",
                                         file="lista.csv"))
    body2, etag2 = cached_web_layer(store, "2020")
    layer = json.loads(gzip.decompress(body2))
    assert etag2 != etag
    assert "INEGI" in layer["attribution"]["es"] and "INEGI" in layer["attribution"]["en"]
    assert layer["attribution"] == store.load_card("mirti2023")["attribution"]
    assert len(layer["features"]) == 4
