"""Where the project's committed resources live (model specs, templates)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = ROOT / "models"
TEMPLATES_DIR = ROOT / "templates"
DEFAULT_SPEC = MODELS_DIR / "mirti.toml"
