"""One JSON-cleaning function for every output: model cards, comparisons, API answers.

:func:`jsonable` turns what the library computes (pandas tables, numpy scalars and arrays,
dataclasses, ``NaN`` and ``pd.NA``) into plain JSON values. Missing and non-finite numbers
become ``None``, because the store writes JSON with ``allow_nan=False`` and browsers reject
``NaN``.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import PurePath

import numpy as np
import pandas as pd


def jsonable(obj):
    """Return a JSON-ready copy of ``obj``.

    Parameters
    ----------
    obj : object
        Scalars (Python or numpy), ``None``/``NaN``/``pd.NA``, dicts, lists, tuples, numpy
        arrays, pandas Series (a dict by index label) and DataFrames (a list of row dicts;
        a ``geometry`` column is dropped; a non-default index, such as ``cvegeo``, becomes a
        column), dataclass instances (a dict by field) and paths (text).

    Returns
    -------
    object
        ``None``, bool, int, float (finite), str, list or dict (with str keys). Objects of
        other types are returned unchanged (``json.dumps`` will then say which).
    """
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, float):  # includes numpy.float64
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, (bool, int)):
        return obj
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if obj is pd.NA or obj is pd.NaT:
        return None
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, pd.DataFrame):
        frame = obj.drop(columns=["geometry"], errors="ignore")
        if not isinstance(frame.index, pd.RangeIndex):
            frame = frame.reset_index()
        return [jsonable(r) for r in frame.to_dict("records")]
    if isinstance(obj, pd.Series):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, PurePath):
        return str(obj)
    return obj
