"""Source mappings: INEGI layouts (Censo 2020, EIC 2015, ENTI) -> harmonised child records."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyogrio
import pytest

from riskmap.errors import InputError
from riskmap.inegi.iter import read_iter
from riskmap.inegi.mapping import SOURCES_DIR, apply_mapping, load_mapping, read_table
from riskmap.spec import load_spec

PERSONAS_COLS = ["ID_VIV", "ID_PERSONA", "ENT", "MUN", "LOC50K", "ESTRATO", "UPM", "FACTOR",
                 "NUMPER", "SEXO", "EDAD", "PARENTESCO", "HLENGUA", "ASISTEN", "ESCOACUM",
                 "ACTIVIDADES_C", "DHSERSAL1", "TAMLOC"]


def _personas_2020() -> pd.DataFrame:
    """Three dwellings in Censo 2020 CA layout, as the CSV holds them (text, leading zeros)."""
    rows = [
        # dwelling A, rural Chiapas: indigenous head in agriculture, no social security
        ("070010000001", "07001000000100001", "07", "001", "0000", "07-001-0000-01", "0001", "25", "01", "1", "040", "101", "1", "3", "06", "1110", "09", "1"),
        ("070010000001", "07001000000100002", "07", "001", "0000", "07-001-0000-01", "0001", "25", "02", "3", "038", "201", "1", "3", "04", "", "09", "1"),
        ("070010000001", "07001000000100003", "07", "001", "0000", "07-001-0000-01", "0001", "25", "03", "1", "010", "301", "1", "1", "04", "", "09", "1"),
        ("070010000001", "07001000000100004", "07", "001", "0000", "07-001-0000-01", "0001", "25", "04", "3", "016", "301", "1", "3", "09", "", "09", "1"),
        ("070010000001", "07001000000100005", "07", "001", "0000", "07-001-0000-01", "0001", "25", "05", "1", "003", "301", "", "", "", "", "09", "1"),
        ("070010000001", "07001000000100006", "07", "001", "0000", "07-001-0000-01", "0001", "25", "06", "3", "070", "406", "1", "3", "00", "", "09", "1"),
        # dwelling B, urban Nuevo León: head with IMSS, 12 years of school, in trade
        ("190390000002", "19039000000200001", "19", "039", "0001", "19-039-0001-03", "0007", "12", "01", "1", "045", "101", "3", "3", "12", "4610", "01", "5"),
        ("190390000002", "19039000000200002", "19", "039", "0001", "19-039-0001-03", "0007", "12", "02", "1", "017", "301", "3", "1", "11", "", "01", "5"),
        ("190390000002", "19039000000200003", "19", "039", "0001", "19-039-0001-03", "0007", "12", "03", "3", "018", "301", "3", "1", "12", "", "01", "5"),
        # dwelling C: no head recorded (a coding error): its child cannot be harmonised
        ("190390000003", "19039000000300001", "19", "039", "0001", "19-039-0001-03", "0007", "12", "01", "3", "008", "301", "3", "1", "02", "", "01", "5"),
    ]
    return pd.DataFrame(rows, columns=PERSONAS_COLS)


def _viviendas_2020() -> pd.DataFrame:
    return pd.DataFrame({"ID_VIV": ["070010000001", "190390000002", "190390000003"],
                         "ENT": ["07", "19", "19"], "PISOS": ["1", "2", "3"]})


def test_censo2020_persons_with_head_and_dwelling_variables(tmp_path):
    personas = tmp_path / "Personas07.CSV"
    viviendas = tmp_path / "Viviendas07.CSV"
    _personas_2020().to_csv(personas, index=False, encoding="utf-8-sig")
    _viviendas_2020().to_csv(viviendas, index=False)
    mapping = load_mapping("censo2020_ampliado")
    with pytest.warns(UserWarning, match=r"1 of 4 children dropped.*indigenous_language: 1"):
        out = apply_mapping(read_table(personas), mapping, personas.name,
                            tables={"dwellings": read_table(viviendas)})
    expected = pd.DataFrame({
        "cvegeo": ["07001", "07001", "19039"],
        "weight": [25.0, 25.0, 12.0],
        "age": [10.0, 16.0, 17.0],
        "male": [1.0, 0.0, 1.0],
        "attends_school": [1.0, 0.0, 1.0],
        "indigenous_language": [1.0, 1.0, 0.0],   # the head's language
        "rural": [1.0, 1.0, 0.0],
        "head_schooling_years": [6.0, 6.0, 12.0],
        "head_agriculture": [1.0, 1.0, 0.0],       # SCIAN 1110 vs 4610
        "head_social_security": [0.0, 0.0, 1.0],   # 09 not affiliated vs 01 IMSS
        "household_size": [6.0, 6.0, 3.0],
        "dirt_floor": [1.0, 1.0, 0.0],
    })
    pd.testing.assert_frame_equal(out, expected, check_dtype=False)
    assert out.attrs["dropped"] == {c: 1 for c in ("indigenous_language", "head_schooling_years",
                                                   "head_agriculture", "head_social_security")}


def test_lower_case_columns_and_numbers_accepted():
    df = _personas_2020()
    df.columns = [c.lower() for c in df.columns]
    df["ent"] = df["ent"].astype(int)  # lost leading zeros
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = apply_mapping(df, load_mapping("censo2020_ampliado"), "p.csv",
                            tables={"dwellings": _viviendas_2020()})
    assert out["cvegeo"].tolist() == ["07001", "07001", "19039"]


def test_intercensal_2015_codes_differ():
    df = _personas_2020().rename(columns={"PARENTESCO": "PARENT"})
    df["PARENT"] = df["PARENT"].map({"101": "1", "201": "2", "301": "3", "406": "8"})
    df["ASISTEN"] = df["ASISTEN"].map({"1": "5", "3": "7", "": ""})
    df["DHSERSAL1"] = df["DHSERSAL1"].map({"09": "8", "01": "2"})  # not affiliated / IMSS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = apply_mapping(df, load_mapping("intercensal2015"), "eic.csv",
                            tables={"dwellings": _viviendas_2020()})
    np.testing.assert_array_equal(out["attends_school"], [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(out["head_social_security"], [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(out["head_schooling_years"], [6.0, 6.0, 12.0])


def test_missing_extra_table_and_column():
    m = load_mapping("censo2020_ampliado")
    with pytest.raises(InputError, match="reads table 'dwellings'.*pass it too"):
        apply_mapping(_personas_2020(), m, "p.csv")
    with pytest.raises(InputError, match=r"Viviendas\{NN\}\.CSV.*missing column\(s\) PISOS"):
        apply_mapping(_personas_2020(), m, "p.csv",
                      tables={"dwellings": _viviendas_2020().drop(columns=["PISOS"])})


def test_unknown_code_names_column_and_row():
    df = _personas_2020()
    df.loc[3, "ASISTEN"] = "4"
    with pytest.raises(InputError, match=r"column 'ASISTEN', row 5: code\(s\) 4 not in the "
                                         r"recode of 'attends_school'"):
        apply_mapping(df, load_mapping("censo2020_ampliado"), "p.csv",
                      tables={"dwellings": _viviendas_2020()})


def test_not_specified_codes_become_missing_and_are_dropped():
    df = _personas_2020()
    df.loc[2, "ASISTEN"] = "9"
    df.loc[3, "EDAD"] = "999"  # age not specified: outside the 5-17 filter
    with pytest.warns(UserWarning, match="attends_school: 1"):
        out = apply_mapping(df, load_mapping("censo2020_ampliado"), "p.csv",
                            tables={"dwellings": _viviendas_2020()})
    assert out["age"].tolist() == [17.0]


def test_nonpositive_weight_rejected():
    df = _personas_2020()
    df.loc[2, "FACTOR"] = "0"
    with pytest.raises(InputError, match="column 'FACTOR', row 4: weight must be a positive"):
        apply_mapping(df, load_mapping("censo2020_ampliado"), "p.csv",
                      tables={"dwellings": _viviendas_2020()})


def _sdem_enti() -> pd.DataFrame:
    """ENTI SDEM-like table (ENOE-style keys, I-tagged names)."""
    base = dict(CD_A="01", ENT="20", CON="0101", V_SEL="01", N_HOG="1", H_MUD="0",
                EST_D="201", UPM_DIS="2000101", FAC="350", T_LOC="4")
    people = [  # PAR_C, EDA, SEX, ASIS, HLENGUA, ANIOS_ESC, RAMA_EST1, SEG_SOC, CTI
        ("101", "44", "1", "2", "1", "3", "1", "2", "4"),
        ("301", "12", "1", "1", "1", "6", "", "", "1"),
        ("301", "15", "2", "2", "1", "9", "", "", "3"),
        ("301", "07", "2", "1", "1", "1", "", "", "4"),
    ]
    rows = [{**base, "PAR_C": p[0], "EDA": p[1], "SEX": p[2], "ASIS": p[3], "HLENGUA": p[4],
             "ANIOS_ESC": p[5], "RAMA_EST1": p[6], "SEG_SOC": p[7], "CTI": p[8]} for p in people]
    return pd.DataFrame(rows)


def _write_dbf(df, target):
    """A standalone DBF as INEGI ships (upper-case .DBF name, no geometry)."""
    pyogrio.write_dataframe(df, target.with_suffix(".dbf"), driver="ESRI Shapefile")
    target.with_suffix(".dbf").rename(target)
    return target


def test_enti_survey_from_dbf_state_level_code(tmp_path):
    sdem = _write_dbf(_sdem_enti(), tmp_path / "ENTI2022_SDEM.DBF")
    viv = _write_dbf(pd.DataFrame({"CD_A": ["01"], "ENT": ["20"], "CON": ["0101"],
                                   "V_SEL": ["01"], "P_PISO": ["1"]}), tmp_path / "ENTI2022_VIV.DBF")
    m = load_mapping("enti2022")
    out = apply_mapping(read_table(sdem), m, sdem.name, tables={"dwellings": read_table(viv)})
    assert list(out.columns[:5]) == ["cvegeo", "weight", "strata", "psu", "child_labour"]
    assert set(out["cvegeo"]) == {"20000"}  # ENT + "000": no municipality in the survey
    assert out["strata"].tolist() == ["201"] * 3 and out["psu"].tolist() == ["2000101"] * 3
    assert out["child_labour"].tolist() == [1, 1, 0]
    assert out["child_labour"].dtype.kind == "i"
    np.testing.assert_array_equal(out["age"], [12.0, 15.0, 7.0])
    np.testing.assert_array_equal(out["male"], [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(out["head_agriculture"], [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(out["head_social_security"], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(out["dirt_floor"], [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(out["household_size"], [4.0, 4.0, 4.0])


@pytest.mark.parametrize("frame, column, mapping, file, tables, message", [
    # the message lists what was expected and what was found
    (_personas_2020, "ASISTEN", "censo2020_ampliado", "p.csv", {"dwellings": _viviendas_2020()},
     r"p\.csv, column 'ASISTEN': missing column\(s\) ASISTEN .*expected ENT, MUN, FACTOR"
     r".*found ID_VIV"),
    # a name the mapping has not confirmed is flagged, with the file to edit
    (_sdem_enti, "HLENGUA", "enti2022", "ENTI2022_SDEM.DBF", None,
     r"HLENGUA \[\?\].*unconfirmed INEGI names: edit enti2022\.toml"),
], ids=["censo2020", "enti2022-unconfirmed"])
def test_missing_column_reported(frame, column, mapping, file, tables, message):
    with pytest.raises(InputError, match=message):
        apply_mapping(frame().drop(columns=[column]), load_mapping(mapping), file, tables=tables)


def test_shipped_mappings_match_the_model_spec():
    spec = load_spec()
    names = sorted(p.stem for p in SOURCES_DIR.glob("*.toml") if p.stem != "fetch_catalog")
    assert names == ["censo2020_ampliado", "enti2019", "enti2022", "intercensal2015", "mti2017"]
    for name in names:
        m = load_mapping(name)
        assert m.covariates == spec.names, name
        assert all(v.confidence in ("C1", "C2", "I", "?") for v in m.variables)
        assert (m.outcome is not None) == (m.kind == "survey")
    # the census 2020 mapping is fully confirmed; MTI 2017 is not confirmed at all
    assert set(load_mapping("censo2020_ampliado").confidence.values()) == {"C1"}
    assert not {"C1", "C2"} & set(load_mapping("mti2017").confidence.values())


def test_load_mapping_errors(tmp_path):
    with pytest.raises(InputError, match="mapping file not found; mappings shipped: censo2020"):
        load_mapping("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text('name="x"\nkind="census"\n[geography]\nent="ENT"\n[design]\nweight="F"\n'
                   '[[variables]]\nname="male"\ncolumn="SEXO"\nconfidence="sure"\n',
                   encoding="utf-8")
    with pytest.raises(InputError, match="confidence must be one of C1, C2, I, ?"):
        load_mapping(bad)
    bad.write_text('name="x"\nkind="census"\n[geography]\nent="ENT"\n[design]\nweight="F"\n'
                   '[[variables]]\nname="male"\ncolum="SEXO"\n', encoding="utf-8")
    with pytest.raises(InputError, match="unknown key.*colum"):
        load_mapping(bad)
    bad.write_text('kind="census"\n', encoding="utf-8")
    with pytest.raises(InputError, match="invalid mapping.*geography"):
        load_mapping(bad)


# -- ITER tables ----------------------------------------------------------------------------
ITER_HEADER = ["ENTIDAD", "NOM_ENT", "MUN", "NOM_MUN", "LOC", "NOM_LOC", "POBTOT", "P_0A2",
               "P_3A5", "P_6A11", "P_12A14", "P_15A17", "P6A11_NOA", "P12A14NOA", "P15A17A",
               "P3YM_HLI", "GRAPROES"]


def test_iter_inegi_layout_totals_suppression_and_rurality(tmp_path):
    rows = [
        ["00", "Estados Unidos Mexicanos", "000", "Total nacional", "0000", "Total nacional",
         "3200", "100", "100", "300", "150", "150", "30", "15", "120", "320", "9.1"],
        ["20", "Oaxaca", "000", "Total de la entidad", "0000", "Total de la entidad",
         "3200", "100", "100", "300", "150", "150", "30", "15", "120", "320", "9.1"],
        ["20", "Oaxaca", "067", "Oaxaca de Juárez", "0000", "Total del municipio",
         "3000", "90", "90", "270", "135", "135", "27", "*", "100", "290", "10.5"],
        ["20", "Oaxaca", "067", "Oaxaca de Juárez", "0001", "Oaxaca de Juárez",
         "2600", "*", "*", "*", "*", "*", "*", "*", "*", "*", "*"],
        ["20", "Oaxaca", "067", "Oaxaca de Juárez", "0002", "San Luis Beltrán",
         "400", "*", "*", "*", "*", "*", "*", "*", "*", "*", "*"],
        ["20", "Oaxaca", "001", "Abejones", "0000", "Total del municipio",
         "200", "10", "10", "30", "15", "15", "3", "1", "10", "30", "6.0"],
        ["20", "Oaxaca", "001", "Abejones", "0001", "Abejones",
         "200", "10", "10", "30", "15", "15", "3", "1", "10", "30", "6.0"],
    ]
    path = tmp_path / "ITER_20CSV20.csv"
    pd.DataFrame(rows, columns=ITER_HEADER).to_csv(path, index=False, encoding="utf-8-sig")
    df = read_iter(path).set_index("cvegeo")
    assert df.index.tolist() == ["20067", "20001"]
    assert df.loc["20067", "nom_mun"] == "Oaxaca de Juárez"
    assert np.isnan(df.loc["20067", "P12A14NOA"])           # "*" -> NaN
    assert np.isnan(df.loc["20067", "pct_6_14_no_asiste"])  # propagates
    np.testing.assert_allclose(df.loc["20067", "pct_rural_lt2500"], 100 * 400 / 3000)
    np.testing.assert_allclose(df.loc["20001", "pct_rural_lt2500"], 100.0)
    np.testing.assert_allclose(df.loc["20001", "pct_6_14_no_asiste"], 100 * 4 / 45)
    np.testing.assert_allclose(df.loc["20001", "pct_15_17_no_asiste"], 100 * 5 / 15)
    np.testing.assert_allclose(df.loc["20001", "pct_hli_3ymas"], 100 * 30 / 190)
    np.testing.assert_allclose(df.loc["20067", "pob_5_17"], 270 + 135 + 135 + 30)


def test_iter_rejects_unknown_layout_and_bad_codes(tmp_path):
    path = tmp_path / "x.csv"
    pd.DataFrame({"a": [1]}).to_csv(path, index=False)
    with pytest.raises(InputError, match="not an ITER table.*found a"):
        read_iter(path)
    pd.DataFrame({"cvegeo": ["0100A"], "POBTOT": ["3"]}).to_csv(path, index=False)
    with pytest.raises(InputError, match="column 'cvegeo', row 2: expected a 5-digit code"):
        read_iter(path)


def test_iter_real_municipal_table(mx_dir):
    df = read_iter(mx_dir / "censo2020_municipal.csv")
    assert len(df) == 2469 and df["cvegeo"].is_unique
    assert df["pob_5_17"].sum() == pytest.approx(28.2e6, rel=0.01)
    assert df["GRAPROES"].dtype == float


def test_cli_harmonise_two_states_to_parquet(tmp_path):
    from click.testing import CliRunner

    from riskmap.cli import cli
    from riskmap.ingest.records import read_records

    personas = _personas_2020()
    paths = []
    for ent in ("07", "19"):
        p = tmp_path / f"Personas{ent}.CSV"
        v = tmp_path / f"Viviendas{ent}.CSV"
        personas[personas["ENT"] == ent].to_csv(p, index=False)
        _viviendas_2020()[_viviendas_2020()["ENT"] == ent].to_csv(v, index=False)
        paths += [p, v]
    out = tmp_path / "census.parquet"
    result = CliRunner().invoke(cli, ["harmonise", "--mapping", "censo2020_ampliado",
                                      "--input", str(paths[0]), "--input", str(paths[2]),
                                      "--table", f"dwellings={paths[1]}",
                                      "--table", f"dwellings={paths[3]}", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "3 census child records" in result.output
    assert "Personas19.CSV: 1 of 2 children dropped" in result.output  # headless dwelling
    # the output is what `riskmap build` reads
    records = read_records(out, "census", load_spec())
    assert records["cvegeo"].tolist() == ["07001", "07001", "19039"]
    np.testing.assert_array_equal(records["dirt_floor"], [1.0, 1.0, 0.0])


def test_iter_from_inegi_zip(tmp_path):
    import zipfile

    rows = [["20", "Oaxaca", "001", "Abejones", "0000", "Total del municipio",
             "200", "10", "10", "30", "15", "15", "3", "1", "10", "30", "6.0"]]
    csv = pd.DataFrame(rows, columns=ITER_HEADER).to_csv(index=False)
    archive = tmp_path / "iter_00_cpv2020_csv.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("diccionario_datos/diccionario_datos_iter_00CSV20.csv", "campo,desc\n")
        zf.writestr("conjunto_de_datos/conjunto_de_datos_iter_00CSV20.csv", csv)
    df = read_iter(archive)
    assert df["cvegeo"].tolist() == ["20001"]
    np.testing.assert_allclose(df["GRAPROES"], [6.0])


def test_cli_harmonise_one_table_for_every_input(tmp_path):
    from click.testing import CliRunner

    from riskmap.cli import cli

    personas = _personas_2020()
    inputs = []
    for ent in ("07", "19"):
        p = tmp_path / f"Personas{ent}.CSV"
        personas[personas["ENT"] == ent].to_csv(p, index=False)
        inputs += ["--input", str(p)]
    viviendas = tmp_path / "Viviendas.CSV"  # both states in one file, given once
    _viviendas_2020().to_csv(viviendas, index=False)
    out = tmp_path / "census.csv"
    result = CliRunner().invoke(cli, ["harmonise", "--mapping", "censo2020_ampliado", *inputs,
                                      "--table", f"dwellings={viviendas}", "-o", str(out)])
    assert result.exit_code == 0, result.output
    records = pd.read_csv(out, dtype={"cvegeo": str})
    assert records["cvegeo"].tolist() == ["07001", "07001", "19039"]
    np.testing.assert_array_equal(records["dirt_floor"], [1.0, 1.0, 0.0])
