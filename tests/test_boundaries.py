"""Boundary ingest: formats, CRSs, code layouts, encodings, repairs and rejections."""

from __future__ import annotations

import os
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import Polygon, box

from riskmap.errors import InputError
from riskmap.ingest.boundaries import MX_STATES, read_boundaries, states_from


STEP = 0.125  # exact in binary, so neighbouring squares share their edges exactly


def _grid(n=3, names=("Cosío", "Jesús María", "Peñón", "Zapotitlán Tablas", "Asunción",
                      "Ñuu", "Tlalnepantla", "Ixtlán", "Güémez")) -> gpd.GeoDataFrame:
    """n*n unit squares near Aguascalientes, codes 01001.., state 01 then 02."""
    rows = []
    for k in range(n * n):
        i, j = divmod(k, n)
        ent = "01" if k < n * n - 2 else "02"
        rows.append({"CVE_ENT": ent, "CVE_MUN": f"{k + 1:03d}", "NOMGEO": names[k % len(names)],
                     "geometry": box(-102.5 + STEP * j, 21.5 + STEP * i,
                                     -102.5 + STEP * (j + 1), 21.5 + STEP * (i + 1))})
    return gpd.GeoDataFrame(rows, crs=4326)


def test_shapefile_latin1_lambert_integer_codes(tmp_path):
    src = _grid().to_crs(6372)
    src["CVE_ENT"] = src["CVE_ENT"].astype(int)
    src["CVE_MUN"] = src["CVE_MUN"].astype(int)
    path = tmp_path / "mun.shp"
    src.to_file(path, encoding="latin1")
    os.remove(tmp_path / "mun.cpg")  # as INEGI ships some files: no code page
    with pytest.warns(UserWarning, match="zero-padded"):
        gdf = read_boundaries(path)
    assert list(gdf.columns) == ["cvegeo", "cve_ent", "cve_mun", "nom_ent", "nom_mun",
                                 "geometry"]
    assert gdf.crs.to_epsg() == 4326
    assert gdf["cvegeo"].tolist()[:3] == ["01001", "01002", "01003"]
    assert gdf["nom_mun"].tolist()[:5] == ["Cosío", "Jesús María", "Peñón",
                                           "Zapotitlán Tablas", "Asunción"]
    # nom_ent absent from the file: filled from Mexico's state table
    assert gdf["nom_ent"].iloc[0] == MX_STATES["01"] and gdf["nom_ent"].iloc[-1] == "Baja California"
    np.testing.assert_allclose(gdf.total_bounds, [-102.5, 21.5, -102.125, 21.875], atol=1e-6)


def test_shapefile_utf8_without_cpg_is_detected(tmp_path):
    path = tmp_path / "mun.shp"
    _grid().to_file(path, encoding="utf-8")
    os.remove(tmp_path / "mun.cpg")
    with pytest.warns(UserWarning, match="detected as UTF-8"):
        gdf = read_boundaries(path)
    assert gdf["nom_mun"].iloc[2] == "Peñón"


def test_shapefile_cpg_is_honoured(tmp_path):
    path = tmp_path / "mun.shp"
    _grid().to_file(path, encoding="latin1")  # writes a .cpg naming the code page
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gdf = read_boundaries(path)
    assert gdf["nom_mun"].iloc[8] == "Güémez"


def test_geopackage_cvegeo_lowercase_and_names(tmp_path):
    src = _grid()
    src["cvegeo"] = src["CVE_ENT"] + src["CVE_MUN"]
    src = src.rename(columns={"NOMGEO": "nom_mun"}).drop(columns=["CVE_ENT", "CVE_MUN"])
    src["Nom_Ent"] = "Estado X"
    path = tmp_path / "m.gpkg"
    src.to_file(path, layer="muni", driver="GPKG")
    gdf = read_boundaries(path, layer="muni")
    assert gdf["cve_mun"].tolist()[:2] == ["001", "002"]
    assert set(gdf["nom_ent"]) == {"Estado X"}


def test_non_mexican_codes_get_empty_state_name(tmp_path):
    src = _grid()
    src["CVE_ENT"] = "77"
    path = tmp_path / "m.geojson"
    src.to_file(path, driver="GeoJSON")
    gdf = read_boundaries(path)
    assert set(gdf["nom_ent"]) == {""}


def test_cvegeo_integer_loses_zero_is_padded(tmp_path):
    src = _grid()
    src["CVEGEO"] = (src["CVE_ENT"] + src["CVE_MUN"]).astype(int)
    path = tmp_path / "m.geojson"
    src[["CVEGEO", "NOMGEO", "geometry"]].to_file(path, driver="GeoJSON")
    with pytest.warns(UserWarning, match="CVEGEO.*zero-padded"):
        gdf = read_boundaries(path)
    assert gdf["cvegeo"].iloc[0] == "01001" and gdf["cve_ent"].iloc[0] == "01"


def test_no_crs_lonlat_assumed_with_warning(tmp_path):
    path = tmp_path / "m.shp"
    _grid().to_file(path)
    os.remove(tmp_path / "m.prj")
    with pytest.warns(UserWarning, match="assuming EPSG:4326"):
        gdf = read_boundaries(path)
    assert gdf.crs.to_epsg() == 4326


def test_no_crs_projected_coordinates_rejected(tmp_path):
    path = tmp_path / "lambert.shp"
    _grid().to_crs(6372).to_file(path)
    os.remove(tmp_path / "lambert.prj")
    with pytest.raises(InputError, match=r"lambert\.shp.*no CRS.*\.prj"):
        read_boundaries(path)


def _duplicate_code(src):
    src.loc[4, "CVE_MUN"] = "002"
    return src


def _malformed_code(src):
    src.loc[3, "CVE_MUN"] = "12a"
    return src


@pytest.mark.parametrize("corrupt, message", [
    (_duplicate_code, "more than once: 01002"),
    (lambda src: src.drop(columns=["CVE_MUN"]),
     "expected CVEGEO, or CVE_ENT and CVE_MUN.*found CVE_ENT"),
    (_malformed_code, "column 'CVE_MUN', row 4.*3-digit"),
], ids=["duplicated-codes", "missing-code-column", "malformed-code"])
def test_bad_codes_rejected_with_the_reason(tmp_path, corrupt, message):
    path = tmp_path / "m.geojson"
    corrupt(_grid()).to_file(path, driver="GeoJSON")
    with pytest.raises(InputError, match=message):
        read_boundaries(path)


def test_invalid_geometry_repaired_and_reported(tmp_path):
    src = _grid()
    bowtie = Polygon([(-102.5, 21.5), (-102.375, 21.625), (-102.375, 21.5), (-102.5, 21.625)])
    src.loc[0, "geometry"] = bowtie
    path = tmp_path / "m.geojson"
    src.to_file(path, driver="GeoJSON")
    with pytest.warns(UserWarning, match="repaired 1 invalid geometry.*01001"):
        gdf = read_boundaries(path)
    assert gdf.is_valid.all()
    assert set(gdf.geom_type) <= {"Polygon", "MultiPolygon"}
    np.testing.assert_allclose(gdf.geometry.iloc[0].area, STEP ** 2 / 2, rtol=1e-6)


def test_collection_keeps_polygons_only(tmp_path):
    src = _grid()
    src.loc[1, "geometry"] = shapely.GeometryCollection(
        [box(-102.375, 21.5, -102.25, 21.625), shapely.LineString([(0, 0), (1, 1)])])
    path = tmp_path / "m.gpkg"
    src.to_file(path, driver="GPKG")
    gdf = read_boundaries(path)
    assert gdf.geometry.iloc[1].geom_type == "Polygon"


def test_points_rejected(tmp_path):
    src = _grid()
    src["geometry"] = shapely.centroid(src.geometry.to_numpy())
    path = tmp_path / "pts.geojson"
    src.to_file(path, driver="GeoJSON")
    with pytest.raises(InputError, match="without any polygon"):
        read_boundaries(path)


def test_empty_and_missing_files_rejected(tmp_path):
    path = tmp_path / "empty.geojson"
    path.write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
    with pytest.raises(InputError, match="empty.geojson.*(no features|cannot read)"):
        read_boundaries(path)
    with pytest.raises(InputError, match="not found"):
        read_boundaries(tmp_path / "nope.shp")
    junk = tmp_path / "junk.geojson"
    junk.write_text("not json at all", encoding="utf-8")
    with pytest.raises(InputError, match="junk.geojson.*cannot read"):
        read_boundaries(junk)


def test_states_from_dissolves():
    gdf = read_boundaries_from_frame(_grid())
    states = states_from(gdf)
    assert states["cve_ent"].tolist() == ["01", "02"]
    np.testing.assert_allclose(shapely.area(states.geometry.to_numpy()),
                               [7 * STEP ** 2, 2 * STEP ** 2], rtol=1e-9)
    assert states.geometry.iloc[0].geom_type == "Polygon"  # squares merged, no inner edges


def read_boundaries_from_frame(src: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    src = src.copy()
    src["cvegeo"] = src["CVE_ENT"] + src["CVE_MUN"]
    src["cve_ent"], src["cve_mun"] = src["CVE_ENT"], src["CVE_MUN"]
    src["nom_ent"] = src["cve_ent"].map(MX_STATES)
    src["nom_mun"] = src["NOMGEO"]
    return src[["cvegeo", "cve_ent", "cve_mun", "nom_ent", "nom_mun", "geometry"]]


def test_real_2020_boundaries(mx_dir):
    gdf = read_boundaries(mx_dir / "municipios_2020.geojson")
    assert len(gdf) == 2469 and gdf["cvegeo"].is_unique
    assert gdf["cvegeo"].str.fullmatch(r"\d{5}").all()
    assert gdf.loc[gdf["cvegeo"] == "20067", "nom_mun"].item() == "Oaxaca de Juárez"
    states = states_from(gdf)
    assert len(states) == 32
    pd.testing.assert_series_equal(states["nom_ent"].reset_index(drop=True),
                                   pd.Series([MX_STATES[c] for c in states["cve_ent"]],
                                             name="nom_ent"),
                                   check_dtype=False)


def test_inegi_style_zip_picks_the_municipal_layer(tmp_path):
    import zipfile

    folder = tmp_path / "conjunto_de_datos"
    folder.mkdir()
    src = _grid().to_crs(6372)
    src["CVEGEO"] = src["CVE_ENT"] + src["CVE_MUN"]
    src.to_file(folder / "00mun.shp", encoding="latin1")
    states = src.dissolve("CVE_ENT").reset_index()[["CVE_ENT", "geometry"]]
    states.to_file(folder / "00ent.shp", encoding="latin1")
    archive = tmp_path / "mg_2020_integrado.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in folder.iterdir():
            if f.suffix != ".cpg":  # as INEGI ships: no code page file
                zf.write(f, f"conjunto_de_datos/{f.name}")
    gdf = read_boundaries(archive)
    assert len(gdf) == 9 and gdf["nom_mun"].iloc[2] == "Peñón"
    assert gdf.crs.to_epsg() == 4326
    # naming another member reads it (the states layer has no municipal codes)
    with pytest.raises(InputError, match="no municipal code columns"):
        read_boundaries(archive, layer="00ent")


def test_multilayer_geopackage_picks_the_municipal_layer_silently(tmp_path):
    munis = _grid()
    path = tmp_path / "marco.gpkg"
    states_from(read_boundaries_from_frame(munis)).to_file(path, layer="estados")
    munis.to_file(path, layer="municipios")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = read_boundaries(path)
    assert len(got) == len(munis)
    assert got["cvegeo"].str.len().eq(5).all()



@pytest.mark.slow
def test_real_2020_as_inegi_shapefile_and_geopackage(mx_dir, tmp_path):
    """The real 2020 boundaries as INEGI ships them: Shapefile in EPSG:6372, latin-1 DBF
    without .cpg, CVE_ENT/CVE_MUN stored as integers; and a GeoPackage with integer CVEGEO.
    Both read back to the same municipalities, names and areas as the GeoJSON."""
    ref = read_boundaries(mx_dir / "municipios_2020.geojson")
    shp = gpd.GeoDataFrame({"CVE_ENT": ref["cve_ent"].astype(int),
                            "CVE_MUN": ref["cve_mun"].astype(int), "NOMGEO": ref["nom_mun"]},
                           geometry=ref.geometry, crs=4326).to_crs(6372)
    shp.to_file(tmp_path / "00mun.shp", encoding="latin1")
    os.remove(tmp_path / "00mun.cpg")
    with open(tmp_path / "00mun.dbf", "rb") as fh:
        assert "ñ".encode("latin1") in fh.read()  # really latin-1 bytes on disk
    gpkg = gpd.GeoDataFrame({"CVEGEO": ref["cvegeo"].astype(int), "NOMGEO": ref["nom_mun"],
                             "NOM_ENT": ref["nom_ent"]}, geometry=ref.geometry,
                            crs=4326).to_crs(6372)
    gpkg.to_file(tmp_path / "mun.gpkg", layer="mun")
    area = ref.to_crs(6372).area.to_numpy()
    for path in (tmp_path / "00mun.shp", tmp_path / "mun.gpkg"):
        with pytest.warns(UserWarning, match="zero-padded"):
            got = read_boundaries(path)
        assert got.crs.to_epsg() == 4326
        assert got["cvegeo"].tolist() == ref["cvegeo"].tolist()
        assert got["nom_mun"].tolist() == ref["nom_mun"].tolist()
        assert got["nom_ent"].tolist() == ref["nom_ent"].tolist()
        np.testing.assert_allclose(got.to_crs(6372).area.to_numpy(), area, rtol=1e-6)
