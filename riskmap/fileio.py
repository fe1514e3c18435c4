"""Small file helpers: atomic writes, GeoPackage layers, TOML with one-line errors, file
digests, CSV read as text in UTF-8 or latin-1, INEGI code columns zero-padded with row-precise
errors."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import tomllib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError


@contextmanager
def atomic_path(target):
    """Yield a temporary path to write ``target`` to; move it onto ``target`` on success.

    The temporary file has ``target``'s own name, in a hidden temporary folder beside it:
    GDAL drivers choose and check formats by extension (and a Shapefile writer adds sidecar
    files), and the same file system makes the final :func:`os.replace` atomic. On any
    exception the folder is removed and ``target`` is untouched, so a reader never sees half
    a file and a failed write leaves what was there before byte-for-byte intact.

    Parameters
    ----------
    target : str or Path
        The file to (re)write; its folder is created when missing.

    Yields
    ------
    Path
        Where to write (the writer creates the file).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        tmp = Path(folder) / target.name
        yield tmp
        os.replace(tmp, target)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


#: GeoPackage version written: 1.2 opens without warnings in GDAL 3.6, which many QGIS
#: installations still ship (GDAL's default, 1.4, "may only be partially supported" there).
GPKG_VERSION = "1.2"


def write_gpkg(frame, path, layer: str, version: str = GPKG_VERSION, **options) -> None:
    """Write ``frame`` as layer ``layer`` of the GeoPackage ``path`` (created or added to).

    Parameters
    ----------
    frame : pandas.DataFrame or geopandas.GeoDataFrame
    path : str or Path
    layer : str
    version : str, default :data:`GPKG_VERSION`
        GeoPackage version of a new file (GDAL's ``VERSION`` creation option: ``"1.2"``,
        ``"1.3"``, ``"1.4"`` or ``"AUTO"``); ignored when adding a layer to an existing file.
    **options
        Passed to :func:`pyogrio.write_dataframe` (e.g. ``promote_to_multi``).
    """
    import pyogrio

    pyogrio.write_dataframe(frame, path, layer=layer, driver="GPKG", VERSION=version,
                            **options)


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


def read_csv_text(source, **kwargs) -> pd.DataFrame:
    """``pandas.read_csv`` with every column as text, decoded as UTF-8 (with or without BOM)
    or, failing that, latin-1 (INEGI's older files; it decodes any byte, so never fails).

    Parameters
    ----------
    source : str, Path or callable
        A path, or a callable returning a fresh binary file object (e.g. a zip member; it
        is opened again for the latin-1 attempt).
    **kwargs
        Passed to :func:`pandas.read_csv` (``dtype`` and ``encoding`` are set here).
    """
    def read(encoding):
        if callable(source):
            with source() as fh:
                return pd.read_csv(fh, dtype=str, encoding=encoding, **kwargs)
        return pd.read_csv(source, dtype=str, encoding=encoding, **kwargs)

    try:
        return read("utf-8-sig")
    except UnicodeDecodeError:
        return read("latin-1")


def pad_code(series: pd.Series, width: int, column: str, path: Path, first_row: int = 2
             ) -> tuple[pd.Series, bool]:
    """Zero-pad a column of INEGI codes that may have been stored as numbers.

    Parameters
    ----------
    series : pandas.Series
        Codes as read from a table or boundary file (text, integers, or floats such as ``1001.0``).
    width : int
        Digits of the code (2 for ``CVE_ENT``, 3 for ``CVE_MUN``, 5 for ``CVEGEO``).
    column : str
        Column name, for the error message.
    path : Path
        Source file, for the error message.
    first_row : int, default 2
        Row number the error message gives the first value: 2 for a table (its header is
        line 1), 1 for the features of a boundary file.

    Returns
    -------
    (pandas.Series, bool)
        The zero-padded text codes and whether any code needed padding.

    Raises
    ------
    InputError
        A value that is not a code of at most ``width`` digits; names the file, column and
        row (see ``first_row``).
    """
    text = series.astype(str).str.strip().str.replace(r"\.0$", "", regex=True)
    bad = ~text.str.fullmatch(r"\d{1,%d}" % width)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"expected a {width}-digit code, found {series.iloc[row]!r}",
                         file=path, column=column, row=row + first_row)
    return text.str.zfill(width), bool((text.str.len() < width).any())
