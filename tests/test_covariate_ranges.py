"""Covariate values outside the valid range the model spec declares are refused when records
are read, with one line naming the file, the column and the row."""

from __future__ import annotations

import pandas as pd
import pytest

from riskmap.errors import InputError
from riskmap.ingest.records import read_records
from riskmap.spec import load_spec

HEADER = "cvegeo,weight,strata,psu,child_labour,age,male,head_agriculture\n"
GOOD = ["01001,1.5,A,1,0,10,1,0", "07002,2,A,2,1,17,0,1", "09003,3,B,3,0,5,1,1"]
RANGES = {"age": "min = 5\nmax = 17", "male": "values = [0, 1]",
          "head_agriculture": "values = [0, 1]"}


@pytest.fixture
def spec(tmp_path):
    from pipeline_inputs import SPEC_TOML

    text = SPEC_TOML
    for name, rule in RANGES.items():  # the test spec, with valid ranges
        anchor = f'name = "{name}"\n'
        block = text[text.index(anchor):]
        end = block.index("definition_en")
        end = block.index("\n", end) + 1
        text = text.replace(block[:end], block[:end] + rule + "\n", 1)
    path = tmp_path / "spec.toml"
    path.write_text(text, encoding="utf-8")
    return load_spec(path)


def _write(tmp_path, lines, name="survey.csv"):
    path = tmp_path / name
    path.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_spec_declares_ranges_and_default_spec_has_them(spec):
    age = spec.covariate("age")
    assert (age.min, age.max, age.values) == (5.0, 17.0, None)
    assert spec.covariate("male").values == (0.0, 1.0)
    default = load_spec()
    assert (default.covariate("age").min, default.covariate("age").max) == (5.0, 17.0)
    indicators = [c.name for c in default.covariates if c.values == (0.0, 1.0)]
    assert set(indicators) == {"male", "attends_school", "indigenous_language", "rural",
                               "head_agriculture", "head_social_security", "dirt_floor"}
    assert default.covariate("household_size").min == 1.0
    assert default.covariate("head_schooling_years").min == 0.0
    assert spec.to_dict()["covariates"][0]["max"] == 17.0  # recorded in the model card


def test_good_records_pass(tmp_path, spec):
    df = read_records(_write(tmp_path, GOOD), "survey", spec)
    assert df["age"].tolist() == [10.0, 17.0, 5.0]


@pytest.mark.parametrize("line, pattern", [
    ("01001,1,A,1,0,-3,1,0", r"column 'age', row 3: expected from 5 to 17 \(age\), found '-3'"),
    ("01001,1,A,1,0,45,1,0", r"column 'age', row 3: expected from 5 to 17 \(age\), found '45'"),
    ("01001,1,A,1,0,10,2,0", r"column 'male', row 3: expected 0 or 1 \(male\), found '2'"),
    ("01001,1,A,1,0,10,1,0.5", r"column 'head_agriculture', row 3: expected 0 or 1"),
])
def test_out_of_range_values_name_file_column_row(tmp_path, spec, line, pattern):
    with pytest.raises(InputError, match="survey.csv, " + pattern):
        read_records(_write(tmp_path, [GOOD[0], line]), "survey", spec)


def test_parquet_rows_count_from_one(tmp_path, spec):
    df = pd.DataFrame({"cvegeo": ["01001", "01002"], "weight": [1.0, 1.0]})
    df["age"], df["male"], df["head_agriculture"] = [6, 4], [0, 1], [1, 0]
    df.to_parquet(tmp_path / "c.parquet")
    with pytest.raises(InputError, match=r"c.parquet, column 'age', row 2: expected from 5 to "
                                         r"17 \(age\), found 4"):
        read_records(tmp_path / "c.parquet", "census", spec)


@pytest.mark.parametrize("rule, message", [("min = 'five'", "min must be a number"),
                                           ("min = 9\nmax = 3", "min 9 is above max 3"),
                                           ("values = []", "values must be a list")])
def test_ill_formed_ranges_in_the_spec(tmp_path, rule, message):
    from pipeline_inputs import SPEC_TOML

    path = tmp_path / "bad.toml"
    path.write_text(SPEC_TOML.replace('definition_en = "Age in years."',
                                      'definition_en = "Age in years."\n' + rule), "utf-8")
    with pytest.raises(InputError, match=f"covariate 'age': {message}"):
        load_spec(path)
