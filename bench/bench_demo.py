"""Benchmark the synthetic demo build and the zonal statistics.

Usage::

    python bench/bench_demo.py [--data-dir D] [--seed N] [--small] [--naive-sample K]

Prints the time of each demo step (generation of the country, raster, census, surveys; then
storage and each edition's fit/score/classify/publish), and compares
:func:`riskmap.ingest.raster.zonal_mean` (one label raster + ``np.bincount``) with the naive
approach (one ``rasterio.mask`` per municipality) on the demo's cropland raster. The naive
method is timed on a sample of municipalities and extrapolated, so the benchmark stays short;
its values are checked against the fast method on that sample.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
import rasterio.mask

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from riskmap.demo import DEFAULT_SEED, DemoConfig, build_demo  # noqa: E402
from riskmap.ingest.raster import zonal_mean  # noqa: E402
from riskmap.publish.store import DataStore  # noqa: E402


def naive_means(raster_path, gdf):
    """Per-polygon masking: the method the label raster replaces."""
    out = []
    with rasterio.open(raster_path) as src:
        nodata = src.nodata
        for geom in gdf.to_crs(src.crs).geometry:
            data, _ = rasterio.mask.mask(src, [geom], crop=True, all_touched=False, filled=False)
            vals = data[0].compressed().astype("float64")
            vals = vals[np.isfinite(vals) & (vals != nodata)]
            out.append(vals.mean() if len(vals) else np.nan)
    return np.asarray(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="where to build (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--small", action="store_true", help="tiny country (smoke run)")
    parser.add_argument("--naive-sample", type=int, default=300,
                        help="municipalities timed with the naive method (0 = all)")
    args = parser.parse_args(argv)
    config = DemoConfig.small() if args.small else DemoConfig()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(args.data_dir or tmp)
        start = time.perf_counter()
        paths = build_demo(data_dir, seed=args.seed, config=config)
        total = time.perf_counter() - start
        print(f"demo build (seed {args.seed}, {'small' if args.small else 'full'}): "
              f"{total:.1f} s total")
        for step, seconds in paths["timings"].items():
            print(f"  {step:<18} {seconds:7.2f} s")

        gdf = DataStore(data_dir).load_vintage("2020")
        raster = paths["raster"]
        with rasterio.open(raster) as src:
            print(f"zonal mean of {raster.name}: {src.width} x {src.height} pixels, "
                  f"{len(gdf)} municipalities")
        t0 = time.perf_counter()
        fast = zonal_mean(raster, gdf)
        t_fast = time.perf_counter() - t0
        k = len(gdf) if args.naive_sample <= 0 else min(args.naive_sample, len(gdf))
        sample = gdf.sample(n=k, random_state=0) if k < len(gdf) else gdf
        t0 = time.perf_counter()
        slow = naive_means(raster, sample)
        t_naive = (time.perf_counter() - t0) * len(gdf) / k
        np.testing.assert_allclose(slow, fast.reindex(sample["cvegeo"]).to_numpy(), rtol=1e-9)
        print(f"  label raster + bincount  {t_fast:7.2f} s")
        print(f"  naive per-polygon mask   {t_naive:7.2f} s"
              + (f" (extrapolated from {k})" if k < len(gdf) else ""))
        print(f"  ratio naive / fast       {t_naive / t_fast:7.1f} x (same values on the sample)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
