"""A small, fully controlled data directory for the web tests (no pipeline involved).

``build_fake_atlas(path)`` writes, with :class:`riskmap.publish.store.DataStore` only:

* geography vintages ``"2015"`` (40 square municipalities, 4 states of 10) and ``"2020"``
  (42: municipalities 22001 and 07003 each lose their eastern half to a new municipality,
  22011 and 07011), each with a ``estados`` layer;
* the crosswalk 2015 -> 2020 (``share`` = fraction of the *from* municipality's area that
  lies in the *to* municipality; 1 for unchanged ones, 0.5 for the halves of a split);
* edition ``"2017"`` (vintage 2015, modelled, synthetic) and ``"2023"`` (vintage 2020,
  modelled, synthetic; or imported, without factors, when ``imported_2023=True``), each with
  every level present (including ``sin_informacion``), factor contributions and a model card
  shaped as docs/DESIGN.md describes.

Names include accents ("Querétaro", "San José", "Peñón") and one hostile name, :data:`EVIL_NAME`,
so that escaping can be tested. Values are deterministic; the constants below let tests
check exact figures without recomputing them.
"""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import box

from riskmap.model.rules import level_certainty
from riskmap.publish.edition import Edition, EXTRA_COLUMNS, FACTOR_COLUMNS, ROW_COLUMNS
from riskmap.publish.store import DataStore

EVIL_NAME = '<script>alert("x")</script> O\'Brien "Q"'
Z = 1.959964

#: cve_ent -> state name (row of the grid, south to north).
STATES = {"07": "Chiapas", "12": "Guerrero", "22": "Querétaro", "30": "Veracruz de Ignacio de la Llave"}

#: Municipality names per state, cve_mun 001..010 in order.
_NAMES = {
    "07": ["Tuxtla Gutiérrez", "San Cristóbal de las Casas", "Ocosingo", "Comitán",
           "Palenque", "Tapachula", "Chamula", "Zinacantán", "Tenejapa", "Oxchuc"],
    "12": ["Acapulco de Juárez", "Chilpancingo", "Iguala", "Taxco", "Tlapa",
           "Metlatónoc", "Cochoapa", "Ometepec", "Zihuatanejo", "Atoyac"],
    "22": ["Querétaro", "San José Iturbide", "Peñón Blanco", "Amealco", "Pinal de Amoles",
           EVIL_NAME, "Cadereyta", "Jalpan", "Landa", "Tolimán"],
    "30": ["Xalapa", "Veracruz", "Papantla", "Coatzacoalcos", "Orizaba",
           "Córdoba", "Tuxpan", "Poza Rica", "Minatitlán", "Zongolica"],
}
#: Municipalities created between the 2015 and 2020 vintages: new code -> (parent, name).
SPLITS = {"22011": ("22001", "Santa Rosa Jáuregui"), "07011": ("07003", "Benemérito")}

COVARIATES = {  # covariate -> (policy domain, coefficient)
    "age": ("demografia", 0.21), "male": ("demografia", 0.45),
    "attends_school": ("educacion", -0.9), "indigenous_language": ("demografia", 0.3),
    "rural": ("vivienda_servicios", 0.4), "head_schooling_years": ("educacion", -0.08),
    "head_agriculture": ("trabajo", 0.7), "head_social_security": ("proteccion_social", -0.5),
    "household_size": ("demografia", 0.05), "dirt_floor": ("vivienda_servicios", 0.25),
}
LABELS = {"age": ("Edad", "Age"), "male": ("Hombre", "Male"),
          "attends_school": ("Asiste a la escuela", "Attends school"),
          "indigenous_language": ("Habla lengua indígena", "Speaks an indigenous language"),
          "rural": ("Localidad rural", "Rural locality"),
          "head_schooling_years": ("Escolaridad del jefe", "Head's schooling"),
          "head_agriculture": ("Jefe en agricultura", "Head works in agriculture"),
          "head_social_security": ("Jefe con seguridad social", "Head has social security"),
          "household_size": ("Tamaño del hogar", "Household size"),
          "dirt_floor": ("Piso de tierra", "Dirt floor")}
NATIONAL_RATE = {"2017": 0.110, "2023": 0.131}
MIN_RECORDS = 30
#: Municipalities without enough census records (sin_informacion) per edition.
NO_INFO = {"2017": ("12006", "30010"), "2023": ("12006", "22011")}
CELL = 0.5  # degrees per grid square


def _geography(vintage: str) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    records = []
    for row, (ent, nom_ent) in enumerate(STATES.items()):
        for col in range(10):
            mun = f"{col + 1:03d}"
            x0, y0 = -100.0 + col * CELL, 16.0 + row * CELL
            records.append({"cvegeo": ent + mun, "cve_ent": ent, "cve_mun": mun,
                            "nom_ent": nom_ent, "nom_mun": _NAMES[ent][col],
                            "geometry": box(x0, y0, x0 + CELL, y0 + CELL)})
    mun = gpd.GeoDataFrame(records, geometry="geometry", crs=4326)
    if vintage == "2020":
        extra = []
        for new, (parent, name) in SPLITS.items():
            i = mun.index[mun["cvegeo"] == parent][0]
            x0, y0, x1, y1 = mun.at[i, "geometry"].bounds
            mid = (x0 + x1) / 2
            mun.at[i, "geometry"] = box(x0, y0, mid, y1)
            extra.append({"cvegeo": new, "cve_ent": new[:2], "cve_mun": new[2:],
                          "nom_ent": STATES[new[:2]], "nom_mun": name,
                          "geometry": box(mid, y0, x1, y1)})
        mun = pd.concat([mun, gpd.GeoDataFrame(extra, geometry="geometry", crs=4326)],
                        ignore_index=True)
        mun = gpd.GeoDataFrame(mun, geometry="geometry", crs=4326)
    mun = mun.sort_values("cvegeo").reset_index(drop=True)
    est = mun.dissolve(by=["cve_ent", "nom_ent"], as_index=False)[["cve_ent", "nom_ent", "geometry"]]
    est["cvegeo"] = est["cve_ent"]
    return mun, est


def _crosswalk() -> pd.DataFrame:
    codes = sorted(ent + f"{c + 1:03d}" for ent in STATES for c in range(10))
    rows = []
    for code in codes:
        children = [new for new, (parent, _) in SPLITS.items() if parent == code]
        if children:
            rows.append((code, code, 0.5))
            rows += [(code, new, 0.5) for new in children]
        else:
            rows.append((code, code, 1.0))
    return pd.DataFrame(rows, columns=["cvegeo_from", "cvegeo_to", "share"])


def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def _rows(name: str, geo: gpd.GeoDataFrame, seed: int) -> gpd.GeoDataFrame:
    """Scores with consistent intervals, levels by the significance rule, ranks."""
    rng = np.random.default_rng(seed)
    n = len(geo)
    r = NATIONAL_RATE[name]
    # Spread logits so the rule yields alto, medio and bajo; later edition a bit lower.
    shift = 0.0 if name == "2017" else -0.25
    eta = np.log(r / (1 - r)) + np.linspace(-1.1, 1.1, n)[rng.permutation(n)] + shift
    p = _expit(eta)
    n_records = rng.integers(40, 900, size=n)
    se_logit = 2.0 / np.sqrt(n_records)
    se = se_logit * p * (1 - p)
    children = rng.integers(800, 60000, size=n)
    df = geo.copy()
    df["edition"] = name
    df["vintage"] = "2015" if name == "2017" else "2020"
    no_info = df["cvegeo"].isin(NO_INFO[name]).to_numpy()
    n_records = np.where(no_info, rng.integers(0, MIN_RECORDS, size=n), n_records)
    df["n_records"] = n_records.astype("int64")
    df["children"] = children.astype("int64")
    df["probability"] = np.where(no_info, np.nan, p)
    df["ci_low"] = np.where(no_info, np.nan, _expit(eta - Z * se_logit))
    df["ci_high"] = np.where(no_info, np.nan, _expit(eta + Z * se_logit))
    df["se"] = np.where(no_info, np.nan, se)
    df["var_model"] = df["se"] ** 2 * 0.8
    df["var_census"] = df["se"] ** 2 * 0.2
    df["expected_child_labour"] = df["probability"] * df["children"]
    level = np.where(df["ci_low"] > r, "alto", np.where(df["ci_high"] < r, "bajo", "medio"))
    df["level"] = np.where(no_info, "sin_informacion", level)
    df["level_rule"] = "significance"
    # The hostile name must show up in lists of alto municipalities.
    evil = df["nom_mun"] == EVIL_NAME
    if name == "2017":
        df.loc[evil, ["probability", "ci_low", "ci_high"]] = [0.30, 0.25, 0.36]
        df.loc[evil, "level"] = "alto"
        df.loc[evil, "se"] = 0.028
        df.loc[evil, "expected_child_labour"] = 0.30 * df.loc[evil, "children"]
    ranked = df["probability"].rank(ascending=False, method="first")
    df["rank_national"] = ranked.astype("Int64")
    df["rank_state"] = df.groupby("cve_ent")["probability"].rank(
        ascending=False, method="first").astype("Int64")
    df["top_factors"] = ""
    df["level_certainty"] = level_certainty(df["probability"], df["se"], df["level"],
                                            {"low": r, "high": r}).to_numpy()
    return df


def _factors(rows: gpd.GeoDataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed + 1)
    out = []
    for cov, (domain, beta) in COVARIATES.items():
        nat = {"age": 11.0, "household_size": 5.0, "head_schooling_years": 8.0}.get(cov, 0.4)
        spread = nat * 0.3
        mean = nat + rng.normal(0, spread, size=len(rows))
        out.append(pd.DataFrame({"cvegeo": rows["cvegeo"].to_numpy(), "covariate": cov,
                                 "domain": domain, "contribution": beta * (mean - nat),
                                 "municipal_mean": mean, "national_mean": nat}))
    factors = pd.concat(out, ignore_index=True)
    # Municipalities without information have no factors either.
    info = rows.loc[rows["level"] != "sin_informacion", "cvegeo"]
    return factors[factors["cvegeo"].isin(info)].reset_index(drop=True)[list(FACTOR_COLUMNS)]


def _top(factors: pd.DataFrame, n: int = 3) -> pd.Series:
    pos = factors[factors["contribution"] > 0].sort_values("contribution", ascending=False)
    return pos.groupby("cvegeo")["covariate"].apply(lambda s: "; ".join(s.head(n)))


def _card(name: str, vintage: str, kind: str, seed: int) -> dict:
    r = NATIONAL_RATE[name]
    card = {
        "edition": name, "year": int(name), "kind": kind, "vintage": vintage,
        "synthetic": True, "created": f"{name}-06-01T00:00:00+00:00",
        "sources": ["Encuesta sintética de trabajo infantil (demo)", "Censo sintético (demo)",
                    "Geografía sintética en cuadrícula (demo)"],
        "rule": {"id": "significance",
                 "text": {"es": "Nivel alto: el intervalo de confianza al 95 % está por completo "
                                "sobre la tasa nacional; bajo: por completo debajo; medio: "
                                "contiene la tasa nacional; sin información: menos de "
                                f"{MIN_RECORDS} registros censales.",
                          "en": "High: the 95 % confidence interval lies entirely above the "
                                "national rate; low: entirely below; medium: it contains the "
                                "national rate; no information: fewer than "
                                f"{MIN_RECORDS} census records."},
                 "parameters": {"confidence": 0.95, "reference": "national_rate",
                                "min_records": MIN_RECORDS, "reference_value": r}},
        "limitations_es": ["Estimador sintético sin efectos de área."],
        "limitations_en": ["Synthetic estimator without area effects."],
        "national_rate": {"estimate": r, "se": 0.004, "ci_low": r - 0.008, "ci_high": r + 0.008},
    }
    if kind == "imported":
        return card
    rng = np.random.default_rng(seed + 2)
    names = ["intercept", *COVARIATES]
    est = np.array([-3.1] + [b for _, b in COVARIATES.values()])
    se = np.abs(est) * 0.15 + 0.01
    a = rng.normal(size=(len(names), len(names))) * 0.1
    corr = a @ a.T + np.eye(len(names))
    d = 1 / np.sqrt(np.diag(corr))
    cov = (corr * np.outer(d, d)) * np.outer(se, se)
    zval = est / se
    pval = [math.erfc(abs(z) / math.sqrt(2)) for z in zval]
    card["coefficients"] = [
        {"name": nm, "label_es": LABELS.get(nm, ("Intercepto", "Intercept"))[0],
         "label_en": LABELS.get(nm, ("Intercepto", "Intercept"))[1], "estimate": float(b), "se": float(s), "ci_low": float(b - Z * s),
         "ci_high": float(b + Z * s), "odds_ratio": float(math.exp(b)), "z": float(zz),
         "p_value": float(pv), "domain": None if nm == "intercept" else COVARIATES[nm][0]}
        for nm, b, s, zz, pv in zip(names, est, se, zval, pval)]
    card["covariance"] = cov.tolist()
    card["n_survey"] = 12000
    card["diagnostics"] = {
        "auc": 0.78, "cv_auc": 0.76, "brier": 0.089,
        "calibration": [{"decile": k + 1, "predicted": 0.02 + 0.025 * k,
                         "observed": 0.021 + 0.024 * k, "n": 1200} for k in range(10)],
    }
    card["spec"] = {"name": "mirti", "covariates": [
        {"name": c, "kind": "record", "domain": d, "label_es": LABELS[c][0],
         "label_en": LABELS[c][1], "definition_es": LABELS[c][0], "definition_en": LABELS[c][1]}
        for c, (d, _) in COVARIATES.items()]}
    return card


def web_app(data_dir, **settings):
    """The web application over ``data_dir`` as tests use it: no demo build, Flask's testing
    mode; ``settings`` add to or override those."""
    from riskmap.web import create_app

    return create_app({"data_dir": str(data_dir), "auto_demo": False, "TESTING": True,
                       **settings})


def build_fake_atlas(path, *, imported_2023: bool = False, seed: int = 7) -> Path:
    """Write the small web-test data directory into ``path`` and return it.

    Parameters
    ----------
    path : str or Path
        Data directory (created if needed).
    imported_2023 : bool
        Publish edition 2023 as an imported edition (no factors, no coefficients).
    seed : int
        Seed of the deterministic pseudo-random values.
    """
    path = Path(path)
    store = DataStore(path)
    geos = {}
    for vintage in ("2015", "2020"):
        mun, est = _geography(vintage)
        store.save_vintage(vintage, mun, est)
        geos[vintage] = mun
    store.save_crosswalk("2015", "2020", _crosswalk())
    for name, vintage in (("2017", "2015"), ("2023", "2020")):
        kind = "imported" if (name == "2023" and imported_2023) else "modelled"
        rows = _rows(name, geos[vintage], seed + int(name))
        factors = _factors(rows, seed + int(name))
        if kind == "modelled":
            top = _top(factors)
            rows["top_factors"] = rows["cvegeo"].map(top).fillna("").astype(str)
        else:
            # Published results come without standard errors or factors.
            factors = factors.iloc[0:0]
            rows[["se", "var_model", "var_census", "level_certainty"]] = np.nan
            rows["level_rule"] = "publicado"
        rows = gpd.GeoDataFrame(rows[list(ROW_COLUMNS) + list(EXTRA_COLUMNS) + ["geometry"]],
                                geometry="geometry", crs=4326)
        card = _card(name, vintage, kind, seed)
        counts = rows["level"].value_counts()
        card["level_counts"] = {lev: int(counts.get(lev, 0))
                                for lev in ("alto", "medio", "bajo", "sin_informacion")}
        store.publish_edition(Edition(name=name, rows=rows, factors=factors, card=card))
    return path
