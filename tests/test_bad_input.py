"""Bad input through the real command line: exit 2, one line naming file/column/row, no
traceback, and nothing already published changes (byte for byte)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from cli_inputs import build_args, published_data, run
from pipeline_inputs import make_frames, tree_hashes, write_inputs


def error_line(err: str) -> str:
    """The single error line; every other stderr line must be a progress step."""
    lines = err.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("riskmap: error:")]
    assert len(errors) == 1, err
    assert lines[-1] == errors[0], err
    assert all(ln.startswith("[") or ln.startswith("riskmap: warning:") for ln in lines[:-1]), err
    assert "Traceback" not in err
    return errors[0]


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A data directory with edition 2023 already published (hashes compared after)."""
    data = published_data(tmp_path_factory.mktemp("published"))
    return data, tree_hashes(data)


def _survey_census():
    survey, census, _ = make_frames()
    return survey.copy(), census.copy()


def _bad_survey(fn):
    survey, census = _survey_census()
    return fn(survey), census


def _bad_census(fn):
    survey, census = _survey_census()
    return survey, fn(census)


def _set(df, row, col, value):
    df[col] = df[col].astype(object)
    df.loc[row, col] = value
    return df


CASES = {
    "missing column": (_bad_survey(lambda s: s.drop(columns="weight")),
                       r"survey.csv, column 'weight': missing column\(s\) 'weight'"),
    "misspelt column": (_bad_survey(lambda s: s.rename(columns={"child_labour": "child_labor"})),
                        r"survey.csv, column 'child_labour': missing column\(s\) 'child_labour' "
                        r"\(found 'child_labor': rename it"),
    "codes lost leading zeros": (
        _bad_census(lambda c: c.assign(cvegeo=c["cvegeo"].astype(int))),
        r"census.csv, column 'cvegeo', row 2: codes must be 5-digit strings, e.g. '01001'; "
        r"found '1001'"),
    "non-binary outcome": (_bad_survey(lambda s: _set(s, 41, "child_labour", 3)),
                           r"survey.csv, column 'child_labour', row 43: the outcome must be 0 "
                           r"or 1, found '3'"),
    "zero weight": (_bad_census(lambda c: _set(c, 9, "weight", 0)),
                    r"census.csv, column 'weight', row 11: weights must be positive"),
    "negative weight": (_bad_survey(lambda s: _set(s, 0, "weight", -1.5)),
                        r"survey.csv, column 'weight', row 2: .*found '-1.5'"),
    "non-numeric covariate": (_bad_census(lambda c: _set(c, 99, "age", "doce")),
                              r"census.csv, column 'age', row 101: expected a number, "
                              r"found 'doce'"),
    "missing covariate value": (_bad_survey(lambda s: _set(s, 5, "male", np.nan)),
                                r"survey.csv, column 'male', row 7: missing value"),
    "missing psu": (_bad_survey(lambda s: _set(s, 12, "psu", "")),
                    r"survey.csv, column 'psu', row 14: missing psu"),
    "all-zero outcome": (_bad_survey(lambda s: s.assign(child_labour=0)),
                         r"survey.csv, column 'child_labour': the outcome is 0 in every record"),
    "perfect separation": (
        _bad_survey(lambda s: s.assign(child_labour=s["head_agriculture"].astype(int))),
        r"survey.csv: .*separation"),
    "unknown municipality codes": (
        _bad_census(lambda c: _set(_set(c, 3, "cvegeo", "03001"), 4, "cvegeo", "03002")),
        r"census.csv, column 'cvegeo': 2 municipality code\(s\) not in the boundaries "
        r"\(2 records\): '03001' \(row 5\), '03002' \(row 6\)"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_records_exit_2_with_one_line(case, published, tmp_path, capsys):
    data, before = published
    (survey, census), pattern = CASES[case]
    paths = write_inputs(tmp_path / "in", survey=survey, census=census)
    code, out, err = run(build_args(paths, data), capsys)
    assert code == 2, err
    line = error_line(err)
    assert __import__("re").search(pattern, line), line
    assert tree_hashes(data) == before


@pytest.mark.parametrize("name, content, pattern", [
    ("survey", b"", r"survey.csv: the file is empty"),
    ("census", b"cvegeo,weight,age,male,head_agriculture\n",
     r"census.csv: the file has a header but no records"),
    ("survey", "cvegeo,weight,strata,psu,child_labour,age,male,head_agriculture\n"
               "01001,1,S,P,0,10,1,0\n01002,1,S,P,0,12,0,1,Peñón\n".encode("latin-1"),
     r"survey.csv, row 3: not valid UTF-8: byte 0xf1 at byte offset \d+; save the file as "
     r"UTF-8"),
    ("boundaries", b"", r"boundaries.geojson"),
])
def test_bad_files_exit_2(name, content, pattern, published, tmp_path, capsys):
    data, before = published
    paths = write_inputs(tmp_path / "in")
    paths[name].write_bytes(content)
    code, _, err = run(build_args(paths, data), capsys)
    assert code == 2, err
    assert __import__("re").search(pattern, error_line(err))
    assert tree_hashes(data) == before


def test_missing_input_file(published, tmp_path, capsys):
    data, before = published
    paths = write_inputs(tmp_path / "in")
    paths["census"] = tmp_path / "nope.csv"
    code, _, err = run(build_args(paths, data), capsys)
    assert code == 2
    assert "nope.csv: file not found" in error_line(err)


def test_single_psu_stratum_warns_and_builds(published, tmp_path, capsys):
    data, before = published
    survey, census = _survey_census()
    survey.loc[survey["psu"] == "P0", "strata"] = "S_alone"
    paths = write_inputs(tmp_path / "in", survey=survey, census=census)
    code, out, err = run(build_args(paths, tmp_path / "data", "2024"), capsys)
    assert code == 0, err
    warnings = [ln for ln in err.splitlines() if ln.startswith("riskmap: warning:")]
    assert len(warnings) == 1 and "single PSU" in warnings[0] and "S_alone" in warnings[0]
    assert "Traceback" not in err and out.startswith("published edition 2024")
    assert tree_hashes(data) == before


@pytest.mark.parametrize("argv, pattern", [
    (["export", "--edition", "2023", "--format", "pdf", "-o", "x.pdf"],
     r"invalid value 'pdf' for 'format'; allowed: csv, xlsx, geojson, gpkg, shp"),
    (["export", "--edition", "1999", "--format", "csv", "-o", "x.csv"],
     r"edition '1999' is not published; published: 2023"),
    (["export", "--edition", "2023", "--format", "csv", "--state", "31", "-o", "x.csv"],
     r"invalid value '31' for 'state'; allowed: 01, 02"),
    (["export", "--edition", "2023", "--format", "csv", "--level", "high", "-o", "x.csv"],
     r"allowed: alto, medio, bajo, sin_informacion"),
    (["show", "--edition", "nope"], r"edition 'nope' is not published"),
    (["show", "--edition", "../etc"], r"invalid edition name"),
])
def test_bad_parameters_exit_2(argv, pattern, published, tmp_path, capsys, monkeypatch):
    data, before = published
    monkeypatch.chdir(tmp_path)
    code, _, err = run(argv + ["--data-dir", data], capsys)
    assert code == 2
    assert __import__("re").search(pattern, error_line(err))
    assert not list(tmp_path.iterdir())
    assert tree_hashes(data) == before


def test_bad_raster_option(published, tmp_path, capsys):
    data, _ = published
    paths = write_inputs(tmp_path / "in")
    code, _, err = run(build_args(paths, data) + ["--raster", "nofile"], capsys)
    assert code == 2 and "NAME=FILE" in err and "Traceback" not in err
    code, _, err = run(build_args(paths, data) + ["--raster", "cropland=x.tif"], capsys)
    assert code == 2
    assert "--raster cropland: not a territorial covariate" in error_line(err)


@pytest.mark.parametrize("mutate, pattern", [
    (lambda s: s.assign(cvegeo=s["cvegeo"].astype(int)), "codes must be 5-digit strings"),
    (lambda s: s.assign(weight=-s["weight"]), "weights must be positive"),
])
def test_subprocess_exit_code_and_stderr(mutate, pattern, published, tmp_path):
    data, before = published
    survey, census = _survey_census()
    paths = write_inputs(tmp_path / "in", survey=mutate(survey), census=census)
    proc = subprocess.run([sys.executable, "-c", "from riskmap.cli import main; main()",
                           *map(str, build_args(paths, data))], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    line = error_line(proc.stderr)
    assert "survey.csv" in line and pattern in line
    assert proc.stdout == ""
    assert tree_hashes(data) == before


@pytest.mark.parametrize("which", ["survey", "census", "boundaries"])
def test_directory_instead_of_file_one_line(which, published, tmp_path, capsys):
    data, before = published
    paths = write_inputs(tmp_path / "in")
    paths[which] = tmp_path
    code, out, err = run(build_args(paths, data), capsys)
    assert code == 2
    line = error_line(err)
    assert f"'--{which}'" in line and "is a directory" in line
    assert len(err.strip().splitlines()) == 1 and "Usage:" not in err
    assert tree_hashes(data) == before


def test_boundaries_with_a_wrong_crs(published, tmp_path, capsys):
    """Projected metres labelled EPSG:4326 are named as a CRS problem of the boundary file."""
    import geopandas as gpd

    data, before = published
    paths = write_inputs(tmp_path / "in")
    bnd = gpd.read_file(paths["boundaries"]).to_crs(6372).set_crs(4326, allow_override=True)
    paths["boundaries"] = tmp_path / "in" / "wrong_crs.gpkg"
    bnd.to_file(paths["boundaries"])
    code, _, err = run(build_args(paths, data), capsys)
    assert code == 2
    line = error_line(err)
    assert "wrong_crs.gpkg: coordinates out of range for longitude/latitude" in line
    assert "CRS is wrong" in line
    assert tree_hashes(data) == before


def test_corrupt_census_parquet(published, tmp_path, capsys):
    data, before = published
    paths = write_inputs(tmp_path / "in")
    _, census = _survey_census()
    full = tmp_path / "in" / "census.parquet"
    census.to_parquet(full)
    paths["census"] = tmp_path / "in" / "broken.parquet"
    paths["census"].write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    code, _, err = run(build_args(paths, data), capsys)
    assert code == 2
    assert "broken.parquet: not a readable Parquet file" in error_line(err)
    assert tree_hashes(data) == before


def test_unknown_survey_codes_warn_and_build(published, tmp_path, capsys):
    data, before = published
    survey, census = _survey_census()
    survey = _set(survey, 4, "cvegeo", "03001")
    paths = write_inputs(tmp_path / "in", survey=survey, census=census)
    code, out, err = run(build_args(paths, tmp_path / "data", "2024"), capsys)
    assert code == 0, err
    warnings = [ln for ln in err.splitlines() if ln.startswith("riskmap: warning:")]
    assert len(warnings) == 1
    assert ("survey.csv, column 'cvegeo': 1 survey record(s) with 1 municipality code(s) not "
            "in the boundaries (first '03001', row 6)") in warnings[0]
    assert tree_hashes(data) == before


def test_read_only_data_dir(published, tmp_path, capsys, monkeypatch):
    """A data directory that cannot be written: one line naming the folder, nothing changed."""
    import errno
    import tempfile

    data, before = published
    paths = write_inputs(tmp_path / "in")
    real = tempfile.mkdtemp

    def read_only(*args, dir=None, **kwargs):
        if dir is not None and str(dir).startswith(str(data)):
            raise OSError(errno.EROFS, "Read-only file system",
                          str(__import__("pathlib").Path(dir) / ".x.gpkg.abc123.tmp"))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    code, _, err = run(build_args(paths, data), capsys)
    assert code == 2
    line = error_line(err)
    assert line == (f"riskmap: error: {data / 'editions'}: cannot write here (Read-only file "
                    "system); choose a writable --data-dir or output path")
    assert tree_hashes(data) == before
