"""Reading and validating harmonised survey and census records."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskmap.errors import InputError
from riskmap.ingest.records import join_territorial, read_records, validate_codes
from riskmap.spec import ModelSpec, load_spec

HEADER = "cvegeo,weight,strata,psu,child_labour,age,male,head_agriculture\n"
GOOD = ["01001,1.5,A,1,0,10,1,0", "07002,2,A,2,1,15,0,1", "09003,3,B,3,0,7,1,1"]


@pytest.fixture
def spec(tmp_path):
    from pipeline_inputs import SPEC_TOML

    path = tmp_path / "spec.toml"
    path.write_text(SPEC_TOML, encoding="utf-8")
    return load_spec(path)


def write(tmp_path, lines, name="survey.csv", header=HEADER, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes((header + "\n".join(lines) + "\n").encode(encoding))
    return path


def test_reads_codes_as_strings_and_types(tmp_path, spec):
    df = read_records(write(tmp_path, GOOD), "survey", spec)
    assert df["cvegeo"].tolist() == ["01001", "07002", "09003"]
    assert df["psu"].tolist() == ["1", "2", "3"]
    assert df["child_labour"].dtype.kind == "i"
    assert list(df.columns) == ["cvegeo", "weight", "strata", "psu", "child_labour", "age",
                                "male", "head_agriculture"]
    np.testing.assert_allclose(df["weight"], [1.5, 2, 3])
    assert df.attrs == {"file": "survey.csv", "first_row": 2}


def test_bom_and_extra_columns_and_spaces(tmp_path, spec):
    path = write(tmp_path, ["01001, 1.5,A,1,0,10,1,0,x"], name="bom.csv",
                 header="\ufeff" + HEADER.strip() + ",extra\n")
    df = read_records(path, "survey", spec)
    assert df.loc[0, "cvegeo"] == "01001" and "extra" not in df.columns
    np.testing.assert_allclose(df["weight"], [1.5])


def test_census_needs_no_outcome(tmp_path, spec):
    path = write(tmp_path, ["01001,4,10,1,0"], name="census.csv",
                 header="cvegeo,weight,age,male,head_agriculture\n")
    df = read_records(path, "census", spec)
    assert list(df.columns) == ["cvegeo", "weight", "age", "male", "head_agriculture"]


def test_parquet_round_trip_and_numeric_codes(tmp_path, spec):
    df = read_records(write(tmp_path, GOOD), "survey", spec)
    df.to_parquet(tmp_path / "s.parquet")
    back = read_records(tmp_path / "s.parquet", "survey", spec)
    pd.testing.assert_frame_equal(back, df, check_like=False)
    assert back.attrs["first_row"] == 1
    df.assign(cvegeo=df["cvegeo"].astype(int)).to_parquet(tmp_path / "n.parquet")
    with pytest.raises(InputError, match=r"n.parquet, column 'cvegeo', row 1: codes must be "
                                         r"5-digit strings, e.g. '01001'"):
        read_records(tmp_path / "n.parquet", "survey", spec)


@pytest.mark.parametrize("lines, pattern", [
    (["1001,1.5,A,1,0,10,1,0"], r"column 'cvegeo', row 2: codes must be 5-digit strings, "
                                r"e.g. '01001'; found '1001' \(leading zeros lost"),
    ([GOOD[0], "AB123,1,A,1,0,10,1,0"], r"column 'cvegeo', row 3: .*found 'AB123'"),
    ([GOOD[0], GOOD[1], "01001,0,A,1,0,10,1,0"], r"column 'weight', row 4: .*positive"),
    (["01001,-2,A,1,0,10,1,0"], r"column 'weight', row 2: .*found '-2'"),
    (["01001,inf,A,1,0,10,1,0"], r"column 'weight', row 2"),
    (["01001,1,A,1,2,10,1,0"], r"column 'child_labour', row 2: the outcome must be 0 or 1, "
                               r"found '2'"),
    (["01001,1,A,1,si,10,1,0"], r"column 'child_labour', row 2: expected a number, "
                                r"found 'si'"),
    (["01001,1,A,1,0,diez,1,0"], r"column 'age', row 2: expected a number, found 'diez'"),
    ([GOOD[0], "01001,1,A,1,0,,1,0"], r"column 'age', row 3: missing value"),
    (["01001,1,A,1,0,NaN,1,0"], r"column 'age', row 2: missing value"),
    (["01001,1,,1,0,10,1,0"], r"column 'strata', row 2: missing strata"),
    (["01001,1,A,,0,10,1,0"], r"column 'psu', row 2: missing psu"),
])
def test_bad_values_name_column_and_row(tmp_path, spec, lines, pattern):
    with pytest.raises(InputError, match="survey.csv, " + pattern):
        read_records(write(tmp_path, lines), "survey", spec)


def test_misspelt_and_missing_columns_suggest_names(tmp_path, spec):
    header = HEADER.replace("child_labour", "child_labor").replace(",psu", ",PSU")
    path = write(tmp_path, GOOD, header=header)
    with pytest.raises(InputError, match=r"column 'psu': missing column\(s\) 'psu' \(found "
                                         r"'PSU': rename it to 'psu'\?\), 'child_labour' "
                                         r"\(found 'child_labor'"):
        read_records(path, "survey", spec)
    path = write(tmp_path, ["01001,1"], name="c.csv", header="cvegeo,weight\n")
    with pytest.raises(InputError, match=r"c.csv, column 'age': missing column\(s\) 'age', "
                                         r"'male', 'head_agriculture'; expected"):
        read_records(path, "census", spec)


def test_empty_header_only_and_missing_files(tmp_path, spec):
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(InputError, match=r"empty.csv: the file is empty"):
        read_records(tmp_path / "empty.csv", "survey", spec)
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf\n")
    with pytest.raises(InputError, match=r"bom.csv: the file is empty"):
        read_records(tmp_path / "bom.csv", "survey", spec)
    with pytest.raises(InputError, match=r"header.csv: the file has a header but no records"):
        read_records(write(tmp_path, [], name="header.csv"), "survey", spec)
    with pytest.raises(InputError, match=r"nowhere.csv: file not found"):
        read_records(tmp_path / "nowhere.csv", "survey", spec)
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match=r"bad.parquet: not a readable Parquet file"):
        read_records(tmp_path / "bad.parquet", "survey", spec)


def test_latin1_file_is_rejected_with_offset_and_row(tmp_path, spec):
    lines = [GOOD[0], GOOD[1]]
    path = write(tmp_path, lines, name="latin.csv",
                 header=HEADER.strip() + ",municipio\n", encoding="utf-8")
    raw = path.read_bytes().replace(b"0,10,1,0\n", b"0,10,1,0,Pe\xf1\xf3n\n", 1)
    path.write_bytes(raw)
    offset = raw.index(b"\xf1")
    with pytest.raises(InputError, match=rf"latin.csv, row 2: not valid UTF-8: byte 0xf1 at "
                                         rf"byte offset {offset}; save the file as UTF-8"):
        read_records(path, "survey", spec)


def test_validate_codes_lists_unknown(tmp_path, spec):
    df = read_records(write(tmp_path, GOOD), "survey", spec)
    validate_codes(df, ["01001", "07002", "09003"])
    with pytest.raises(InputError, match=r"survey.csv, column 'cvegeo': 2 municipality "
                                         r"code\(s\) not in the boundaries \(2 records\): "
                                         r"'07002' \(row 3\), '09003' \(row 4\)"):
        validate_codes(df, ["01001"])
    many = pd.DataFrame({"cvegeo": [f"{i:05d}" for i in range(1, 16)]})
    with pytest.raises(InputError, match=r"and 5 more") as info:
        validate_codes(many, [], file="x.csv")
    assert len(info.value.errors) == 15


def test_territorial_covariates_join_from_rasters(tmp_path):
    spec = ModelSpec.from_dict({"covariates": [
        {"name": "age", "kind": "record", "domain": "d", "label_es": "e", "label_en": "a",
         "definition_es": "", "definition_en": ""},
        {"name": "cropland", "kind": "territorial", "domain": "d", "label_es": "c",
         "label_en": "c", "definition_es": "", "definition_en": ""}]})
    path = write(tmp_path, ["01001,1,10", "07002,2,11"], name="c.csv",
                 header="cvegeo,weight,age\n")
    values = pd.Series([0.25, 0.75], index=["01001", "07002"])
    df = read_records(path, "census", spec, territorial={"cropland": values})
    np.testing.assert_allclose(df["cropland"], [0.25, 0.75])
    with pytest.raises(InputError, match=r"column 'cropland': missing column.*rasters "
                                         r"\(--raster NAME=FILE\)"):
        read_records(path, "census", spec)
    # a code the raster summary does not know: the record's code is the problem
    with pytest.raises(InputError, match=r"c.csv, column 'cvegeo', row 3: municipality code "
                                         r"'07002' is not in the boundaries, so territorial "
                                         r"covariate 'cropland' has no value"):
        read_records(path, "census", spec, territorial={"cropland": values.iloc[:1]})
    # a known municipality without a valid raster cell: the covariate is the problem
    with pytest.raises(InputError, match=r"c.csv, column 'cropland', row 3: territorial "
                                         r"covariate has no value for municipality '07002' "
                                         r"\(no valid raster cell"):
        read_records(path, "census", spec,
                     territorial={"cropland": values.where(values.index != "07002")})
    plain = df.drop(columns="cropland")
    np.testing.assert_allclose(join_territorial(plain, spec, {"cropland": values})["cropland"],
                               [0.25, 0.75])
    with pytest.raises(InputError, match="neither columns"):
        join_territorial(plain, spec, None)


@pytest.mark.parametrize("sep", [";", "\t"])
def test_semicolon_and_tab_delimited_files(tmp_path, spec, sep):
    lines = [ln.replace(",", sep) for ln in GOOD]
    df = read_records(write(tmp_path, lines, header=HEADER.replace(",", sep)), "survey", spec)
    assert df["cvegeo"].tolist() == ["01001", "07002", "09003"]
    np.testing.assert_allclose(df["weight"], [1.5, 2, 3])


def test_validate_codes_uses_positions_not_index_labels():
    df = pd.DataFrame({"cvegeo": ["01001", "09999"]}, index=pd.Index([50, 70], name="cvegeo"))
    with pytest.raises(InputError, match=r"x.csv, column 'cvegeo': 1 municipality .*"
                                         r"'09999' \(row 3\)"):
        validate_codes(df, ["01001"], file="x.csv")


def test_utf16_file_is_named_as_such(tmp_path, spec):
    path = tmp_path / "u16.csv"
    path.write_bytes((HEADER + GOOD[0] + "\n").encode("utf-16"))
    with pytest.raises(InputError, match=r"u16.csv: the file is UTF-16 encoded; save it as "
                                         r"CSV UTF-8"):
        read_records(path, "survey", spec)


@pytest.mark.parametrize("variant", ["plain", "crlf_bom_spaces", "semicolon_quoted_extra"])
def test_fast_csv_reading_equals_the_careful_reader(tmp_path, spec, variant, monkeypatch):
    """A well-formed CSV skips the all-text reading and gives exactly the same records."""
    import riskmap.ingest.records as records

    if variant == "plain":
        path = write(tmp_path, GOOD)
    elif variant == "crlf_bom_spaces":
        path = tmp_path / "survey.csv"
        text = HEADER.replace("\n", "\r\n") + "\r\n".join(
            ["01001, 1.5, A, 1, 0, 10, 1, 0", " 07002,2 ,A,2,1,15,0,1", "09003,3,B,3,0,7,1,1"])
        path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8") + b"\r\n")
    else:
        header = "nom_mun;" + HEADER.replace(",", ";")
        lines = ['"Peñón, El";' + ln.replace(",", ";").replace(";10;", ';"10";')
                 for ln in GOOD]
        path = write(tmp_path, lines, header=header)
    careful = records._validate(records._read_csv(path), "survey", spec, {},
                                list(records.BASE_COLUMNS["survey"]) + spec.names,
                                path.name, 2)

    def no_text_reading(p):
        raise AssertionError("the careful reader was used on a well-formed file")

    monkeypatch.setattr(records, "_read_csv", no_text_reading)
    fast = read_records(path, "survey", spec)
    pd.testing.assert_frame_equal(fast, careful)
    assert fast.attrs == careful.attrs == {"file": "survey.csv", "first_row": 2}


def test_fast_csv_falls_back_to_name_the_value_as_written(tmp_path, spec):
    # '-2' parses as a number, so the fast reader accepts the file; the message must still
    # show the value as written (not -2.0) with its row
    lines = GOOD[:1] + ["07002,-2,A,2,1,15,0,1"]
    with pytest.raises(InputError, match=r"column 'weight', row 3: .*found '-2'$"):
        read_records(write(tmp_path, lines), "survey", spec)
    # a value that is not a number stops the fast reader; the careful one names it
    lines = GOOD[:1] + ["07002,2,A,2,1,doce,0,1"]
    with pytest.raises(InputError, match=r"column 'age', row 3: expected a number, "
                                         r"found 'doce'"):
        read_records(write(tmp_path, lines), "survey", spec)
