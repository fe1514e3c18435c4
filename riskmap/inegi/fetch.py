"""Download official INEGI files with resume and checksum verification.

Each file of the catalogue (``models/sources/fetch_catalog.toml``) is downloaded to
``<data_dir>/downloads/<file name>``:

* the bytes go to ``<file name>.part``; an interrupted download keeps the ``.part`` file and
  the next run resumes it with an HTTP ``Range`` request (a server that ignores ranges sends
  the whole file again, and the ``.part`` is restarted);
* when complete, the size (if the catalogue gives one) and sha256 are checked; a mismatch is
  an error and the ``.part`` is kept but never published (delete it to start over);
* an unknown checksum is allowed and reported, so it can be recorded in the catalogue;
* only a verified file is renamed to its final name (atomic), so a reader never sees half.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from ..errors import InputError, RiskmapError
from ..fileio import read_toml, sha256_file
from .mapping import SOURCES_DIR

CATALOG = SOURCES_DIR / "fetch_catalog.toml"
CHUNK = 1 << 16


class FetchError(RiskmapError):
    """A download failed (network, server or checksum); the partial file is kept."""

    status = 502
    exit_code = 2


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    url: str
    sha256: str = ""
    size: int | None = None
    description: str = ""
    default: bool = False

    @property
    def filename(self) -> str:
        return Path(urlsplit(self.url).path).name


def load_catalog(path=None) -> dict[str, CatalogEntry]:
    """Read the download catalogue (default ``models/sources/fetch_catalog.toml``).

    Raises
    ------
    InputError
        Missing or invalid file, entries without name or url, duplicated names.
    """
    path = Path(path) if path is not None else CATALOG
    data = read_toml(path, "download catalogue")
    entries = {}
    for i, item in enumerate(data.get("files", []), start=1):
        if "name" not in item or "url" not in item:
            raise InputError(f"entry {i} needs a name and a url", file=path)
        if item["name"] in entries:
            raise InputError(f"entry {item['name']!r} is listed twice", file=path)
        sha = str(item.get("sha256", "")).strip().lower()
        if sha and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha)):
            raise InputError(f"entry {item['name']!r}: sha256 must be 64 hex digits or empty",
                             file=path)
        entries[item["name"]] = CatalogEntry(
            name=item["name"], url=item["url"], sha256=sha,
            size=int(item["size"]) if item.get("size") else None,
            description=str(item.get("description", "")), default=bool(item.get("default")))
    if not entries:
        raise InputError("the catalogue lists no [[files]]", file=path)
    return entries


def resolve_url(entry: CatalogEntry, url_base: str | None) -> str:
    """The entry's URL, or the same file name under a mirror's base URL."""
    if not url_base:
        return entry.url
    return url_base.rstrip("/") + "/" + entry.filename


@dataclass
class FetchResult:
    name: str
    path: Path
    sha256: str
    bytes: int
    status: str          # "downloaded", "resumed", "present"
    checksum_known: bool


def fetch(entry: CatalogEntry, data_dir, url_base: str | None = None,
          progress: Callable[[int, int | None], None] | None = None,
          timeout: float = 60.0) -> FetchResult:
    """Download one catalogue entry into ``<data_dir>/downloads/``, resuming a ``.part``.

    Parameters
    ----------
    entry : CatalogEntry
    data_dir : str or Path
    url_base : str, optional
        Mirror base URL replacing everything before the file name.
    progress : callable, optional
        ``progress(done_bytes, total_bytes_or_None)`` after every chunk.
    timeout : float
        Socket timeout in seconds.

    Returns
    -------
    FetchResult

    Raises
    ------
    FetchError
        Network or HTTP errors, an interrupted transfer (the ``.part`` is kept for resume),
        a size or checksum mismatch (the ``.part`` is kept, the file is not published).
    """
    folder = Path(data_dir) / "downloads"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / entry.filename
    part = target.with_name(target.name + ".part")
    if target.exists():
        digest = sha256_file(target)
        if not entry.sha256 or digest == entry.sha256:
            return FetchResult(entry.name, target, digest, target.stat().st_size, "present",
                               bool(entry.sha256))
        # a published file that no longer matches the catalogue: download it again
        target.unlink()
    url = resolve_url(entry, url_base)
    start = part.stat().st_size if part.exists() else 0
    status = _download(url, part, start, progress, timeout)
    size = part.stat().st_size
    if entry.size is not None and size != entry.size:
        raise FetchError(f"{entry.name}: downloaded {size:,} bytes, the catalogue expects "
                         f"{entry.size:,}; the partial file {part} is kept (delete it to "
                         "start over)")
    digest = sha256_file(part)
    if entry.sha256 and digest != entry.sha256:
        raise FetchError(f"{entry.name}: checksum mismatch (sha256 {digest}, expected "
                         f"{entry.sha256}); {part.name} is kept but not published; delete it "
                         "to download again")
    os.replace(part, target)
    return FetchResult(entry.name, target, digest, size, status, bool(entry.sha256))


def _download(url: str, part: Path, start: int, progress, timeout) -> str:
    headers = {"User-Agent": "riskmap-fetch"}
    if start:
        headers["Range"] = f"bytes={start}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:
            # the .part already holds the whole file: verify it as it is
            return "resumed"
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, HTTPException) as exc:
        raise FetchError(f"{url}: cannot connect ({getattr(exc, 'reason', exc)}); "
                         "try --url-base with a mirror") from None
    with response:
        code = response.status
        length = response.headers.get("Content-Length")
        length = int(length) if length is not None else None
        if start and code == 206:
            mode, done, status = "ab", start, "resumed"
        else:  # 200: the server sends the whole file (range ignored or fresh start)
            mode, done, status = "wb", 0, "downloaded"
        total = None if length is None else done + length
        received = 0
        try:
            with open(part, mode) as fh:
                while True:
                    chunk = response.read(CHUNK)
                    if not chunk:
                        break
                    fh.write(chunk)
                    received += len(chunk)
                    if progress is not None:
                        progress(done + received, total)
        except (OSError, HTTPException) as exc:
            raise FetchError(f"{url}: transfer interrupted after {done + received:,} bytes "
                             f"({type(exc).__name__}); run the command again to resume") from None
        if length is not None and received < length:
            raise FetchError(f"{url}: transfer interrupted after {done + received:,} of "
                             f"{total:,} bytes; run the command again to resume")
    return status
