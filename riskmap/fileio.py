"""Small file helpers shared by readers: TOML with one-line errors, file digests."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

from .errors import InputError


def read_toml(path, what: str, hint: str = "") -> dict:
    """Parse a UTF-8 TOML file, or raise one :class:`InputError` naming the file.

    Parameters
    ----------
    path : str or Path
    what : str
        What the file is, for the message ("model spec file", "mapping file"...).
    hint : str, optional
        Appended to the not-found message (e.g. the files that do exist).
    """
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{what} not found{'; ' + hint if hint else ''}", file=path) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not a valid UTF-8 TOML file ({exc})", file=path) from None


def sha256_file(path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (constant memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
