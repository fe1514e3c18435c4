"""INEGI geographic codes read from tables: zero-padding with row-precise errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError


def pad_code(series: pd.Series, width: int, column: str, path: Path
             ) -> tuple[pd.Series, bool]:
    """Zero-pad a column of INEGI codes that may have been stored as numbers.

    Parameters
    ----------
    series : pandas.Series
        Codes as read from a CSV (text, integers, or floats such as ``1001.0``).
    width : int
        Digits of the code (2 for ``CVE_ENT``, 3 for ``CVE_MUN``, 5 for ``CVEGEO``).
    column : str
        Column name, for the error message.
    path : Path
        Source file, for the error message.

    Returns
    -------
    (pandas.Series, bool)
        The zero-padded text codes and whether any code needed padding.

    Raises
    ------
    InputError
        A value that is not a code of at most ``width`` digits; names the file, column and
        file line (header = line 1).
    """
    text = series.astype(str).str.strip().str.replace(r"\.0$", "", regex=True)
    bad = ~text.str.fullmatch(r"\d{1,%d}" % width)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"expected a {width}-digit code, found {series.iloc[row]!r}",
                         file=path, column=column, row=row + 2)
    return text.str.zfill(width), bool((text.str.len() < width).any())
