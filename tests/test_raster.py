"""Zonal statistics: label raster + bincount against a naive per-polygon rasterio.mask oracle."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import numpy.testing as npt
import pytest
import rasterio
import rasterio.mask
import shapely
from rasterio.transform import from_origin

from riskmap.errors import InputError
from riskmap.ingest import raster as zr

NODATA = -1.0
CRS = "EPSG:6372"


@pytest.fixture(scope="module")
def small_raster(tmp_path_factory):
    """A 60 x 80 raster (1 km pixels) with nodata and NaN holes, and its polygons."""
    path = tmp_path_factory.mktemp("raster") / "values.tif"
    rng = np.random.default_rng(7)
    values = rng.uniform(0.0, 10.0, (60, 80)).astype("float32")
    values[5:12, 10:20] = NODATA
    values[40, 40:50] = np.nan
    transform = from_origin(2_400_000, 1_300_000, 1000, 1000)
    with rasterio.open(path, "w", driver="GTiff", width=80, height=60, count=1,
                       dtype="float32", crs=CRS, transform=transform, nodata=NODATA) as dst:
        dst.write(values, 1)
        dst.set_band_description(1, "my_cover")
    # Voronoi polygons of random points, clipped to a box inside the raster, then stored in
    # lon/lat so that the function has to reproject them.
    box = shapely.box(2_403_300, 1_243_700, 2_477_100, 1_297_900)
    pts = np.column_stack([rng.uniform(2_403_300, 2_477_100, 25),
                           rng.uniform(1_243_700, 1_297_900, 25)])
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.MultiPoint(pts), extend_to=box))
    cells = shapely.intersection(cells, box)
    codes = [f"{i + 1:05d}" for i in range(len(cells))]
    gdf = gpd.GeoDataFrame({"cvegeo": codes}, geometry=cells, crs=CRS).to_crs(4326)
    return path, gdf


def oracle(path, gdf):
    """Naive reference: one rasterio.mask per polygon (pixel-centre rule)."""
    out = {}
    with rasterio.open(path) as src:
        geoms = gdf.to_crs(src.crs).geometry
        for code, geom in zip(gdf["cvegeo"], geoms):
            data, _ = rasterio.mask.mask(src, [geom], crop=True, all_touched=False, filled=False)
            vals = data[0].compressed().astype("float64")
            vals = vals[np.isfinite(vals) & (vals != NODATA)]
            out[code] = vals
    return out


def test_mean_and_count_match_per_polygon_mask(small_raster):
    path, gdf = small_raster
    table = zr.zonal_stats(path, gdf, stats=("mean", "count"))
    ref = oracle(path, gdf)
    assert list(table.index) == list(gdf["cvegeo"])
    npt.assert_array_equal(table["count"].to_numpy(), [len(ref[c]) for c in gdf["cvegeo"]])
    npt.assert_allclose(table["mean"].to_numpy(), [ref[c].mean() for c in gdf["cvegeo"]],
                        rtol=1e-12)
    # The holes really were excluded (otherwise -1 and NaN would pull or poison means).
    assert np.isfinite(table["mean"]).all() and (table["mean"] > 0).all()


def test_all_statistics_match_numpy(small_raster):
    path, gdf = small_raster
    table = zr.zonal_stats(path, gdf, stats=("sum", "min", "max", "std"))
    assert list(table.columns) == ["sum", "min", "max", "std"]
    ref = oracle(path, gdf)
    for stat, fn in (("sum", np.sum), ("min", np.min), ("max", np.max), ("std", np.std)):
        npt.assert_allclose(table[stat].to_numpy(), [fn(ref[c]) for c in gdf["cvegeo"]],
                            rtol=1e-9, err_msg=stat)


def test_strips_give_the_same_result(small_raster, monkeypatch):
    path, gdf = small_raster
    whole = zr.zonal_stats(path, gdf, stats=("mean", "count", "min", "max"))
    monkeypatch.setattr(zr, "MAX_STRIP_PIXELS", 80 * 7)  # 7-row strips, 9 of them
    strips = zr.zonal_stats(path, gdf, stats=("mean", "count", "min", "max"))
    npt.assert_array_equal(strips["count"].to_numpy(), whole["count"].to_numpy())
    npt.assert_allclose(strips[["mean", "min", "max"]].to_numpy(),
                        whole[["mean", "min", "max"]].to_numpy(), rtol=1e-12)


def test_zonal_mean_series_named_after_band(small_raster):
    path, gdf = small_raster
    series = zr.zonal_mean(path, gdf)
    assert series.name == "my_cover"
    assert series.index.name == "cvegeo"
    npt.assert_allclose(series.to_numpy(), zr.zonal_stats(path, gdf)["mean"].to_numpy())


def test_polygon_without_pixel_centre_is_nan_and_named(small_raster):
    path, gdf = small_raster
    # A 200 m square between pixel centres (centres are at 500 m offsets).
    tiny = gpd.GeoDataFrame({"cvegeo": ["99001"]},
                            geometry=[shapely.box(2_410_000, 1_280_000, 2_410_200, 1_280_200)],
                            crs=CRS)
    # And a polygon inside the nodata block.
    hole = gpd.GeoDataFrame({"cvegeo": ["99002"]},
                            geometry=[shapely.box(2_412_000, 1_290_000, 2_416_000, 1_292_000)],
                            crs=CRS)
    both = gpd.GeoDataFrame(
        {"cvegeo": ["99001", "99002", "99003"]},
        geometry=[tiny.geometry[0], hole.geometry[0],
                  shapely.box(2_430_000, 1_260_000, 2_440_000, 1_270_000)], crs=CRS)
    with pytest.warns(UserWarning, match=r"2 polygon\(s\).*99001, 99002"):
        table = zr.zonal_stats(path, both)
    assert np.isnan(table.loc["99001", "mean"]) and np.isnan(table.loc["99002", "mean"])
    assert table.loc["99001", "count"] == 0
    assert table.loc["99003", "count"] == 100


def test_bad_input_raises(small_raster):
    path, gdf = small_raster
    with pytest.raises(InputError, match="unknown zonal statistic.*median"):
        zr.zonal_stats(path, gdf, stats=("mean", "median"))
    with pytest.raises(InputError, match="column 'code'"):
        zr.zonal_stats(path, gdf, id_column="code")
    with pytest.raises(InputError, match="no CRS"):
        zr.zonal_stats(path, gpd.GeoDataFrame(gdf.drop(columns="geometry"),
                                              geometry=gdf.geometry.to_numpy(), crs=None))
    with pytest.raises(InputError, match="band 2 requested"):
        zr.zonal_stats(path, gdf, band=2)
    with pytest.raises(InputError, match="cannot read raster"):
        zr.zonal_stats(path.with_name("missing.tif"), gdf)


def test_no_warning_when_every_polygon_has_pixels(small_raster):
    path, gdf = small_raster
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        means = zr.zonal_mean(path, gdf)
    assert len(means) == len(gdf) and np.isfinite(means.to_numpy(dtype=float)).all()
