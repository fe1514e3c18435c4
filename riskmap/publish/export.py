"""Exports of an edition (and of any table) to CSV, XLSX, GeoJSON, GeoPackage and Shapefile.

A registry keyed by a normalised format string (``"CSV"``, ``".csv"`` and ``"csv"`` are the
same); an unknown format raises :class:`~riskmap.errors.BadParameter` listing the valid ones.
Every format carries the edition's provenance (sources, synthetic flag, classification rule,
attribution):

========  =================================================================================
csv       the output row (ROW_COLUMNS, in order) + ``synthetic``, ``rule``, ``source``
          columns; UTF-8 with BOM so Excel in Spanish shows accents
xlsx      sheet ``municipios`` (same table, Spanish headers, or English ones with
          ``lang="en"``; percentages, frozen header, filters) + ``metadatos`` (edition,
          vintage, rule, sources, attribution) + ``diccionario`` (machine names)
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

#: Column headers of the spreadsheets (es, en); the data dictionary keeps the machine names.
HEADERS = {
    "edition": ("Edición", "Edition"), "cvegeo": ("Clave municipal", "Municipal code"),
    "cve_ent": ("Clave de entidad", "State code"), "nom_ent": ("Entidad", "State"),
    "nom_mun": ("Municipio", "Municipality"),
    "children": ("Niñas, niños y adolescentes 5-17", "Children 5-17"),
    "probability": ("Probabilidad", "Probability"),
    "ci_low": ("IC 95 % inferior", "95% CI low"), "ci_high": ("IC 95 % superior", "95% CI high"),
    "level": ("Nivel de riesgo", "Risk level"),
    "level_rule": ("Regla del nivel", "Level rule"),
    "level_certainty": ("Certeza del nivel", "Level certainty"),
    "expected_child_labour": ("Esperados en trabajo infantil", "Expected in child labour"),
    "rank_national": ("Lugar nacional", "National rank"),
    "rank_state": ("Lugar en la entidad", "Rank in state"),
    "top_factors": ("Principales factores", "Main factors"),
    "synthetic": ("Datos sintéticos", "Synthetic data"),
    "rule": ("Regla de clasificación", "Classification rule"),
    "source": ("Fuente y atribución", "Source and attribution"),
}

#: Number formats of spreadsheet columns (the values stay proportions and plain numbers).
_XLSX_FORMATS = {"probability": "0.0%", "ci_low": "0.0%", "ci_high": "0.0%",
                 "level_certainty": "0%", "children": "#,##0", "expected_child_labour": "#,##0",
                 "rank_national": "0", "rank_state": "0"}

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


def _provenance_columns(edition, lang: str = "es") -> dict:
    """The constant ``synthetic``, ``rule`` and ``source`` columns of the tabular exports."""
    info = provenance(edition.card)
    return {"synthetic": info["synthetic"], "rule": info["rule_text"][lang],
            "source": source_text(edition.card, lang)}


def _rows_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Output row columns in order (no geometry), typed and rounded."""
    return _typed(pd.DataFrame(rows[list(ROW_COLUMNS)]).reset_index(drop=True))


def _table(edition, rows: pd.DataFrame, lang: str = "es") -> pd.DataFrame:
    """Output row columns in order plus the provenance columns (no geometry)."""
    return _rows_table(rows).assign(**_provenance_columns(edition, lang))


def _metadata(edition, state=None, level=None, n_rows=None) -> dict:
    info = provenance(edition.card)
    info["filters"] = {"state": state, "level": level}
    info["n_rows"] = n_rows
    info["columns"] = {c: DICTIONARY[c] for c in ROW_COLUMNS}
    return info


# -- generic tables --------------------------------------------------------------------------
def export_table(df: pd.DataFrame, fmt: str, path_or_buffer, metadata: dict | None = None, *,
                 sheet: str = "datos", dictionary: dict | None = None, lang: str = "es",
                 headers: dict | None = None, formats: dict | None = None) -> None:
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
    lang : {"es", "en"}
        Language of the XLSX headers and metadata labels (CSV keeps the machine names).
    headers : dict, optional
        Column -> (es, en) header of the XLSX data sheet; default :data:`HEADERS`
        (columns without one keep their machine name).
    formats : dict, optional
        Column -> Excel number format; default percentages for probabilities and
        thousands separators for counts.

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
    en = lang == "en"
    headers = HEADERS if headers is None else headers
    shown = {c: headers[c][1 if en else 0] if c in headers else c for c in df.columns}
    meta_rows = [(str(k), v if isinstance(v, (str, int, float, bool)) or v is None
                  else json.dumps(v, ensure_ascii=False, default=str))
                 for k, v in metadata.items()]
    meta = pd.DataFrame(meta_rows, columns=["field", "value"] if en else ["campo", "valor"])
    words = (("column", "header", "description") if en else
             ("columna", "encabezado", "descripción"))
    dictionary = {c: (dictionary or {}).get(c, "") for c in df.columns}
    terms = pd.DataFrame([(c, shown[c], d) for c, d in dictionary.items()], columns=words)
    data_sheet = sheet
    with pd.ExcelWriter(path_or_buffer, engine="openpyxl") as writer:
        defuse_frame(df).rename(columns=shown).to_excel(writer, sheet_name=data_sheet,
                                                        index=False)
        defuse_frame(meta).to_excel(writer, sheet_name="metadata" if en else "metadatos",
                                    index=False)
        defuse_frame(terms).to_excel(writer, sheet_name="dictionary" if en else "diccionario",
                                     index=False)
        _style_sheets(writer, data_sheet, list(df.columns),
                      _XLSX_FORMATS if formats is None else formats)


def _style_sheets(writer, data_sheet: str, columns: list[str], formats: dict) -> None:
    """Frozen header row, filters, number formats and readable widths on every sheet."""
    from openpyxl.utils import get_column_letter

    for name, ws in writer.sheets.items():
        ws.freeze_panes = "A2"
        if ws.max_row > 1:
            ws.auto_filter.ref = ws.dimensions
        for idx, cells in enumerate(ws.iter_cols(min_row=1, max_row=min(ws.max_row, 200)), 1):
            longest = max((len(str(c.value)) for c in cells if c.value is not None), default=8)
            ws.column_dimensions[get_column_letter(idx)].width = min(max(longest + 2, 8), 60)
        if name != data_sheet:
            continue
        for idx, col in enumerate(columns, 1):
            fmt = formats.get(col)
            if not fmt:
                continue
            for (cell,) in ws.iter_rows(min_row=2, min_col=idx, max_col=idx):
                cell.number_format = fmt


# -- writers ---------------------------------------------------------------------------------
def _write_csv(edition, rows, path, state, level):
    export_table(_rows_table(rows), "csv", path, _provenance_columns(edition))


def _write_xlsx(edition, rows, path, state, level, lang="es"):
    info = provenance(edition.card)
    en = lang == "en"
    values = (info["edition"], info.get("vintage") or "", "; ".join(info["sources"]),
              ("yes" if en else "sí") if info["synthetic"] else "no",
              info["rule_text"][lang], info["attribution"][lang], info["created"] or "",
              state or "", level or "", len(rows))
    labels = (("edition", "geography vintage", "sources", "synthetic data",
               "classification rule", "attribution", "created", "state filter",
               "level filter", "municipalities") if en else
              ("edición", "geografía (vintage)", "fuentes", "datos sintéticos",
               "regla de clasificación", "atribución", "creado", "filtro entidad",
               "filtro nivel", "municipios"))
    export_table(_table(edition, rows, lang), "xlsx", path, dict(zip(labels, values)),
                 sheet="municipalities" if en else "municipios", dictionary=DICTIONARY,
                 lang=lang)


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
def export_edition(edition, fmt: str, path, state=None, level=None, lang: str = "es") -> Path:
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
    lang : {"es", "en"}
        Language of the XLSX headers and metadata (other formats keep machine names).

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
        _write(key, edition, rows, tmp, state, level, lang)
    return path


def _write(key, edition, rows, target, state, level, lang):
    if key == "xlsx":
        _write_xlsx(edition, rows, target, state, level, lang)
    else:
        FORMATS[key].writer(edition, rows, target, state, level)


def export_filename(edition, fmt: str, state=None, level=None) -> str:
    """Download file name, e.g. ``riskmap_2023_07_alto.csv``."""
    key = normalise_format(fmt)
    state = str(state).strip().zfill(2) if state and str(state).strip().isdigit() else state
    parts = ["riskmap", str(edition.name)] + [str(p) for p in (state, level) if p]
    return "_".join(parts) + "." + FORMATS[key].extension


def export_bytes(edition, fmt: str, state=None, level=None,
                 lang: str = "es") -> tuple[bytes, str, str]:
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
        _write(key, edition, rows, buf, state, level, lang)
        return buf.getvalue(), FORMATS[key].mimetype, name
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / name
        _write(key, edition, rows, target, state, level, lang)
        return target.read_bytes(), FORMATS[key].mimetype, name
