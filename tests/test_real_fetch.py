"""`riskmap fetch`: progress, resume with HTTP Range, checksum verification, mirrors.

A local http.server on 127.0.0.1 (in a thread) serves small zip archives built here.
"""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from riskmap.cli import cli, main
from riskmap.errors import InputError
from riskmap.inegi.fetch import CATALOG, FetchError, fetch, load_catalog


def _archive(seed: int, size: int = 200_000) -> bytes:
    buf = io.BytesIO()
    payload = hashlib.sha256(str(seed).encode()).digest() * (size // 32)
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("mg_2020/conjunto_de_datos/00mun.dbf", payload)
    return buf.getvalue()


class _Server:
    """Serves ``files`` {path: bytes}; honours Range; can cut the first response short."""

    def __init__(self, files):
        self.files = files
        self.requests = []          # (path, Range header or None)
        self.cut_after = None       # bytes to send before dropping the connection (once)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                if rng:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                chunk = body[start:]
                self.send_header("Content-Length", str(len(chunk)))
                self.end_headers()
                if server.cut_after is not None:
                    self.wfile.write(chunk[:server.cut_after])
                    server.cut_after = None
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(chunk)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def archives():
    return {"/inegi/mg_2020_integrado.zip": _archive(1),
            "/inegi/iter_00_cpv2020_csv.zip": _archive(2, 50_000)}


def _catalog(tmp_path, base, archives, good=True):
    mg = archives["/inegi/mg_2020_integrado.zip"]
    sha = hashlib.sha256(mg).hexdigest() if good else "0" * 64
    path = tmp_path / "catalog.toml"
    path.write_text(f"""
[[files]]
name = "marco_geoestadistico_2020"
url = "{base}/inegi/mg_2020_integrado.zip"
sha256 = "{sha}"
size = {len(mg)}
default = true

[[files]]
name = "iter_2020"
url = "{base}/inegi/iter_00_cpv2020_csv.zip"
sha256 = ""
default = true
""", encoding="utf-8")
    return path


def test_download_verify_and_unknown_checksum_reported(tmp_path, archives):
    with _Server(archives) as srv:
        cat = _catalog(tmp_path, srv.base, archives)
        result = CliRunner().invoke(cli, ["fetch", "--catalog", str(cat), "--data-dir",
                                          str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "data" / "downloads"
    assert (folder / "mg_2020_integrado.zip").read_bytes() == archives["/inegi/mg_2020_integrado.zip"]
    assert "sha256 verified" in result.output
    iter_sha = hashlib.sha256(archives["/inegi/iter_00_cpv2020_csv.zip"]).hexdigest()
    assert f"unknown checksum: sha256 {iter_sha}" in result.output
    assert not list(folder.glob("*.part"))
    # second run: already present and verified, nothing requested again
    with _Server(archives) as srv2:
        cat = _catalog(tmp_path, srv2.base, archives)
        again = CliRunner().invoke(cli, ["fetch", "--catalog", str(cat), "--data-dir",
                                         str(tmp_path / "data")])
        assert srv2.requests == []
    assert again.exit_code == 0 and "present" in again.output


def test_interrupted_download_resumes_with_range(tmp_path, archives):
    body = archives["/inegi/mg_2020_integrado.zip"]
    data = tmp_path / "data"
    with _Server(archives) as srv:
        cat = _catalog(tmp_path, srv.base, archives)
        srv.cut_after = 70_000
        with pytest.raises(SystemExit) as exc:
            main(["fetch", "marco_geoestadistico_2020", "--catalog", str(cat), "--data-dir",
                  str(data)])
        assert exc.value.code == 2
        part = data / "downloads" / "mg_2020_integrado.zip.part"
        assert part.stat().st_size == 70_000
        assert not (data / "downloads" / "mg_2020_integrado.zip").exists()
        result = CliRunner().invoke(cli, ["fetch", "marco_geoestadistico_2020", "--catalog",
                                          str(cat), "--data-dir", str(data)])
        assert result.exit_code == 0, result.output
        assert srv.requests[-1] == ("/inegi/mg_2020_integrado.zip", "bytes=70000-")
    assert "resumed" in result.output
    assert (data / "downloads" / "mg_2020_integrado.zip").read_bytes() == body
    assert not part.exists()


def test_bad_checksum_exit_2_part_kept_not_published(tmp_path, archives, capsys):
    data = tmp_path / "data"
    with _Server(archives) as srv:
        cat = _catalog(tmp_path, srv.base, archives, good=False)
        with pytest.raises(SystemExit) as exc:
            main(["fetch", "marco_geoestadistico_2020", "--catalog", str(cat), "--data-dir",
                  str(data)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "checksum mismatch" in err and err.count("\n") == 1  # one line, no traceback
    assert (data / "downloads" / "mg_2020_integrado.zip.part").exists()
    assert not (data / "downloads" / "mg_2020_integrado.zip").exists()


def test_url_base_mirror(tmp_path, archives):
    mirror = {"/mirror/" + k.rsplit("/", 1)[1]: v for k, v in archives.items()}
    with _Server(mirror) as srv:
        cat = _catalog(tmp_path, "http://127.0.0.1:9", archives)  # official URL unreachable
        result = CliRunner().invoke(cli, ["fetch", "iter_2020", "--catalog", str(cat),
                                          "--url-base", srv.base + "/mirror/",
                                          "--data-dir", str(tmp_path / "d")])
        assert result.exit_code == 0, result.output
        assert srv.requests == [("/mirror/iter_00_cpv2020_csv.zip", None)]


def test_http_errors_and_unknown_names(tmp_path, archives):
    with _Server({}) as srv:
        cat = _catalog(tmp_path, srv.base, archives)
        entry = load_catalog(cat)["iter_2020"]
        with pytest.raises(FetchError, match="HTTP 404"):
            fetch(entry, tmp_path / "d")
    with pytest.raises(SystemExit) as exc:
        main(["fetch", "nope", "--catalog", str(cat), "--data-dir", str(tmp_path / "d")])
    assert exc.value.code == 2


def test_catalogue_validation(tmp_path):
    entries = load_catalog()
    assert CATALOG.exists()
    assert {e.name for e in entries.values() if e.default} == {"marco_geoestadistico_2020",
                                                               "iter_2020"}
    assert all(e.url.startswith("https://www.inegi.org.mx/") for e in entries.values())
    bad = tmp_path / "c.toml"
    bad.write_text('[[files]]\nname="x"\nurl="http://h/x.zip"\nsha256="abc"\n', encoding="utf-8")
    with pytest.raises(InputError, match="sha256 must be 64 hex digits"):
        load_catalog(bad)
