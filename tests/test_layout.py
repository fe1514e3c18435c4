"""Import structure of the web package: no cycle between the API and its OpenAPI document,
and no submodule reaches into the app factory for helpers."""

from __future__ import annotations

import ast
from pathlib import Path

import riskmap.web

WEB = Path(riskmap.web.__file__).resolve().parent


def _imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) of every relative ``from . import`` / ``from .x import`` in a file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            out += [(node.module or "", a.name) for a in node.names]
    return out


def test_web_submodules_do_not_import_helpers_from_the_factory():
    submodules = {p.stem for p in WEB.glob("*.py")} | {p.name for p in WEB.iterdir() if p.is_dir()}
    for path in WEB.glob("*.py"):
        if path.name == "__init__.py":
            continue
        bad = [name for module, name in _imports(path) if module == "" and name not in submodules]
        assert not bad, f"{path.name} imports {bad} from the factory package"


def test_api_and_openapi_do_not_import_each_other_both_ways():
    api = {m for m, _ in _imports(WEB / "api.py")}
    openapi = {m for m, _ in _imports(WEB / "openapi.py")}
    assert not ("openapi" in api and "api" in openapi)
    assert "api" not in openapi
