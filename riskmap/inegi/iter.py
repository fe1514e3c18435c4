"""Municipal census tables in INEGI's ITER layout (Principales resultados por localidad).

Two layouts are accepted:

* INEGI's own ITER file (``ITER_NALCSV20.csv`` or a state's ``ITER_<NN>CSV20.csv``): one row per
  locality plus total rows; columns ``ENTIDAD, NOM_ENT, MUN, NOM_MUN, LOC, NOM_LOC, POBTOT...``.
  Municipal totals are the rows with ``LOC == 0`` and ``MUN != 0``; the share of the population
  in localities under 2,500 inhabitants (``pct_rural_lt2500``) is computed from the locality rows.
* A municipal table already keyed by ``cvegeo`` (or ``cve_ent`` + ``cve_mun``), with raw ITER
  column names (e.g. ``../shared/data/mx/censo2020_municipal.csv``).

INEGI writes ``*`` for values it suppresses (confidentiality) and ``N/D`` for values not
available: both become NaN. Derived shares are added when their raw ingredients are present.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..fileio import pad_code, read_csv_text

_NA = ["*", "N/D", "n/d", "ND", ""]
_TEXT = {"cvegeo", "cve_ent", "cve_mun", "nom_ent", "nom_mun", "NOM_ENT", "NOM_MUN", "NOM_LOC"}


def read_iter(path) -> pd.DataFrame:
    """Read a municipal ITER table.

    Parameters
    ----------
    path : str or Path
        CSV (UTF-8 with or without BOM; latin-1 accepted) in either layout described above,
        or INEGI's zip holding it (``iter_00_cpv2020_csv.zip``).

    Returns
    -------
    pandas.DataFrame
        One row per municipality: ``cvegeo, cve_ent, cve_mun, nom_ent, nom_mun``, the raw
        numeric columns (float, NaN where suppressed), and derived shares in percent
        (``pob_5_17, pct_6_14_no_asiste, pct_15_17_no_asiste, pct_hli_3ymas,
        pct_rural_lt2500``) when the table does not already have them.

    Raises
    ------
    InputError
        Unreadable file, no code columns, malformed or duplicated codes.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("census table not found", file=path)
    raw = _read_csv(path)
    upper = {c.upper(): c for c in raw.columns}
    if "ENTIDAD" in upper and "LOC" in upper and "MUN" in upper:
        df = _from_localities(raw, upper, path)
    elif "CVEGEO" in upper or ("CVE_ENT" in upper and "CVE_MUN" in upper):
        df = _from_municipal(raw, upper, path)
    else:
        raise InputError("not an ITER table: expected ENTIDAD, MUN, LOC (INEGI layout) or "
                         "cvegeo (municipal layout); found "
                         + ", ".join(list(raw.columns)[:20]), file=path)
    dup = df["cvegeo"][df["cvegeo"].duplicated()].unique()
    if len(dup):
        raise InputError("municipal code(s) repeated: " + ", ".join(dup[:10]), file=path)
    return _derive(df).reset_index(drop=True)


def _zip_member(path: Path) -> str:
    """The ITER CSV inside INEGI's zip (``conjunto_de_datos/conjunto_de_datos_iter_00CSV20.csv``)."""
    import zipfile

    try:
        names = zipfile.ZipFile(path).namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"cannot open the zip archive ({exc})", file=path) from None
    csvs = [n for n in names if n.lower().endswith(".csv")]
    # INEGI zips also carry a data dictionary and metadata as CSV: skip them
    data = [n for n in csvs if not any(w in n.lower() for w in ("diccionario", "metadato"))]
    iters = [n for n in data if "iter" in Path(n).name.lower()] or data
    chosen = iters if iters else csvs
    if len(chosen) != 1:
        raise InputError("expected one ITER CSV in the zip; found " + (", ".join(csvs) or "none"),
                         file=path)
    return chosen[0]


def _read_csv(path: Path) -> pd.DataFrame:
    if path.suffix.lower() == ".zip":
        import zipfile

        member = _zip_member(path)
        return read_csv_text(lambda: zipfile.ZipFile(path).open(member), keep_default_na=False)
    try:
        return read_csv_text(path, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"cannot read the table ({exc})", file=path) from None


def _numeric(df: pd.DataFrame, skip) -> pd.DataFrame:
    out = df.copy()
    for col in out.columns:
        if col in skip:
            continue
        values = out[col].str.strip().replace(_NA, np.nan)
        num = pd.to_numeric(values, errors="coerce")
        # keep text columns (names, flags) as they are; numeric ones as float
        if num.notna().sum() >= values.notna().sum() * 0.98:
            out[col] = num.astype(float)
    return out


def _from_municipal(raw, upper, path) -> pd.DataFrame:
    df = raw.copy()
    if "CVEGEO" in upper:
        cvegeo = pad_code(df[upper["CVEGEO"]], 5, upper["CVEGEO"], path)[0]
    else:
        cvegeo = (pad_code(df[upper["CVE_ENT"]], 2, upper["CVE_ENT"], path)[0]
                  + pad_code(df[upper["CVE_MUN"]], 3, upper["CVE_MUN"], path)[0])
    df = df.drop(columns=[upper[c] for c in ("CVEGEO", "CVE_ENT", "CVE_MUN") if c in upper])
    df.insert(0, "cvegeo", cvegeo)
    df.insert(1, "cve_ent", cvegeo.str[:2])
    df.insert(2, "cve_mun", cvegeo.str[2:])
    for target, cands in (("nom_ent", ("NOM_ENT",)), ("nom_mun", ("NOM_MUN", "NOMGEO"))):
        src = next((upper[c] for c in cands if c in upper), None)
        if src is not None and src != target:
            df = df.rename(columns={src: target})
        elif src is None:
            df[target] = ""
    return _numeric(df, _TEXT)


def _from_localities(raw, upper, path) -> pd.DataFrame:
    ent = pad_code(raw[upper["ENTIDAD"]], 2, upper["ENTIDAD"], path)[0]
    mun = pad_code(raw[upper["MUN"]], 3, upper["MUN"], path)[0]
    loc = pd.to_numeric(raw[upper["LOC"]], errors="coerce")
    df = _numeric(raw, {upper.get("NOM_ENT"), upper.get("NOM_MUN"), upper.get("NOM_LOC")})
    is_total = (loc == 0) & (mun != "000") & (ent != "00")
    # INEGI also writes summary rows for localities of one and two dwellings (LOC 9998/9999);
    # they are localities too (all tiny), so they count as rural below.
    is_loc = (loc > 0) & (mun != "000")
    out = df[is_total].copy()
    out.insert(0, "cvegeo", (ent + mun)[is_total].to_numpy())
    out.insert(1, "cve_ent", ent[is_total].to_numpy())
    out.insert(2, "cve_mun", mun[is_total].to_numpy())
    out = out.rename(columns={upper.get("NOM_ENT", "NOM_ENT"): "nom_ent",
                              upper.get("NOM_MUN", "NOM_MUN"): "nom_mun"})
    out = out.drop(columns=[upper[c] for c in ("ENTIDAD", "MUN", "LOC", "NOM_LOC", "LONGITUD",
                                                "LATITUD", "ALTITUD") if c in upper],
                   errors="ignore")
    if "POBTOT" in upper and is_loc.any():
        pop = df[upper["POBTOT"]].astype(float)
        codes = (ent + mun)[is_loc]
        small = pop[is_loc].where(pop[is_loc] < 2500, 0.0)
        rural = small.groupby(codes.to_numpy()).sum()
        total = pop[is_loc].groupby(codes.to_numpy()).sum()
        share = (100 * rural / total.replace(0, np.nan))
        out["pob_loc_lt2500"] = out["cvegeo"].map(rural).to_numpy()
        out["pct_rural_lt2500"] = out["cvegeo"].map(share).to_numpy()
    if out.empty:
        raise InputError("no municipal total rows (LOC = 0) in the ITER table", file=path)
    return out


def _pct(num, den):
    """100 * num / den, NaN where the denominator is not positive."""
    return 100.0 * num / den.where(den > 0)


def _derive(df: pd.DataFrame) -> pd.DataFrame:
    """Add the derived shares riskmap uses when the raw ITER columns allow it."""
    have = set(df.columns)

    def col(name):
        return df[name].astype(float)

    if "pob_5_17" not in have and {"P_6A11", "P_12A14", "P_15A17", "P_3A5"} <= have:
        # ITER has no 5-year-old count: one third of the 3-5 group stands for age 5.
        df["pob_5_17"] = col("P_6A11") + col("P_12A14") + col("P_15A17") + col("P_3A5") / 3
    if "pct_6_14_no_asiste" not in have and {"P6A11_NOA", "P12A14NOA", "P_6A11",
                                              "P_12A14"} <= have:
        df["pct_6_14_no_asiste"] = _pct(col("P6A11_NOA") + col("P12A14NOA"),
                                        col("P_6A11") + col("P_12A14"))
    if "pct_15_17_no_asiste" not in have and {"P15A17A", "P_15A17"} <= have:
        df["pct_15_17_no_asiste"] = _pct(col("P_15A17") - col("P15A17A"), col("P_15A17"))
    if "pct_hli_3ymas" not in have and {"P3YM_HLI", "POBTOT", "P_0A2"} <= have:
        df["pct_hli_3ymas"] = _pct(col("P3YM_HLI"), col("POBTOT") - col("P_0A2"))
    if "pct_rural_lt2500" not in have and "pob_loc_lt2500" in have and "POBTOT" in have:
        df["pct_rural_lt2500"] = _pct(col("pob_loc_lt2500"), col("POBTOT"))
    if "pct_sin_afiliacion" not in have and {"PSINDER", "POBTOT"} <= have:
        df["pct_sin_afiliacion"] = _pct(col("PSINDER"), col("POBTOT"))
    missing = [c for c in ("pob_5_17", "pct_6_14_no_asiste", "pct_hli_3ymas")
               if c not in df.columns]
    if missing:
        warnings.warn("census table lacks " + ", ".join(missing) + " and their raw ITER "
                      "ingredients; simulation falls back on national values", stacklevel=3)
    return df
