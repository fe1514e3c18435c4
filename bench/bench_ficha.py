"""Printable fichas (PDF): cold and cached times, against the state's HTML page in the same run.

Goal: a state ficha in <= 2 s cold (a fresh service process: the edition is read and
WeasyPrint is imported on the way), served from the cache after that.

Usage::

    .venv/bin/python bench/bench_ficha.py                 # builds the synthetic demo first
    .venv/bin/python bench/bench_ficha.py --data-dir D    # an existing data directory

Each measurement runs in a fresh Python process so "cold" really is cold.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_PROBE = r"""
import json, sys, time
sys.path.insert(0, {root!r})
from riskmap.web import create_app
app = create_app({{"data_dir": {data!r}, "auto_demo": False}})
client = app.test_client()
out = {{}}
def timed(key, url):
    t = time.perf_counter(); r = client.get(url); out[key] = time.perf_counter() - t
    assert r.status_code == 200, (url, r.status_code)
    out[key + "_bytes"] = len(r.data)
timed({first!r}, {first_url!r})
timed({second!r}, {second_url!r})
timed("cached", {second_url!r})
timed("other_state_ficha", "/estado/{other}/ficha.pdf")
print(json.dumps(out))
"""


def probe(data: Path, first: str, first_url: str, second: str, second_url: str,
          other: str) -> dict:
    code = _PROBE.format(root=str(ROOT), data=str(data), first=first, first_url=first_url,
                         second=second, second_url=second_url, other=other)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--state", default="07")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data_dir
        if data is None:
            from riskmap.demo import build_demo

            data = Path(tmp) / "demo"
            print("building the synthetic demo ...", flush=True)
            build_demo(data)
        s = args.state
        other = "12" if s != "12" else "07"
        # Process 1: the ficha is the first thing the service renders (coldest case).
        cold = probe(data, "ficha_cold", f"/estado/{s}/ficha.pdf", "page_after",
                     f"/estado/{s}", other)
        # Process 2: baseline first: the state's HTML page cold, then the ficha.
        base = probe(data, "page_cold", f"/estado/{s}", "ficha_after_page",
                     f"/estado/{s}/ficha.pdf", other)
    print(f"\nstate {s}, data {data}")
    print(f"{'measure':44} {'seconds':>9} {'ratio':>8}")
    ref = base["page_cold"]
    rows = [("state HTML page, cold process (baseline)", ref),
            ("state ficha PDF, cold process", cold["ficha_cold"]),
            ("state ficha PDF after the HTML page", base["ficha_after_page"]),
            ("state ficha PDF, second request (cache)", base["cached"]),
            ("another state's ficha, warm process", base["other_state_ficha"])]
    for label, value in rows:
        print(f"{label:44} {value:9.3f} {value / ref:8.2f}x")
    print(f"\nficha size: {cold['ficha_cold_bytes']:,} bytes; goal cold <= 2 s: "
          f"{'met' if cold['ficha_cold'] <= 2.0 else 'NOT met'}; cached/uncached = "
          f"{base['cached'] / base['ficha_after_page']:.4f}")


if __name__ == "__main__":
    main()
