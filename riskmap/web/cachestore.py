"""The response cache's store, without Flask: a thread-safe LRU of rendered answers bounded by
bytes, and the version of the data directory they were rendered from.

:mod:`riskmap.web.cache` decides what is cached and under which key; this module only keeps
entries, counts hits and misses, and tells when the data directory changed.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

# Files the service writes itself, or whose changes only session-bound pages show.
_IGNORED = re.compile(r"(\.web\.(json\.gz|meta\.json|topojson\.gz)|\.(sqlite3?|db)"
                      r"(-wal|-shm|-journal)?|\.lock|\.tmp(\.\w+)?)$")
#: Exact requests the fast path remembers (each points to a cached entry; about 1 KB each).
MAX_ALIASES = 8192


# -- data version -------------------------------------------------------------------------------
class DataVersion:
    """Digest of the data directory's files, recomputed at most every ``interval`` seconds.

    Parameters
    ----------
    root : str or Path
        The data directory.
    interval : float
        Seconds between two looks at the files (0: every call).
    """

    def __init__(self, root, interval: float = 1.0):
        self.root = Path(root)
        self.interval = float(interval)
        self._lock = threading.Lock()
        self._checked = -float("inf")
        self._value = ""
        self.readable = False

    def current(self) -> str:
        """The version: a short hex digest ("unreadable" when the directory cannot be read)."""
        now = time.monotonic()
        if now - self._checked < self.interval:
            return self._value
        with self._lock:
            if now - self._checked >= self.interval:
                self._value, self.readable = self._scan()
                self._checked = time.monotonic()
            return self._value

    def _scan(self) -> tuple[str, bool]:
        digest = hashlib.sha256()
        try:
            top = sorted(os.scandir(self.root), key=lambda e: e.name)
        except OSError:
            return "unreadable", False
        for entry in top:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir():
                    files = sorted(os.scandir(entry.path), key=lambda e: e.name)
                    prefix = entry.name + "/"
                else:
                    files, prefix = [entry], ""
                for f in files:
                    if f.name.startswith(".") or _IGNORED.search(f.name) or not f.is_file():
                        continue
                    st = f.stat()
                    digest.update(f"{prefix}{f.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            except OSError:  # removed or renamed while listing: the next look sees it
                digest.update(f"{entry.name}\0?\n".encode())
        return digest.hexdigest()[:16], True


# -- the store ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """One cached answer: the view's headers, its bytes, their gzip form and a strong ETag."""

    status: int
    headers: tuple
    body: bytes
    gzipped: bytes | None
    etag: str
    script_hashes: tuple = ()

    @property
    def size(self) -> int:
        return len(self.body) + len(self.gzipped or b"") + 64 * (len(self.headers) + 4)


class ResponseCache:
    """Thread-safe LRU of :class:`Entry` bounded by bytes, emptied when the data change.

    Parameters
    ----------
    max_bytes : int
        Capacity; 0 disables the cache (every lookup misses, nothing is stored).
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max(0, int(max_bytes))
        self._lock = threading.Lock()
        self._entries: OrderedDict = OrderedDict()
        self._aliases: OrderedDict = OrderedDict()
        self._bytes = 0
        self._version = None
        self._rendering: dict = {}
        self.hits = self.misses = self.stores = self.evictions = self.resets = 0
        self.fast_hits = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def sync(self, version: str) -> None:
        """Empty the cache when the data version moved (entries of the old data are dead)."""
        with self._lock:
            if version != self._version:
                if self._version is not None:
                    self.resets += 1
                self._entries.clear()
                self._aliases.clear()
                self._bytes = 0
                self._version = version

    def get(self, key) -> Entry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key, entry: Entry) -> bool:
        """Store ``entry`` (evicting the least recently used); False when it cannot fit."""
        size = entry.size
        if not self.enabled or size > self.max_bytes:
            return False
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            self._entries[key] = entry
            self._bytes += size
            self.stores += 1
            while self._bytes > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.size
                self.evictions += 1
        return True

    def alias(self, raw):
        """The fast path's ``(entry, zipped, status, headers)`` for exact request ``raw``, or
        None (unknown request, or its entry was evicted)."""
        with self._lock:
            found = self._aliases.get(raw)
            if found is None:
                return None
            key, zipped, status, headers = found
            entry = self._entries.get(key)
            if entry is None:
                del self._aliases[raw]
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            self.fast_hits += 1
            return entry, zipped, status, headers

    def remember(self, raw, key, zipped: bool, status: str, headers: list) -> None:
        """Let the fast path answer request ``raw`` with entry ``key`` and these headers."""
        with self._lock:
            if key not in self._entries:
                return
            self._aliases[raw] = (key, zipped, status, headers)
            self._aliases.move_to_end(raw)
            while len(self._aliases) > MAX_ALIASES:
                self._aliases.popitem(last=False)

    def claim(self, key):
        """``(True, event)`` for the first request rendering ``key``, ``(False, event)`` for
        the others, which wait on the event instead of rendering the same answer again."""
        with self._lock:
            event = self._rendering.get(key)
            if event is not None:
                return False, event
            event = self._rendering[key] = threading.Event()
            return True, event

    def release(self, key) -> None:
        with self._lock:
            event = self._rendering.pop(key, None)
        if event is not None:
            event.set()

    def stats(self) -> dict:
        """Counts for ``/salud``: hits, misses, stores, evictions, resets, entries, bytes."""
        with self._lock:
            lookups = self.hits + self.misses
            return {"enabled": self.enabled, "hits": self.hits, "fast_hits": self.fast_hits,
                    "misses": self.misses,
                    "hit_ratio": round(self.hits / lookups, 4) if lookups else None,
                    "stores": self.stores, "evictions": self.evictions, "resets": self.resets,
                    "entries": len(self._entries), "aliases": len(self._aliases),
                    "bytes": self._bytes,
                    "max_bytes": self.max_bytes, "data_version": self._version}
