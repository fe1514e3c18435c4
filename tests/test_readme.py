"""The README says what the code does: --data-dir, the command list, the harmonise example,
the test command that .ci/run runs."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click

from riskmap.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands() -> dict[str, click.Command]:
    return dict(cli.commands)


def test_readme_names_exactly_the_commands_that_take_data_dir():
    sentence = re.search(r"Every command that reads or writes the data\s+directory \(([^)]*)\)",
                         README)
    assert sentence, "README lost its --data-dir sentence"
    listed = set(re.findall(r"`([a-z-]+)`", sentence.group(1)))
    def takes(cmd) -> bool:
        # a group (users, outcomes) takes it when every subcommand does
        subs = getattr(cmd, "commands", None)
        if subs:
            return all(takes(c) for c in subs.values())
        return any(p.name == "data_dir" for p in cmd.params)

    with_option = {name for name, cmd in _commands().items() if takes(cmd)}
    assert listed == with_option
    without = set(_commands()) - with_option
    assert without and all(f"`{name}`" in README.split(sentence.group(0))[1][:200]
                           for name in without), without


def test_every_command_is_in_the_readme_table_and_the_cli_docstring():
    import riskmap.cli as package

    for name in _commands():
        assert f"| `riskmap {name}" in README, name
        assert name in package.__doc__, name


def test_readme_harmonise_example_uses_the_mappings_table_names():
    from riskmap.inegi.mapping import load_mapping

    line = next(ln for ln in README.splitlines() if ln.startswith("riskmap harmonise "))
    args = shlex.split(line)
    mapping = load_mapping(args[args.index("--mapping") + 1])
    tables = [args[i + 1].split("=", 1)[0] for i, a in enumerate(args) if a == "--table"]
    assert tables and set(tables) <= set(mapping.tables), (tables, sorted(mapping.tables))


def test_ci_runs_the_readme_test_command_verbatim():
    block = re.search(r"Install and run the tests[^\n]*\n\n```\n(.+?)\n```", README)
    assert block, "README lost its test command"
    command = block.group(1).strip()
    assert "pytest" in command
    ci_lines = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in ci_lines
