"""The settings table: unknown environment variables warn once; ill-typed values fail."""

from __future__ import annotations

import warnings

import pytest

from riskmap import settings
from riskmap.errors import ConfigError


def test_unknown_environment_variable_warns_once(monkeypatch):
    monkeypatch.setattr(settings, "_WARNED", set())
    env = {"RISKMAP_MX_DIR": "/somewhere", "RISKMAP_PAGE_SIZE": "7"}
    with pytest.warns(UserWarning, match="ignoring unknown environment variable RISKMAP_MX_DIR"):
        values = settings.resolve(environ=env)
    assert values["page_size"] == 7 and "mx_dir" not in values
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        settings.resolve(environ=env)  # the second time is silent


def test_ill_typed_or_unknown_in_code_still_fail():
    with pytest.raises(ConfigError, match="RISKMAP_PAGE_SIZE"):
        settings.resolve(environ={"RISKMAP_PAGE_SIZE": "many"})
    with pytest.raises(ConfigError, match="unknown setting 'pagesize'"):
        settings.resolve({"pagesize": 3}, environ={})


def test_create_app_and_commands_start_with_an_unknown_variable(monkeypatch, tmp_path, capsys):
    from riskmap.cli import main
    from riskmap.web import create_app

    monkeypatch.setenv("RISKMAP_NOT_A_SETTING", "1")
    monkeypatch.setattr(settings, "_WARNED", set())
    with pytest.warns(UserWarning, match="RISKMAP_NOT_A_SETTING"):
        app = create_app({"data_dir": str(tmp_path), "auto_demo": False})
    assert app.config["RISKMAP"]["data_dir"] == str(tmp_path)
    monkeypatch.setenv("RISKMAP_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(settings, "_WARNED", set())
    with pytest.raises(SystemExit) as exc:
        main(["show", "--edition", "2023"])
    err = capsys.readouterr().err
    assert "riskmap: warning: ignoring unknown environment variable RISKMAP_NOT_A_SETTING" in err
    assert "unknown setting" not in err and exc.value.code == 2  # no such edition, not config
