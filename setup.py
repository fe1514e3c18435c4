"""Package layout for setuptools (the project's metadata is in pyproject.toml).

The checkout keeps ``templates/``, ``models/`` and ``docs/`` at the top level, where editors
and reviewers expect them; the wheel carries them inside the package as ``riskmap/templates``,
``riskmap/models`` and ``riskmap/docs`` so that an installed riskmap runs from any directory.
:func:`riskmap.paths.resource_dir` finds them in either layout.
"""

from setuptools import find_packages, setup

#: Top-level folders of the checkout mapped into the package (data only, no Python code).
DATA_PACKAGES = {
    "riskmap.templates": "templates",
    "riskmap.models": "models",
    "riskmap.models.sources": "models/sources",
    "riskmap.docs": "docs",
}

setup(
    packages=find_packages(include=["riskmap", "riskmap.*"]) + list(DATA_PACKAGES),
    package_dir=DATA_PACKAGES,
    package_data={
        "riskmap.templates": ["**/*.html"],
        "riskmap.models": ["*.toml"],
        "riskmap.models.sources": ["*.toml"],
        "riskmap.docs": ["METHOD.md"],
        "riskmap.web": ["static/**/*", "translations/*/LC_MESSAGES/*.mo"],
        "riskmap.outcomes.migrations": ["script.py.mako"],
    },
)
