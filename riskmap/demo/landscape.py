"""The demo's raster covariate: a cropland-share GeoTIFF over the fictional country."""

from __future__ import annotations

import numpy as np
import rasterio
import rasterio.features
from rasterio.transform import from_origin
from scipy.special import expit

NODATA = -9999.0


def write_cropland(path, rng, outline, crop_field, development_field, resolution: float,
                   crs: str) -> dict:
    """Write ``cropland_share`` (0-1, float32, nodata outside the country) as a GeoTIFF.

    The share follows the same smooth ``crop`` surface that drives agricultural employment
    (so the raster and the records agree on where farming regions are), lower where the
    ``development`` surface is high (cities), plus pixel-level noise.

    Parameters
    ----------
    path : Path
    rng : numpy.random.Generator
    outline : shapely.Polygon
        Country outline (pixels whose centre is outside are nodata).
    crop_field, development_field : riskmap.demo.fields.SmoothField
    resolution : float
        Pixel size in metres.
    crs : str

    Returns
    -------
    dict
        ``{"shape": (rows, cols), "transform": Affine, "valid_pixels": int}``.
    """
    xmin, ymin, xmax, ymax = outline.bounds
    # Snap the grid to whole pixels so it is identical for identical inputs.
    xmin = np.floor(xmin / resolution) * resolution
    ymax = np.ceil(ymax / resolution) * resolution
    cols = int(np.ceil((xmax - xmin) / resolution))
    rows = int(np.ceil((ymax - ymin) / resolution))
    transform = from_origin(xmin, ymax, resolution, resolution)
    crop = crop_field.grid(transform, (rows, cols))
    dev = development_field.grid(transform, (rows, cols))
    noise = rng.normal(0.0, 0.5, (rows, cols))
    share = expit(-1.0 + 1.3 * crop - 0.5 * dev + noise).astype("float32")
    outside = rasterio.features.geometry_mask([outline], out_shape=(rows, cols),
                                              transform=transform, all_touched=False)
    share[outside] = NODATA
    profile = {"driver": "GTiff", "width": cols, "height": rows, "count": 1,
               "dtype": "float32", "crs": crs, "transform": transform, "nodata": NODATA,
               "compress": "deflate", "tiled": True, "blockxsize": 256, "blockysize": 256}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(share, 1)
        dst.set_band_description(1, "cropland_share")
        dst.update_tags(synthetic="true",
                        description="Synthetic demo data: share of cropland per pixel "
                                    "(datos sintéticos de demostración)")
    return {"shape": (rows, cols), "transform": transform,
            "valid_pixels": int((~outside).sum())}
