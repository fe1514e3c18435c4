"""Page weight and build time of the national map: riskmap's page vs a naive folium choropleth.

riskmap's national page carries a compact value table and fetches the simplified, quantised
geometry once from a cached, gzipped endpoint; a naive folium choropleth embeds the full
geometry (and loads Leaflet, jQuery, Bootstrap... from CDNs). Both are measured in the same run
on the same municipalities, as bytes on the wire with gzip.

Usage::

    .venv/bin/python bench/bench_web.py                # demo atlas, then the real 2020 geography
    .venv/bin/python bench/bench_web.py --demo-dir D   # same, reusing a built demo atlas
    .venv/bin/python bench/bench_web.py --demo         # the synthetic demo atlas only
    .venv/bin/python bench/bench_web.py --data-dir D   # an existing data directory only

The real-geography part needs ``../shared/data/mx/municipios_2020.geojson`` and is skipped,
saying so, when it is absent. There the values are synthetic (random levels), only the shapes
are real. The bench never writes outside a temporary folder.
"""

from __future__ import annotations

import argparse
import gzip
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MX = ROOT.parent / "shared" / "data" / "mx" / "municipios_2020.geojson"
BUDGET = 500_000  # bytes, gzipped, national page including its geometry (issue 8: 0.5 MB)


def gz(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=6))


def real_geography_atlas(folder: Path, source: Path = MX) -> Path:
    """A data directory with one synthetic-valued edition on the real 2020 municipalities."""
    from riskmap.publish.edition import Edition, EXTRA_COLUMNS, ROW_COLUMNS
    from riskmap.publish.store import DataStore

    from riskmap.ingest.boundaries import read_boundaries

    # The project's reader, as a user's import would go (codes as text, polygonal geometry).
    mun = read_boundaries(source)
    store = DataStore(folder)
    store.save_vintage("2020", mun[["cvegeo", "cve_ent", "cve_mun", "nom_ent", "nom_mun",
                                    "geometry"]])
    rng = np.random.default_rng(1)
    n = len(mun)
    p = rng.beta(2, 14, n)
    half = rng.uniform(0.01, 0.06, n)
    rows = mun.copy()
    rows["edition"], rows["vintage"] = "2023", "2020"
    rows["probability"], rows["ci_low"], rows["ci_high"] = p, np.clip(p - half, 0, 1), p + half
    rows["level"] = np.where(rows["ci_low"] > 0.131, "alto",
                             np.where(rows["ci_high"] < 0.131, "bajo", "medio"))
    rows.loc[rng.random(n) < 0.005, ["probability", "ci_low", "ci_high"]] = np.nan
    rows.loc[rows["probability"].isna(), "level"] = "sin_informacion"
    rows["children"] = rng.integers(300, 400000, n)
    rows["expected_child_labour"] = rows["probability"] * rows["children"]
    rows["rank_national"] = rows["probability"].rank(ascending=False, method="first")
    rows["rank_state"] = rows.groupby("cve_ent")["probability"].rank(ascending=False,
                                                                     method="first")
    rows["top_factors"] = ""
    rows["se"], rows["var_model"], rows["var_census"] = half / 1.96, (half / 1.96) ** 2, 0.0
    rows["n_records"] = 100
    rows["level_rule"], rows["level_certainty"] = "significance", np.nan
    card = {"edition": "2023", "year": 2023, "kind": "imported", "vintage": "2020",
            "synthetic": True, "created": "2023-01-01T00:00:00+00:00",
            "sources": ["INEGI Marco Geoestadístico 2020 (simplificado)"],
            "rule": "bench", "national_rate": {"estimate": 0.131, "ci_low": 0.128,
                                               "ci_high": 0.134}}
    store.publish_edition(Edition("2023", rows[list(ROW_COLUMNS) + list(EXTRA_COLUMNS)
                                              + ["geometry"]], None, card))
    return folder


def riskmap_page(data_dir: Path) -> dict:
    """Bytes (gzip) and times of the national page with everything it loads."""
    from riskmap.web import create_app

    app = create_app({"data_dir": str(data_dir), "auto_demo": False})
    client = app.test_client()
    headers = {"Accept-Encoding": "gzip"}
    t1 = time.perf_counter()
    page = client.get("/", headers=headers)
    t_page_cold = time.perf_counter() - t1
    t1 = time.perf_counter()
    client.get("/", headers=headers)
    t_page_warm = time.perf_counter() - t1
    html = gzip.decompress(page.data).decode() if page.headers.get("Content-Encoding") else \
        page.get_data(as_text=True)
    urls = re.findall(r'(?:src|href)="(/(?:static|assets)/[^"]+)"', html)
    config = re.search(r'id="riskmap-config">(.*?)</script>', html, re.S).group(1)
    import json

    urls += [m["geometry"] for m in json.loads(config)["maps"]]
    parts = {"page (HTML)": len(page.data)}
    timings = {"page, cold": t_page_cold, "page, warm": t_page_warm}
    for url in dict.fromkeys(urls):
        t1 = time.perf_counter()
        r = client.get(url, headers=headers)
        elapsed = time.perf_counter() - t1
        assert r.status_code == 200, (url, r.status_code)
        body = r.data
        size = len(body) if r.headers.get("Content-Encoding") == "gzip" else gz(body)
        parts[url.split("?")[0]] = size
        if "geometria" in url:
            timings["geometry, cold"] = elapsed
            t1 = time.perf_counter()
            client.get(url, headers=headers)
            timings["geometry, warm"] = time.perf_counter() - t1
    return {"parts": parts, "total": sum(parts.values()), "timings": timings,
            "external": len(re.findall(r'(?:src|href)="https?://', html))}


def naive_page(data_dir: Path) -> dict:
    """A straightforward folium choropleth of the same edition, geometry embedded."""
    import folium

    from riskmap.publish.store import DataStore

    store = DataStore(data_dir)
    name = store.edition_names()[-1]
    edition = store.load_edition(name)
    t0 = time.perf_counter()
    gdf = edition.rows[["cvegeo", "nom_mun", "nom_ent", "probability", "level", "geometry"]]
    fmap = folium.Map(location=[23.6, -102.5], zoom_start=5, prefer_canvas=True)
    choropleth = folium.Choropleth(geo_data=gdf.to_json(), data=gdf,
                                   columns=["cvegeo", "probability"],
                                   key_on="feature.properties.cvegeo", fill_color="YlOrRd",
                                   nan_fill_color="#bdbdbd").add_to(fmap)
    folium.GeoJsonTooltip(["nom_mun", "nom_ent", "probability", "level"]).add_to(
        choropleth.geojson)
    html = fmap.get_root().render().encode()
    elapsed = time.perf_counter() - t0
    external = re.findall(r'(?:src|href)="(https?://[^"]+)"', html.decode())
    return {"raw": len(html), "gzip": gz(html), "build": elapsed, "external": len(external)}


def report(what: str, data_dir: Path) -> None:
    """Measure and print riskmap's national page against the naive choropleth."""
    ours = riskmap_page(data_dir)
    naive = naive_page(data_dir)
    print(f"\n# National map page weight, {what}")
    print("\nriskmap page (gzip bytes on the wire):")
    for part, size in ours["parts"].items():
        print(f"  {part:<45} {size:>10,}")
    print(f"  {'TOTAL':<45} {ours['total']:>10,}   budget {BUDGET:,.0f} -> "
          f"{'OK' if ours['total'] <= BUDGET else 'OVER'}")
    print(f"  requests to other hosts: {ours['external']}")
    print("  times (s): " + ", ".join(f"{k} {v:.3f}" for k, v in ours["timings"].items()))
    print("\nnaive folium choropleth (geometry embedded):")
    print(f"  page raw {naive['raw']:,} bytes, gzip {naive['gzip']:,} bytes, "
          f"build {naive['build']:.3f} s, plus {naive['external']} CDN assets "
          "(not counted; they fail offline)")
    print(f"\nratio naive/riskmap (gzip): {naive['gzip'] / ours['total']:.1f}x; "
          f"build time naive/riskmap (cold page + geometry): "
          f"{naive['build'] / (ours['timings']['page, cold'] + ours['timings'].get('geometry, cold', 0)):.1f}x")


def main(argv=None) -> int:
    import warnings

    # GDAL's notice about the temporary name of atomically written GeoPackages.
    warnings.filterwarnings("ignore", message=r".*(non conformant file extension|"
                            r"filename extension should be 'gpkg')", category=RuntimeWarning)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path,
                        help="measure this data directory only")
    parser.add_argument("--demo", action="store_true",
                        help="the synthetic demo only (skip the real geography)")
    parser.add_argument("--demo-dir", type=Path,
                        help="an already built demo atlas to use instead of building one")
    parser.add_argument("--mx", type=Path, default=MX,
                        help="the real 2020 municipalities (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.data_dir:
        report(f"data directory {args.data_dir.name}", args.data_dir)
        return 0
    with tempfile.TemporaryDirectory(prefix="riskmap-bench-") as tmp:
        demo = args.demo_dir
        if demo is None:
            from riskmap.demo import build_demo

            demo = Path(tmp) / "demo"
            print("building the synthetic demo atlas...", flush=True)
            build_demo(demo, seed=20240601)
        report("synthetic demo atlas", demo)
        if args.demo:
            return 0
        if not args.mx.exists():
            print(f"\n# Real 2020 geography: skipped ({args.mx.name} absent)")
            return 0
        real = real_geography_atlas(Path(tmp) / "real", args.mx)
        report("real 2020 geography (2,469 municipalities), synthetic values", real)
    return 0


if __name__ == "__main__":
    sys.exit(main())
