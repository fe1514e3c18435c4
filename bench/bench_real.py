"""Benchmark on the real Mexican reference data: web layer, crosswalk, semi-synthetic build.

Usage: ``python bench/bench_real.py`` from the repository root. The data folder is
``../shared/data/mx`` beside the repository, or ``$RISKMAP_MX_DIR``; without it the benchmark
prints a message and exits 0. Nothing is written to the repository (a temporary data
directory is used and removed).

Baselines measured in the same run: the unsimplified layer (bytes, vertices) and a naive
per-polygon simplification (time, and the gaps/overlaps it opens between neighbours) for the
web layer; geopandas' generic ``overlay`` for the crosswalk.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def mx_dir() -> Path:
    env = os.environ.get("RISKMAP_MX_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data" / "mx"


def main() -> int:
    folder = mx_dir()
    if not (folder / "municipios_2020.geojson").exists():
        print(f"bench_real: skipped, real data folder not found ({folder}); "
              "set RISKMAP_MX_DIR to run it")
        return 0

    import geopandas as gpd
    import shapely

    from riskmap.ingest.crosswalk import area_crosswalk, detect_changes, equal_area_crs
    from riskmap.ingest.boundaries import read_boundaries
    from riskmap.inegi.simulate import build_semisynthetic
    from riskmap.web.weblayer import encode_layer, web_layer

    def timed(fn, *args, **kwargs):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        return out, time.perf_counter() - start

    m2020, t_read = timed(read_boundaries, folder / "municipios_2020.geojson")
    m2015, _ = timed(read_boundaries, folder / "municipios_2015.geojson")
    print(f"read 2020 boundaries: {len(m2020):,} municipalities in {t_read:.2f} s")

    def n_vertices(layer):
        return int(sum(shapely.get_num_coordinates(shapely.from_geojson(json.dumps(f["geometry"])))
                       for f in layer["features"] if f["geometry"] is not None))

    def gaps_overlaps(geoms, outline):
        """Overlap area between neighbours and gap area inside the outline, km2."""
        tree = shapely.STRtree(geoms)
        i, j = tree.query(geoms, predicate="intersects")
        keep = i < j
        overlap = shapely.area(shapely.intersection(geoms[i[keep]], geoms[j[keep]])).sum()
        gap = shapely.difference(outline, shapely.union_all(geoms)).area
        return overlap / 1e6, gap / 1e6

    print("\nweb layer (2020)")
    full, t_full = timed(web_layer, m2020, tolerance_m=0)
    full_raw = json.dumps(full, separators=(",", ":")).encode()
    full_gz = gzip.compress(full_raw, mtime=0)
    full_xy = n_vertices(full)
    print(f"  unsimplified (5 decimals): {len(full_raw) / 1e6:6.2f} MB raw, "
          f"{len(full_gz) / 1e6:5.2f} MB gzip, {full_xy:,} vertices, {t_full:.2f} s")
    for tol in (100, 250, 500, 1000):
        layer, t = timed(web_layer, m2020, tolerance_m=tol)
        raw = json.dumps(layer, separators=(",", ":")).encode()
        packed = encode_layer(layer)
        n_xy = n_vertices(layer)
        print(f"  coverage-simplified {tol:5d} m: {len(raw) / 1e6:6.2f} MB raw, "
              f"{len(packed) / 1e6:5.2f} MB gzip ({len(packed) / len(full_gz):.2f} x "
              f"unsimplified), {n_xy:,} vertices ({n_xy / full_xy:.2f} x), {t:.2f} s")
    # naive baseline: each polygon simplified on its own (what a per-feature simplifier does)
    metric = m2020.to_crs(equal_area_crs(m2020))
    naive, t_naive = timed(lambda: metric.geometry.simplify(500, preserve_topology=True))
    coverage, t_cov = timed(web_layer, m2020, tolerance_m=500, quantize=12)
    cov_metric = gpd.GeoDataFrame.from_features(coverage["features"], crs=4326).to_crs(
        metric.crs).geometry.to_numpy()
    outline = shapely.union_all(metric.geometry.to_numpy())
    print(f"  500 m, naive per-polygon simplify: {t_naive:.2f} s; coverage: {t_cov:.2f} s "
          f"({t_cov / t_naive:.1f} x the naive time)")
    measured = {label: gaps_overlaps(geoms, outline)
                for label, geoms in (("source", metric.geometry.to_numpy()),
                                     ("naive", naive.to_numpy()), ("coverage", cov_metric))}
    base = measured["source"]
    for label, (ov, gap) in measured.items():
        print(f"    {label:8s}: overlaps {ov:8.1f} km2, gaps {gap:8.1f} km2 "
              f"(new vs source: {ov - base[0]:+8.1f}, {gap - base[1]:+8.1f})")

    print("\ncrosswalk 2015 -> 2020")
    cw, t_cw = timed(area_crosswalk, m2015, m2020)
    # naive baseline: geopandas' generic overlay in the same equal-area CRS
    crs = equal_area_crs(m2020)
    pieces, t_overlay = timed(gpd.overlay, m2015.to_crs(crs)[["cvegeo", "geometry"]],
                              m2020.to_crs(crs)[["cvegeo", "geometry"]],
                              keep_geom_type=True)
    print(f"  baseline gpd.overlay: {len(pieces):,} pieces in {t_overlay:.2f} s; "
          f"area_crosswalk below takes {t_cw / t_overlay:.2f} x that time")
    changes, t_ch = timed(detect_changes, cw, m2015["cvegeo"], m2020["cvegeo"])
    new = changes[changes["change"] == "new"].drop_duplicates("cvegeo_to")
    print(f"  {len(cw):,} rows in {t_cw:.2f} s (+ change detection {t_ch:.2f} s); "
          f"{len(new)} new municipalities:")
    names = dict(zip(m2020["cvegeo"], m2020["nom_mun"]))
    names.update(zip(m2015["cvegeo"], m2015["nom_mun"]))
    for _, r in new.iterrows():
        print(f"    {r['cvegeo_to']} {names[r['cvegeo_to']]} <- {r['cvegeo_from']} "
              f"{names.get(r['cvegeo_from'], '?')}")

    print("\nsemi-synthetic build (3 editions, default sizes; 2017 on the 2015 vintage)")
    with tempfile.TemporaryDirectory(prefix="riskmap-bench-") as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result, t_build = timed(build_semisynthetic, tmp, folder / "municipios_2020.geojson",
                                    folder / "censo2020_municipal.csv", seed=2020,
                                    old_boundaries_path=folder / "municipios_2015.geojson")
        from riskmap.publish.store import DataStore

        store = DataStore(tmp)
        print(f"  total {t_build:.1f} s; steps (s): {result['timings']}")
        for name in store.edition_names():
            ed = store.load_edition(name)
            print(f"  edition {name}: national rate {ed.national_rate:.3f}, levels "
                  f"{ed.level_counts()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
