"""Load benchmark of the web service under gunicorn, with and without the response cache.

Usage::

    python bench/bench_api.py                      # builds the synthetic demo into a temp dir
    python bench/bench_api.py --data-dir data      # uses an existing data directory
    python bench/bench_api.py --duration 5 --rss-duration 20 --engine python

Starts ``gunicorn -c gunicorn.conf.py -w 2 wsgi:app`` (the production defaults: threads,
``preload_app`` with warming) on 127.0.0.1 twice in the same run: with the response cache
(``RISKMAP_CACHE_BYTES`` default) and without it (``RISKMAP_CACHE_BYTES=0``), the baseline.
For each, it reports the time to ready, the first request of each target after start, then
loads each target in turn with ``wrk`` (64 connections for 10 s, 2 s timeout; a Python load
generator when ``/usr/bin/wrk`` is absent) and prints req/s, p50, p99, errors and timeouts,
and the cached/uncached throughput ratio. On the cached service each URL is asked a few times
before its load, so that the figures are the steady state (the cost of a first rendering is
what the first request shows). Finally, on the cached service, it reports the
resident memory (RSS) of each worker before and after 60 s of mixed load.

Targets (those of issue 8; municipality targets cycle through 20 municipalities and the state
listing through 8 states, so the cache has to fill, not just answer one URL):
``/api/v1/ediciones/<latest>/municipios.json?estado=..``, ``/api/v1/ediciones/<latest>/
municipios/<cvegeo>``, ``/``, ``/municipio/<cvegeo>``, ``/comparar?a=..&b=..``,
``/focalizacion`` and ``/tendencias`` when that route exists. Goals: API p99 <= 50 ms, pages
p99 <= 100 ms, no errors or timeouts, >= 10x the uncached throughput on the heavy pages, first
request <= 1 s per page, RSS growth < 10 %. Only 127.0.0.1 is loaded, for bounded times.
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
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # loopback only: the benchmark never touches another host
WRK = Path("/usr/bin/wrk")
GZIP = {"Accept-Encoding": "gzip"}
TIMEOUT_S = 2
API_GOAL_MS, PAGE_GOAL_MS, FIRST_GOAL_S, SPEEDUP_GOAL, RSS_GOAL = 50, 100, 1.0, 10, 0.10


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def get(port: int, path: str, headers: dict | None = None, timeout: float = 60.0):
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# -- gunicorn -------------------------------------------------------------------------------------
def start_gunicorn(data_dir: Path, port: int, workers: int, cache_bytes: int | None):
    env = dict(os.environ, RISKMAP_DATA_DIR=str(data_dir), RISKMAP_AUTO_DEMO="0")
    if cache_bytes is not None:
        env["RISKMAP_CACHE_BYTES"] = str(cache_bytes)
    cmd = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
           "--workers", str(workers), "--bind", f"{HOST}:{port}", "--log-level", "warning",
           "--access-logfile", os.devnull, "wsgi:app"]
    # Own process group, so stopping it stops its workers and nothing else.
    return subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_ready(proc: subprocess.Popen, port: int, timeout: float = 300.0) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with code {proc.returncode}")
        try:
            if get(port, "/salud", timeout=5)[0] == 200:
                return time.perf_counter() - t0
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("gunicorn did not answer in time")


def worker_rss(proc: subprocess.Popen) -> dict[int, int]:
    """pid -> resident set size in bytes of each worker (children of the master)."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True,
                         text=True).stdout.split()
    sizes = {}
    for pid in map(int, out):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        if match:
            sizes[pid] = int(match.group(1)) * 1024
    return sizes


# -- targets --------------------------------------------------------------------------------------
def targets(port: int) -> list[tuple[str, str, list[str]]]:
    """``(name, kind, urls)`` for each target, discovered from the running service."""
    editions = json.loads(get(port, "/api/v1/ediciones")[1])
    names = [e["name"] for e in editions["data"]]
    latest = editions["latest"]
    page = json.loads(get(port, f"/api/v1/ediciones/{latest}/municipios.json?per_page=5000")[1])
    rows = page["data"]
    codes = [r["cvegeo"] for r in rows[:: max(1, len(rows) // 20)]][:20]
    states = sorted({r["cve_ent"] for r in rows})[:: 4][:8]
    out = [
        ("API municipios.json?estado=", "api",
         [f"/api/v1/ediciones/{latest}/municipios.json?estado={s}" for s in states]),
        ("API municipios/<cvegeo>", "api",
         [f"/api/v1/ediciones/{latest}/municipios/{c}" for c in codes]),
        ("/", "page", ["/"]),
        ("/municipio/<cvegeo>", "page", [f"/municipio/{c}" for c in codes]),
    ]
    if len(names) > 1:
        out.append(("/comparar?a=&b=", "page", [f"/comparar?a={names[-2]}&b={latest}"]))
    out.append(("/focalizacion", "page", ["/focalizacion"]))
    if get(port, "/tendencias")[0] != 404:
        query = f"?a={names[0]}&b={latest}" if len(names) > 1 else ""
        out.append(("/tendencias", "page", [f"/tendencias{query}"]))
    return out


# -- load generators ------------------------------------------------------------------------------
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


def run_wrk(port: int, urls: list[str], duration: int, connections: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_LUA % ", ".join(json.dumps(u) for u in urls))
    try:
        out = subprocess.run([str(WRK), "-t2", f"-c{connections}", f"-d{duration}s",
                              f"--timeout={TIMEOUT_S}s", "--latency", "-s", script.name,
                              f"http://{HOST}:{port}/"], capture_output=True, text=True,
                             check=True, timeout=duration + 60).stdout
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
    connect, read, write, timeouts = map(int, sock.groups()) if sock else (0, 0, 0, 0)
    return {"requests": total, "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": _ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1)),
            "p99_ms": _ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1)),
            "errors": (int(non2xx.group(1)) if non2xx else 0) + connect + read + write,
            "timeouts": timeouts}


def run_python(port: int, urls: list[str], duration: int, connections: int) -> dict:
    """Fallback load generator: ``connections`` threads with keep-alive for ``duration`` s."""
    stop_at = time.perf_counter() + duration
    latencies, errors, timeouts = [], [0], [0]
    lock = threading.Lock()

    def worker(offset: int):
        conn = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT_S)
        i, mine = offset, []
        while time.perf_counter() < stop_at:
            path = urls[i % len(urls)]
            i += 1
            t0 = time.perf_counter()
            try:
                conn.request("GET", path, headers=GZIP)
                response = conn.getresponse()
                response.read()
                ok = 200 <= response.status < 400
            except socket.timeout:
                with lock:
                    timeouts[0] += 1
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT_S)
                continue
            except OSError:
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT_S)
            mine.append(time.perf_counter() - t0)
            if not ok:
                with lock:
                    errors[0] += 1
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat = sorted(latencies) or [float("nan")]
    q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else lat * 99
    return {"requests": len(latencies), "rps": len(latencies) / duration,
            "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000, "errors": errors[0],
            "timeouts": timeouts[0]}


# -- one configuration ----------------------------------------------------------------------------
def measure(label: str, data_dir: Path, args, cache_bytes: int | None, load) -> dict:
    port = free_port()
    proc = start_gunicorn(data_dir, port, args.workers, cache_bytes)
    try:
        ready = wait_ready(proc, port)
        deadline = time.monotonic() + 30
        while len(worker_rss(proc)) < args.workers and time.monotonic() < deadline:
            time.sleep(0.2)
        rss_start = worker_rss(proc)
        found = targets(port)
        first = {}
        for name, _, urls in found:
            t0 = time.perf_counter()
            status, _ = get(port, urls[-1], headers=GZIP)  # the last variant: never warmed
            first[name] = (time.perf_counter() - t0, status)
        results = {}
        for name, kind, urls in found:
            if cache_bytes is None:  # steady state: every URL once per worker, likely
                for url in urls:
                    for _ in range(3 * args.workers):
                        get(port, url, headers=GZIP)
            results[name] = dict(load(port, urls, args.duration, args.connections), kind=kind)
            print(f"  [{label}] {name}: {results[name]['rps']:.0f} req/s, p99 "
                  f"{results[name]['p99_ms']:.0f} ms", flush=True)
        rss = None
        if args.rss_duration and cache_bytes is None:
            every = [u for _, _, urls in found for u in urls]
            for url in every:  # each URL once per worker before the "before" figure
                for _ in range(args.workers):
                    get(port, url, headers=GZIP)
            before = worker_rss(proc)
            mixed = load(port, every, args.rss_duration, args.connections)
            rss = {"start": rss_start, "before": before, "after": worker_rss(proc),
                   "load": mixed}
        health = json.loads(get(port, "/salud")[1])
    finally:
        stop(proc)
    return {"ready_s": ready, "first": first, "results": results, "rss": rss,
            "cache": health.get("cache", {})}


def report(cached: dict, uncached: dict, args, engine: str) -> int:
    failures = []
    print(f"\n# Load: gunicorn -w {args.workers} (gunicorn.conf.py), {args.connections} "
          f"connections, {args.duration} s per target, {engine}, {TIMEOUT_S} s timeout; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end\n")
    print("| target | cached req/s | p50 | p99 | errors | timeouts | uncached req/s | p99 "
          "| errors | timeouts | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, c in cached["results"].items():
        u = uncached["results"].get(name)
        ratio = c["rps"] / u["rps"] if u and u["rps"] else float("inf")
        print(f"| {name} | {c['rps']:,.0f} | {c['p50_ms']:.1f} ms | {c['p99_ms']:.1f} ms | "
              f"{c['errors']} | {c['timeouts']} | {u['rps']:,.0f} | {u['p99_ms']:.0f} ms | "
              f"{u['errors']} | {u['timeouts']} | {ratio:.1f}x |")
        goal = API_GOAL_MS if c["kind"] == "api" else PAGE_GOAL_MS
        if c["p99_ms"] > goal:
            failures.append(f"{name}: p99 {c['p99_ms']:.0f} ms > {goal} ms")
        if c["errors"] or c["timeouts"]:
            failures.append(f"{name}: {c['errors']} errors, {c['timeouts']} timeouts")
        if c["kind"] == "page" and ratio < SPEEDUP_GOAL:
            failures.append(f"{name}: {ratio:.1f}x the uncached throughput < {SPEEDUP_GOAL}x")
    print(f"\nready after start: cached {cached['ready_s']:.1f} s, uncached "
          f"{uncached['ready_s']:.1f} s (includes preloading and warming in the master)")
    print("\nfirst request after start (a variant the warm-up did not ask for):")
    print("| target | cached | uncached |")
    print("|---|---|---|")
    for name, (seconds, status) in cached["first"].items():
        u_seconds, u_status = uncached["first"].get(name, (float("nan"), 0))
        print(f"| {name} | {seconds * 1000:.0f} ms ({status}) | {u_seconds * 1000:.0f} ms "
              f"({u_status}) |")
        if seconds > FIRST_GOAL_S:
            failures.append(f"{name}: first request {seconds:.2f} s > {FIRST_GOAL_S} s")
    rss = cached["rss"]
    if rss:
        load = rss["load"]
        print(f"\nRSS per worker, cached service; {args.rss_duration} s of mixed load "
              f"({load['rps']:.0f} req/s, p99 {load['p99_ms']:.0f} ms, {load['errors']} errors, "
              f"{load['timeouts']} timeouts):")
        print("| worker | at start | after one pass over the URLs | after the load | growth |")
        print("|---|---|---|---|---|")
        for pid, before in rss["before"].items():
            after = rss["after"].get(pid)
            if after is None:
                failures.append(f"worker {pid} did not survive the load")
                continue
            growth = after / before - 1
            print(f"| {pid} | {rss['start'].get(pid, 0) / 2**20:.0f} MB | {before / 2**20:.0f} MB "
                  f"| {after / 2**20:.0f} MB | {growth:+.1%} |")
            if growth > RSS_GOAL:
                failures.append(f"worker {pid}: RSS grew {growth:.1%} > {RSS_GOAL:.0%}")
    c = cached["cache"]
    print(f"\ncache (last worker asked): {c.get('hits')} hits, {c.get('misses')} misses, "
          f"{c.get('entries')} entries, {c.get('bytes', 0) / 2**20:.1f} MB of "
          f"{c.get('max_bytes', 0) / 2**20:.0f} MB, {c.get('evictions')} evictions")
    print("\ngoals: " + ("all met" if not failures else "NOT met:\n  - " + "\n  - ".join(failures)))
    return 1 if failures else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path,
                        help="existing data directory (else build the demo)")
    parser.add_argument("--seed", type=int, default=20240601, help="demo seed when building")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--engine", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per target")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rss-duration", type=int, default=60,
                        help="seconds of mixed load between the two RSS readings (0: skip)")
    args = parser.parse_args(argv)

    engine = args.engine
    if engine == "auto":
        engine = "wrk" if WRK.exists() else "python"
    load = run_wrk if engine == "wrk" else run_python
    tmp = None
    data_dir = args.data_dir
    if data_dir is None:
        sys.path.insert(0, str(ROOT))
        from riskmap.demo import build_demo

        tmp = tempfile.TemporaryDirectory(prefix="riskmap-bench-")
        data_dir = Path(tmp.name)
        t0 = time.perf_counter()
        build_demo(data_dir, seed=args.seed)
        print(f"demo built in {time.perf_counter() - t0:.1f} s", flush=True)
    try:
        print("cached service (RISKMAP_CACHE_BYTES default):", flush=True)
        cached = measure("cached", data_dir.resolve(), args, None, load)
        print("uncached service (RISKMAP_CACHE_BYTES=0), the baseline:", flush=True)
        uncached = measure("uncached", data_dir.resolve(), args, 0, load)
    finally:
        if tmp is not None:
            tmp.cleanup()
    return report(cached, uncached, args, engine)


if __name__ == "__main__":
    sys.exit(main())
