"""Small inputs with known truth, shared by the pipeline, CLI, bad-input and publishing tests.

* :func:`write_inputs` / :func:`make_frames`: a 4 x 4 grid of square municipalities in two
  states, survey and census records drawn from the known logit :data:`TRUE_BETA`;
* :func:`small_country`: two states of square municipalities with an ITER-like table
  (semi-synthetic builds);
* :data:`CREATED_2015_2020`: the municipalities created between INEGI's 2015 and 2020
  cartographies, with their parents (real-data tests);
* :func:`tree_hashes`: a folder's file digests, to show that nothing was changed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.special import expit
from shapely.geometry import box

TRUE_BETA = {"intercept": -4.0, "age": 0.15, "male": 0.5, "head_agriculture": 1.2}
COVARIATES = ("age", "male", "head_agriculture")
EMPTY_MUN = "02016"   # no census records at all
SMALL_MUN = "02015"   # fewer census records than min_records

SPEC_TOML = """
name = "test-small"
[domains]
demografia = { es = "Demografía", en = "Demography" }
trabajo = { es = "Trabajo", en = "Labour" }
[[covariates]]
name = "age"
kind = "record"
domain = "demografia"
label_es = "Edad"
label_en = "Age"
definition_es = "Edad en años."
definition_en = "Age in years."
[[covariates]]
name = "male"
kind = "record"
domain = "demografia"
label_es = "Hombre"
label_en = "Male"
definition_es = "1 si es hombre."
definition_en = "1 if male."
[[covariates]]
name = "head_agriculture"
kind = "record"
domain = "trabajo"
label_es = "Jefatura en agricultura"
label_en = "Head works in agriculture"
definition_es = "1 si la jefatura trabaja en agricultura."
definition_en = "1 if the head works in agriculture."
"""


def grid_boundaries() -> gpd.GeoDataFrame:
    """16 unit squares, states 01 (first two grid rows) and 02, accented names."""
    recs = []
    for i in range(16):
        ent = "01" if i < 8 else "02"
        mun = f"{i % 8 + 1 + (0 if i < 8 else 8):03d}"
        recs.append({"cvegeo": ent + mun, "cve_ent": ent, "cve_mun": mun,
                     "nom_ent": "Aguascalientes" if ent == "01" else "Estado Peñón",
                     "nom_mun": f"San José {i}", "geometry": box(i % 4, i // 4,
                                                                   i % 4 + 1, i // 4 + 1)})
    return gpd.GeoDataFrame(recs, geometry="geometry", crs=4326)


def _people(rng, codes, agri_share):
    n = len(codes)
    return pd.DataFrame({
        "cvegeo": codes,
        "age": rng.integers(5, 18, n).astype(float),
        "male": rng.integers(0, 2, n).astype(float),
        "head_agriculture": (rng.random(n) < agri_share).astype(float),
    })


def _outcome(rng, df):
    eta = TRUE_BETA["intercept"] + sum(TRUE_BETA[c] * df[c] for c in COVARIATES)
    return (rng.random(len(df)) < expit(eta)).astype(int)


def make_frames(seed=0, n_survey=3000, n_census_per_mun=200):
    """(survey, census, boundaries) DataFrames with known truth."""
    rng = np.random.default_rng(seed)
    bnd = grid_boundaries()
    codes = bnd["cvegeo"].tolist()
    agri = dict(zip(codes, np.linspace(0.05, 0.8, len(codes))))
    # survey: 4 strata x 10 PSUs, each PSU inside one municipality
    psu_mun = rng.choice(codes, 40)
    psu = rng.integers(0, 40, n_survey)
    sv_codes = psu_mun[psu]
    survey = _people(rng, sv_codes, np.array([agri[c] for c in sv_codes]))
    survey.insert(1, "weight", rng.uniform(50, 150, n_survey).round(2))
    survey.insert(2, "strata", [f"S{p // 10}" for p in psu])
    survey.insert(3, "psu", [f"P{p}" for p in psu])
    survey.insert(4, "child_labour", _outcome(rng, survey))
    # census: 200 records per municipality, 10 in SMALL_MUN, none in EMPTY_MUN
    cen_codes = []
    for c in codes:
        cen_codes += [c] * {EMPTY_MUN: 0, SMALL_MUN: 10}.get(c, n_census_per_mun)
    cen_codes = np.array(cen_codes)
    census = _people(rng, cen_codes, np.array([agri[c] for c in cen_codes]))
    census.insert(1, "weight", rng.uniform(5, 15, len(census)).round(2))
    return survey, census, bnd


def write_inputs(folder: Path, seed=0, survey=None, census=None) -> dict:
    """Write boundaries.geojson, survey.csv, census.csv and spec.toml; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    sv, ce, bnd = make_frames(seed)
    survey = sv if survey is None else survey
    census = ce if census is None else census
    paths = {"survey": folder / "survey.csv", "census": folder / "census.csv",
             "boundaries": folder / "boundaries.geojson", "spec": folder / "spec.toml"}
    survey.to_csv(paths["survey"], index=False)
    census.to_csv(paths["census"], index=False)
    bnd.to_file(paths["boundaries"], driver="GeoJSON")
    paths["spec"].write_text(SPEC_TOML, encoding="utf-8")
    return paths


def tree_hashes(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def small_country(tmp_path, n=6):
    """Two states of n*n/2 municipalities each; the east is poor, rural and indigenous."""
    rows, table = [], []
    for k in range(n * n):
        i, j = divmod(k, n)
        ent = "20" if j >= n // 2 else "19"  # Oaxaca east, Nuevo León west
        code = f"{ent}{k + 1:03d}"
        rows.append({"CVEGEO": code, "NOMGEO": f"M{k}", "geometry": box(j, i, j + 1, i + 1)})
        east = j >= n // 2
        table.append({"cvegeo": code, "POBTOT": 10000, "POBMAS": 4900, "P_3A5": 600,
                      "P_6A11": 1200, "P_12A14": 600, "P_15A17": 600, "pob_5_17": 2600,
                      "pct_6_14_no_asiste": 9.0 if east else 2.0,
                      "pct_15_17_no_asiste": 45.0 if east else 18.0,
                      "pct_hli_3ymas": 60.0 if east else 1.0,
                      "pct_rural_lt2500": 80.0 if east else 5.0,
                      "GRAPROES": 6.0 if east else 11.0, "PDER_IMSS": 800 if east else 6000,
                      "PROM_OCUP": 4.2 if east else 3.4})
    gdf = gpd.GeoDataFrame(rows, crs=4326)
    gdf["geometry"] = gdf.geometry.translate(-100, 17)
    bpath = tmp_path / "municipios_2020.geojson"
    gdf.to_file(bpath, driver="GeoJSON")
    tab = pd.DataFrame(table)
    tab = tab[tab["cvegeo"] != "19001"]  # one municipality without census data
    tpath = tmp_path / "iter.csv"
    tab.to_csv(tpath, index=False)
    return bpath, tpath, tab


# The 12 municipalities created between the 2015 and 2020 cartographies, with the
# municipality each was carved from (INEGI, state decrees).
CREATED_2015_2020 = {
    "02006": "02001",  # San Quintín <- Ensenada
    "04012": "04004",  # Seybaplaya <- Champotón
    "07120": "07080",  # Capitán Luis Ángel Vidal <- Siltepec
    "07121": "07072",  # Rincón Chamula San Pedro <- Pueblo Nuevo Solistahuacán
    "07122": "07107",  # El Parral <- Villa Corzo
    "07123": "07002",  # Emiliano Zapata <- Acala
    "07124": "07092",  # Mezcalapa <- Tecpatán
    "07125": "07080",  # Honduras de la Sierra <- Siltepec
    "17034": "17015",  # Coatetelco <- Miacatlán
    "17035": "17017",  # Xoxocotla <- Puente de Ixtla
    "17036": "17022",  # Hueyapan <- Tetela del Volcán
    "23011": "23005",  # Puerto Morelos <- Benito Juárez
}
