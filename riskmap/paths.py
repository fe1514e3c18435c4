"""Where the project's committed resources live: model specs, templates, translations, docs.

Two layouts hold the same files:

* a checkout (git clone, worktree, editable install): the top-level ``models/``,
  ``templates/`` and ``docs/`` folders sit next to the ``riskmap/`` package and are the
  source, used directly so that an edit shows at once;
* an installed wheel: ``setup.py`` maps those folders into the package as ``riskmap/models``,
  ``riskmap/templates`` and ``riskmap/docs``; they are found with :mod:`importlib.resources`.

:func:`resource_dir` picks the checkout's folder when the package runs from a checkout, else
the package data. Everything that reads a committed resource goes through it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: The folder holding the ``riskmap`` package (a checkout's root, or site-packages).
ROOT = Path(__file__).resolve().parent.parent

#: Top-level folders of a checkout that the wheel carries inside the package.
CHECKOUT_FOLDERS = ("models", "templates", "docs")


def is_checkout(root: Path | None = None) -> bool:
    """Whether ``root`` (default :data:`ROOT`) is the riskmap source tree.

    The test is that its ``pyproject.toml`` names the project, so that a stray ``templates/``
    folder in site-packages is never taken for the checkout's.
    """
    project = (ROOT if root is None else root) / "pyproject.toml"
    try:
        return project.is_file() and 'name = "riskmap"' in project.read_text(encoding="utf-8")
    except OSError:
        return False


def resource_dir(name: str) -> Path:
    """The folder of a committed resource, in the checkout or in the installed package.

    Parameters
    ----------
    name : str
        A top-level folder of the checkout (``"models"``, ``"templates"``, ``"docs"``), or a
        folder inside the package given with ``/`` (``"web/translations"``, ``"web/static"``).

    Returns
    -------
    pathlib.Path
        The checkout's folder when the package runs from a checkout that has it, else the
        package data installed with the wheel.
    """
    top = name.split("/", 1)[0]
    if top in CHECKOUT_FOLDERS and (ROOT / name).is_dir() and is_checkout():
        return ROOT / name
    folder = resources.files("riskmap").joinpath(*name.split("/"))
    # Wheels install unpacked, so the package's files are real files (Flask, Babel and the
    # TOML readers need paths, not zip members).
    return Path(str(folder))


MODELS_DIR = resource_dir("models")
TEMPLATES_DIR = resource_dir("templates")
DOCS_DIR = resource_dir("docs")
TRANSLATIONS_DIR = resource_dir("web/translations")
STATIC_DIR = resource_dir("web/static")
DEFAULT_SPEC = MODELS_DIR / "mirti.toml"
#: The method document, served by the methodology page.
METHOD_DOC = DOCS_DIR / "METHOD.md"
