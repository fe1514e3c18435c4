"""Exports of an edition (and of any table) to CSV, XLSX, GeoJSON, GeoPackage and Shapefile.

A registry keyed by a normalised format string (``"CSV"``, ``".csv"`` and ``"csv"`` are the
same); an unknown format raises :class:`~riskmap.errors.BadParameter` listing the valid ones.
Every format carries the edition's provenance (sources, synthetic flag, classification rule,
attribution):

========  =================================================================================
csv       the output row (ROW_COLUMNS, in order) + ``synthetic``, ``rule``, ``source``
          columns; UTF-8 with BOM so Excel in Spanish shows accents
xlsx      sheet ``municipios`` (same table) + sheet ``metadatos`` (provenance, data dictionary)
geojson   FeatureCollection with a top-level ``metadata`` member
gpkg      layer ``municipios`` + non-spatial table ``metadatos``
shp       zip of .shp/.shx/.dbf/.prj/.cpg (UTF-8) + ``LEEME.txt`` (provenance and the
          mapping of the 10-character field names)
========  =================================================================================

Spreadsheet cells are data, never formulas: text starting with ``= + - @`` (or a tab or
carriage return) is prefixed with ``'`` in CSV and XLSX.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import geopandas as gpd
import pandas as pd
import pyogrio

from .edition import LEVELS, ROW_COLUMNS
from ..choices import match_choice, match_state
from ..errors import BadParameter
from ..fileio import atomic_path, write_gpkg
from ..provenance import provenance, provenance_text, source_text

#: Data dictionary of the exported columns (Spanish first, as the service).
DICTIONARY = {
    "edition": "Edición (encuesta) de la estimación / survey edition",
    "cvegeo": "Clave geoestadística municipal de INEGI (5 dígitos) / municipal code",
    "cve_ent": "Clave de la entidad federativa (2 dígitos) / state code",
    "nom_ent": "Entidad federativa / state",
    "nom_mun": "Municipio / municipality",
    "children": "Niñas, niños y adolescentes de 5 a 17 años (censo, ponderado) / children 5-17",
    "probability": "Probabilidad estimada de trabajo infantil / estimated probability",
    "ci_low": "Límite inferior del intervalo de confianza al 95 % / 95% CI lower bound",
    "ci_high": "Límite superior del intervalo de confianza al 95 % / 95% CI upper bound",
    "level": "Nivel de riesgo: alto, medio, bajo, sin_informacion / risk level",
    "level_rule": "Regla que asignó el nivel (mirti, significance, cortes:A,B; publicado en "
                  "ediciones importadas) / level rule",
    "level_certainty": "Certeza del nivel: probabilidad de que la probabilidad verdadera esté "
                       "en la banda de su nivel (menos de 0.8: incierto) / level certainty",
    "expected_child_labour": "Número esperado de NNA en trabajo infantil / expected count",
    "rank_national": "Lugar nacional por probabilidad (1 = mayor) / national rank",
    "rank_state": "Lugar dentro de la entidad por probabilidad / rank within state",
    "top_factors": "Principales factores asociados / main associated factors",
    "synthetic": "Datos sintéticos de demostración (true/false) / synthetic data",
    "rule": "Regla de clasificación / classification rule",
    "source": "Fuente y atribución / source and attribution",
}

#: Shapefile (DBF) field names are limited to 10 characters.
SHP_FIELDS = {
    "edition": "edition", "cvegeo": "cvegeo", "cve_ent": "cve_ent", "nom_ent": "nom_ent",
    "nom_mun": "nom_mun", "children": "children", "probability": "prob",
    "ci_low": "ci_low", "ci_high": "ci_high", "level": "level", "level_rule": "level_rule",
    "level_certainty": "level_cert",
    "expected_child_labour": "exp_cl", "rank_national": "rank_nat",
    "rank_state": "rank_state", "top_factors": "top_fact", "synthetic": "synthetic",
}

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_INT_COLUMNS = ("rank_national", "rank_state")
# Sums of expansion weights carry float noise (213654.00000000268); a tenth of a child and a
# millionth of probability are below any precision the estimates have.
_DECIMALS = {"children": 1, "expected_child_labour": 1, "probability": 6, "ci_low": 6,
             "ci_high": 6, "level_certainty": 4}


@dataclass(frozen=True)
class Format:
    name: str
    extension: str
    mimetype: str
    writer: Callable


# -- formats, filters, spreadsheet safety -------------------------------------------------
def normalise_format(fmt) -> str:
    """Return the registry key for ``fmt``; :class:`BadParameter` lists the valid ones."""
    key = str(fmt or "").strip().lower().lstrip(".")
    key = _ALIASES.get(key, key)
    if key not in FORMATS:
        raise BadParameter("format", fmt, list(FORMATS))
    return key


def _defuse(value):
    """Prefix text a spreadsheet would run as a formula with ``'`` (it stays data)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def defuse_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``df`` whose text columns cannot be read as spreadsheet formulas."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(_defuse)
    return out


def filter_rows(edition, state=None, level=None) -> gpd.GeoDataFrame:
    """The edition's rows, optionally restricted to one state and/or one level.

    Parameters
    ----------
    edition : riskmap.publish.edition.Edition
    state : str, optional
        2-digit state code (``"07"``; ``"7"`` is accepted as ``"07"``) or the state's name
        (``"Chiapas"``; case and accents are ignored).
    level : str, optional
        One of :data:`~riskmap.publish.edition.LEVELS` (case and accents are ignored).

    Returns
    -------
    geopandas.GeoDataFrame
        A copy, in the edition's row order.

    Raises
    ------
    BadParameter
        Unknown or ambiguous state (lists the edition's states) or level (lists LEVELS).
    """
    state, level = resolve_filters(edition, state, level)
    rows = edition.rows
    mask = pd.Series(True, index=rows.index)
    if state is not None:
        mask &= rows["cve_ent"].astype(str) == state
    if level is not None:
        mask &= rows["level"] == level
    return rows.loc[mask].copy()


def resolve_filters(edition, state=None, level=None) -> tuple[str | None, str | None]:
    """The canonical ``(state code, level)`` of the filters of :func:`filter_rows`.

    Blank filters become ``None``; ``"Chiapas"`` becomes ``"07"`` and ``"Alto"`` ``"alto"``
    (so file names and notes show the canonical values).
    """
    rows = edition.rows
    if state is not None and str(state).strip() != "":
        names = (rows[["cve_ent", "nom_ent"]].astype(str).drop_duplicates("cve_ent")
                 .sort_values("cve_ent"))
        state = match_state("state", state, dict(names.itertuples(index=False, name=None)))
    else:
        state = None
    if level is not None and str(level).strip() != "":
        level = match_choice("level", level, LEVELS)
    else:
        level = None
    return state, level


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    """Ranks as nullable integers (a GeoPackage round trip returns them as floats); counts
    and probabilities rounded to the precision they have."""
    for col in _INT_COLUMNS:
        if col in df.columns:
            df[col] = pd.to_numeric(df[col]).round().astype("Int64")
    for col, decimals in _DECIMALS.items():
        if col in df.columns:
            df[col] = pd.to_numeric(df[col]).round(decimals)
    return df


def _provenance_columns(edition) -> dict:
    """The constant ``synthetic``, ``rule`` and ``source`` columns of the tabular exports."""
    info = provenance(edition.card)
    return {"synthetic": info["synthetic"], "rule": info["rule_text"]["es"],
            "source": source_text(edition.card, "es")}


def _rows_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Output row columns in order (no geometry), typed and rounded."""
    return _typed(pd.DataFrame(rows[list(ROW_COLUMNS)]).reset_index(drop=True))


def _table(edition, rows: pd.DataFrame) -> pd.DataFrame:
    """Output row columns in order plus the provenance columns (no geometry)."""
    return _rows_table(rows).assign(**_provenance_columns(edition))


def _metadata(edition, state=None, level=None, n_rows=None) -> dict:
    info = provenance(edition.card)
    info["filters"] = {"state": state, "level": level}
    info["n_rows"] = n_rows
    info["columns"] = {c: DICTIONARY[c] for c in ROW_COLUMNS}
    return info


# -- generic tables --------------------------------------------------------------------------
def export_table(df: pd.DataFrame, fmt: str, path_or_buffer, metadata: dict | None = None, *,
                 sheet: str = "datos", dictionary: dict | None = None) -> None:
    """Write a plain table (e.g. a targeting worklist) as CSV or XLSX with its metadata.

    Parameters
    ----------
    df : DataFrame
    fmt : {"csv", "xlsx"}
    path_or_buffer : str, Path or binary file object
    metadata : dict, optional
        CSV: each item becomes a trailing constant column (lists/dicts as JSON text), so
        the file stays one clean table. XLSX: rows ``campo, valor`` of sheet ``metadatos``.
    sheet : str
        Name of the data sheet (XLSX).
    dictionary : dict, optional
        Column -> description, appended to the ``metadatos`` sheet (XLSX).

    Raises
    ------
    BadParameter
        For a format other than csv or xlsx.
    """
    key = normalise_format(fmt)
    if key not in ("csv", "xlsx"):
        raise BadParameter("format", fmt, ["csv", "xlsx"],
                           message=f"tables export only to csv or xlsx, not {fmt!r}")
    metadata = metadata or {}
    if key == "csv":
        out = df.copy()
        for k, v in metadata.items():
            out[k] = json.dumps(v, ensure_ascii=False, default=str) if isinstance(
                v, (dict, list, tuple)) else v
        text = defuse_frame(out).to_csv(index=False)
        data = ("\ufeff" + text).encode("utf-8")
        if hasattr(path_or_buffer, "write"):
            path_or_buffer.write(data)
        else:
            Path(path_or_buffer).write_bytes(data)
        return
    meta_rows = [(str(k), v if isinstance(v, (str, int, float, bool)) or v is None
                  else json.dumps(v, ensure_ascii=False, default=str))
                 for k, v in metadata.items()]
    if dictionary:
        meta_rows += [("", "")] + [("columna: " + c, d) for c, d in dictionary.items()]
    meta = pd.DataFrame(meta_rows, columns=["campo", "valor"])
    with pd.ExcelWriter(path_or_buffer, engine="openpyxl") as writer:
        defuse_frame(df).to_excel(writer, sheet_name=sheet, index=False)
        defuse_frame(meta).to_excel(writer, sheet_name="metadatos", index=False)


# -- writers ---------------------------------------------------------------------------------
def _write_csv(edition, rows, path, state, level):
    export_table(_rows_table(rows), "csv", path, _provenance_columns(edition))


def _write_xlsx(edition, rows, path, state, level):
    info = provenance(edition.card)
    meta = {
        "edición": info["edition"], "fuentes": "; ".join(info["sources"]),
        "datos sintéticos": "sí" if info["synthetic"] else "no",
        "regla de clasificación": info["rule_text"]["es"],
        "classification rule": info["rule_text"]["en"],
        "atribución": info["attribution"]["es"], "attribution": info["attribution"]["en"],
        "creado": info["created"] or "", "filtro entidad": state or "",
        "filtro nivel": level or "", "municipios": len(rows),
    }
    export_table(_table(edition, rows), "xlsx", path, meta, sheet="municipios",
                 dictionary=DICTIONARY)


def _write_geojson(edition, rows, path, state, level):
    gdf = _geo(rows, list(ROW_COLUMNS))
    doc = json.loads(gdf.to_json(na="null", drop_id=True))
    doc["metadata"] = _metadata(edition, state, level, len(rows))
    Path(path).write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")


def _meta_frame(edition, state, level, n_rows) -> pd.DataFrame:
    info = _metadata(edition, state, level, n_rows)
    items = [(k, v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str))
             for k, v in info.items()]
    return pd.DataFrame(items, columns=["clave", "valor"])


def _geo(rows, columns) -> gpd.GeoDataFrame:
    gdf = gpd.GeoDataFrame(_typed(pd.DataFrame(rows[columns]).reset_index(drop=True)),
                           geometry=rows.geometry.reset_index(drop=True), crs=rows.crs)
    return gdf.to_crs(4326) if gdf.crs is not None else gdf.set_crs(4326)


def _write_gpkg(edition, rows, path, state, level):
    gdf = _geo(rows, list(ROW_COLUMNS))
    gdf["synthetic"] = edition.synthetic
    # One declared type whatever the filter keeps (islands are multipart; an empty
    # selection would otherwise be a layer of unknown geometry type).
    write_gpkg(gdf, path, layer="municipios", promote_to_multi=True,
               geometry_type="MultiPolygon")
    write_gpkg(_meta_frame(edition, state, level, len(rows)), path, layer="metadatos")


def _write_shp(edition, rows, path, state, level):
    gdf = _geo(rows, list(ROW_COLUMNS))
    gdf["synthetic"] = edition.synthetic
    gdf = gdf.rename(columns=SHP_FIELDS)
    with tempfile.TemporaryDirectory() as tmp:
        shp = Path(tmp) / "municipios.shp"
        pyogrio.write_dataframe(gdf, shp, driver="ESRI Shapefile", encoding="UTF-8",
                                promote_to_multi=True, geometry_type="MultiPolygon")
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for part in sorted(Path(tmp).iterdir()):
                zf.write(part, arcname=part.name)
            zf.writestr("LEEME.txt", _readme(edition, state, level, len(rows)))


def _readme(edition, state, level, n_rows) -> str:
    lines = ["riskmap — riesgo de trabajo infantil por municipio / child labour risk by "
             "municipality", "", provenance_text(edition.card, "es"), "",
             provenance_text(edition.card, "en"), "",
             f"Filtros / filters: entidad={state or '-'}, nivel={level or '-'}; "
             f"municipios / rows: {n_rows}", "",
             "Campos (los nombres del Shapefile tienen como máximo 10 caracteres) / "
             "fields (Shapefile names are at most 10 characters):"]
    for full, short in SHP_FIELDS.items():
        lines.append(f"  {short:<10} = {full:<22} {DICTIONARY.get(full, '')}")
    lines += ["", "Codificación de texto / text encoding: UTF-8 (municipios.cpg). "
              "Sistema de referencia / CRS: EPSG:4326.", ""]
    return "\n".join(lines)


FORMATS: dict[str, Format] = {
    "csv": Format("csv", "csv", "text/csv; charset=utf-8", _write_csv),
    "xlsx": Format("xlsx", "xlsx",
                   "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                   _write_xlsx),
    "geojson": Format("geojson", "geojson", "application/geo+json", _write_geojson),
    "gpkg": Format("gpkg", "gpkg", "application/geopackage+sqlite3", _write_gpkg),
    "shp": Format("shp", "zip", "application/zip", _write_shp),
}
_ALIASES = {"excel": "xlsx", "geopackage": "gpkg", "shapefile": "shp", "zip": "shp",
            "shp.zip": "shp"}


# -- public entry points ---------------------------------------------------------------------
def export_edition(edition, fmt: str, path, state=None, level=None) -> Path:
    """Write ``edition`` (optionally filtered) to ``path`` in format ``fmt``, atomically.

    Parameters
    ----------
    edition : riskmap.publish.edition.Edition
    fmt : str
        csv, xlsx, geojson, gpkg or shp (normalised: case, leading dot, aliases).
    path : str or Path
        Output file (for ``shp`` a ``.zip``).
    state, level : str, optional
        Filters, as in :func:`filter_rows`.

    Returns
    -------
    Path

    Raises
    ------
    BadParameter
        Unknown format, state or level; a Shapefile export not named ``.zip``.
    """
    key = normalise_format(fmt)
    path = Path(path)
    if key == "shp" and path.suffix.lower() != ".zip":
        # a zip named .shp would not open in a GIS as a Shapefile, nor look like a zip
        raise BadParameter("output", str(path), message=f"a Shapefile export is a zip of "
                           f"several files: name the output .zip, not {path.name!r}")
    state, level = resolve_filters(edition, state, level)
    rows = filter_rows(edition, state, level)
    with atomic_path(path) as tmp:
        FORMATS[key].writer(edition, rows, tmp, state, level)
    return path


def export_filename(edition, fmt: str, state=None, level=None) -> str:
    """Download file name, e.g. ``riskmap_2023_07_alto.csv``."""
    key = normalise_format(fmt)
    state = str(state).strip().zfill(2) if state and str(state).strip().isdigit() else state
    parts = ["riskmap", str(edition.name)] + [str(p) for p in (state, level) if p]
    return "_".join(parts) + "." + FORMATS[key].extension


def export_bytes(edition, fmt: str, state=None, level=None) -> tuple[bytes, str, str]:
    """The export as bytes for a web download.

    Returns
    -------
    (bytes, mimetype, filename)
    """
    key = normalise_format(fmt)
    state, level = resolve_filters(edition, state, level)
    rows = filter_rows(edition, state, level)
    name = export_filename(edition, key, state, level)
    if key in ("csv", "xlsx"):
        buf = io.BytesIO()
        FORMATS[key].writer(edition, rows, buf, state, level)
        return buf.getvalue(), FORMATS[key].mimetype, name
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / name
        FORMATS[key].writer(edition, rows, target, state, level)
        return target.read_bytes(), FORMATS[key].mimetype, name
