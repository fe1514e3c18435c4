"""Load benchmark of the JSON API under gunicorn (2 workers, loopback only).

Usage::

    python bench/bench_api.py                      # builds the synthetic demo into a temp dir
    python bench/bench_api.py --data-dir data      # uses an existing data directory
    python bench/bench_api.py --engine python --requests 3000 --concurrency 8

Starts ``gunicorn wsgi:app`` on 127.0.0.1 (a free port) with ``RISKMAP_DATA_DIR`` pointing at
the data, warms every URL once, then runs a bounded load against a mix of API URLs: with
``wrk`` (if ``/usr/bin/wrk`` exists) for ``--duration`` seconds, else with a Python thread
pool for ``--requests`` requests. Prints p50/p99 latency, throughput and the error count,
then stops gunicorn.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # loopback only: the benchmark never touches another host
WRK = Path("/usr/bin/wrk")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def get(port: int, path: str, headers: dict | None = None, timeout: float = 30.0):
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def start_gunicorn(data_dir: Path, port: int, workers: int) -> subprocess.Popen:
    env = dict(os.environ, RISKMAP_DATA_DIR=str(data_dir), RISKMAP_AUTO_DEMO="0")
    cmd = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind",
           f"{HOST}:{port}", "--log-level", "warning", "wsgi:app"]
    # Own process group, so stopping it stops its workers and nothing else.
    return subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_ready(proc: subprocess.Popen, port: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with code {proc.returncode}")
        try:
            if get(port, "/api/v1/ediciones", timeout=5)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit("gunicorn did not answer in time")


def url_mix(port: int) -> list[str]:
    """A realistic mix of API URLs discovered from the running service."""
    status, body = get(port, "/api/v1/ediciones")
    editions = json.loads(body)
    names = [e["name"] for e in editions["data"]]
    latest = editions["latest"]
    vintage = next(e["vintage"] for e in editions["data"] if e["name"] == latest)
    page = json.loads(get(port, f"/api/v1/ediciones/{latest}/municipios.json?per_page=500")[1])
    rows = page["data"]
    codes = [r["cvegeo"] for r in rows[:: max(1, len(rows) // 8)]][:8]
    states = sorted({r["cve_ent"] for r in rows})[:3]
    urls = ["/api/v1/ediciones", f"/api/v1/ediciones/{latest}",
            f"/api/v1/ediciones/{latest}/municipios.json",
            f"/api/v1/ediciones/{latest}/municipios.json?nivel=alto",
            f"/api/v1/geometria/{vintage}.geojson",
            f"/api/v1/focalizacion?edicion={latest}&visitas=2000&q=0.05"]
    urls += [f"/api/v1/ediciones/{latest}/municipios.json?estado={s}" for s in states]
    urls += [f"/api/v1/ediciones/{latest}/municipios/{c}" for c in codes]
    if len(names) > 1:
        urls.append(f"/api/v1/comparar?a={names[-2]}&b={latest}")
    return urls


def run_python(port: int, urls: list[str], n_requests: int, concurrency: int) -> dict:
    def one(i: int):
        path = urls[i % len(urls)]
        t0 = time.perf_counter()
        try:
            status, _ = get(port, path, headers={"Accept-Encoding": "gzip"})
        except OSError:
            status = 0
        return time.perf_counter() - t0, status

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(one, range(n_requests)))
    elapsed = time.perf_counter() - t0
    latencies = sorted(r[0] for r in results)
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"engine": "python", "requests": n_requests, "seconds": elapsed,
            "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000,
            "throughput_rps": n_requests / elapsed,
            "errors": sum(1 for r in results if not 200 <= r[1] < 400)}


_LUA = """
local paths = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1], {["Accept-Encoding"] = "gzip"})
end
"""


def _ms(text: str) -> float:
    """wrk's human durations (``812.00us``, ``95.20ms``, ``1.02s``, ``1.10m``) in ms."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if match is None:
        raise ValueError(f"unexpected wrk duration {text!r}")
    value, unit = match.groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}[unit]


def run_wrk(port: int, urls: list[str], duration: int, concurrency: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_LUA % ", ".join(json.dumps(u) for u in urls))
    try:
        out = subprocess.run([str(WRK), "-t2", f"-c{concurrency}", f"-d{duration}s", "--latency",
                              "-s", script.name, f"http://{HOST}:{port}/"],
                             capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)
    try:
        return _parse_wrk(out, duration)
    except (AttributeError, ValueError) as exc:
        raise SystemExit(f"could not read wrk's report ({exc}):\n{out}") from None


def _parse_wrk(out: str, duration: int) -> dict:
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
    return {"engine": "wrk", "requests": total, "seconds": float(duration),
            "p50_ms": _ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1)),
            "p99_ms": _ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1)),
            "throughput_rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "errors": errors}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, help="existing data directory (else build the demo)")
    parser.add_argument("--seed", type=int, default=20240601, help="demo seed when building")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--engine", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--duration", type=int, default=10, help="seconds of load (wrk)")
    parser.add_argument("--requests", type=int, default=2000, help="requests (python engine)")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)

    tmp = None
    data_dir = args.data_dir
    if data_dir is None:
        from riskmap.demo import build_demo

        tmp = tempfile.TemporaryDirectory(prefix="riskmap-bench-")
        data_dir = Path(tmp.name)
        t0 = time.perf_counter()
        build_demo(data_dir, seed=args.seed)
        print(f"demo built in {time.perf_counter() - t0:.1f} s", flush=True)
    port = free_port()
    proc = start_gunicorn(data_dir.resolve(), port, args.workers)
    try:
        t0 = time.perf_counter()
        wait_ready(proc, port)
        urls = url_mix(port)
        for path in urls:  # warm every worker's caches (each worker loads lazily)
            for _ in range(args.workers * 2):
                status, _ = get(port, path)
                if status != 200:
                    print(f"warning: {path} -> HTTP {status}", flush=True)
        print(f"ready and warmed in {time.perf_counter() - t0:.1f} s; {len(urls)} URLs", flush=True)
        full = full_geojson(port, urls)
        engine = args.engine
        if engine == "auto":
            engine = "wrk" if WRK.exists() else "python"
        if engine == "wrk":
            result = run_wrk(port, urls, args.duration, args.concurrency)
        else:
            result = run_python(port, urls, args.requests, args.concurrency)
    finally:
        stop(proc)
        if tmp is not None:
            tmp.cleanup()
    print(f"engine {result['engine']}: {result['requests']} requests in "
          f"{result['seconds']:.1f} s, concurrency {args.concurrency}, {args.workers} workers")
    print(f"p50 {result['p50_ms']:.1f} ms  p99 {result['p99_ms']:.1f} ms  "
          f"throughput {result['throughput_rps']:.0f} req/s  errors {result['errors']}")
    if full:
        print(f"full-resolution GeoJSON {full['path']}: {full['plain']:,} bytes plain in "
              f"{full['t_plain']:.2f} s, {full['gzip']:,} bytes gzipped in {full['t_gzip']:.2f} s "
              f"({full['plain'] / full['gzip']:.1f}x smaller on the wire)")
    return 1 if result["errors"] else 0


def full_geojson(port: int, urls: list[str]) -> dict | None:
    """Bytes and time of the streamed full-resolution GeoJSON, plain and gzipped (one each)."""
    latest = next((u.split("/")[4] for u in urls if u.startswith("/api/v1/ediciones/")
                   and u.count("/") >= 4), None)
    if latest is None:
        return None
    path = f"/api/v1/ediciones/{latest}/municipios.geojson"
    t0 = time.perf_counter()
    status_plain, plain = get(port, path)
    t_plain = time.perf_counter() - t0
    t0 = time.perf_counter()
    status_gzip, zipped = get(port, path, headers={"Accept-Encoding": "gzip"})
    t_gzip = time.perf_counter() - t0
    if status_plain != 200 or status_gzip != 200:
        print(f"warning: {path} -> HTTP {status_plain}/{status_gzip}", flush=True)
        return None
    return {"path": path, "plain": len(plain), "gzip": len(zipped), "t_plain": t_plain,
            "t_gzip": t_gzip}


if __name__ == "__main__":
    sys.exit(main())
