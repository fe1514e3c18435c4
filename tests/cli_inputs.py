"""Command-line helpers shared by test_cli and test_bad_input."""

from __future__ import annotations

import pytest

from riskmap.cli import main
from pipeline_inputs import write_inputs


def run(argv, capsys):
    """Run the CLI; return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def build_args(paths, data, edition="2023", *extra):
    """``riskmap build`` arguments for the inputs of :func:`pipeline_inputs.write_inputs`."""
    return ["build", "--edition", edition, "--survey", paths["survey"], "--census",
            paths["census"], "--boundaries", paths["boundaries"], "--spec", paths["spec"],
            "--vintage", "grid", "--data-dir", data, *extra]


def published_data(root, *extra):
    """Write inputs under ``root/in``, build edition 2023 into ``root/data``; return that."""
    paths = write_inputs(root / "in")
    data = root / "data"
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in build_args(paths, data, "2023", *extra)])
    assert exc.value.code == 0
    return data
