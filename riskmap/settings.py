"""One settings table: every setting has a name, a type, a default and help text.

Unknown or ill-typed settings given in code, and ill-typed ones in the environment, fail at
start-up with :class:`~riskmap.errors.ConfigError`. Environment variables with the
``RISKMAP_`` prefix override defaults (``RISKMAP_DATA_DIR=/srv/riskmap``); an unknown
``RISKMAP_*`` variable (a typo, or one meant for the tests such as ``RISKMAP_MX_DIR``) only
warns, once per process.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any, Callable

from .errors import ConfigError


@dataclass(frozen=True)
class Setting:
    name: str
    type: Callable[[str], Any]
    default: Any
    help: str


def _bool(value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on", "si", "sí"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


SETTINGS: tuple[Setting, ...] = (
    Setting("data_dir", str, "data", "Directory holding published editions, geography and demo inputs."),
    Setting("auto_demo", _bool, True, "Build the synthetic demo when `riskmap serve` or "
            "wsgi.py starts on a data directory holding no edition."),
    Setting("demo_seed", int, 20240601, "Seed of the synthetic demo built automatically."),
    Setting("default_language", str, "es", "Interface language when the browser does not ask for one (es or en)."),
    Setting("tile_url", str, "", "Base-map tile URL template for deployments with a tile server; empty = no tiles."),
    Setting("tile_attribution", str, "", "Attribution shown with the base-map tiles."),
    Setting("min_records", int, 30, "Minimum census child records for a municipality to be classified."),
    Setting("bootstrap", int, 200, "Parametric bootstrap replicates B of the EBP estimator (riskmap build --estimator ebp)."),
    Setting("bootstrap_seed", int, 20240601, "Seed of the EBP parametric bootstrap."),
    Setting("page_size", int, 500, "Default page size of paginated API listings."),
    Setting("max_page_size", int, 5000, "Largest page size a client may ask for."),
    Setting("cache_max_age", int, 3600, "Seconds browsers may cache geometry and static assets."),
    Setting("cache_bytes", int, 128 * 2**20, "Bytes of rendered pages and API answers each worker keeps in memory (LRU); 0 disables the response cache."),
    Setting("cache_check_seconds", float, 1.0, "At most this often (seconds) a worker looks at the data directory's files for a new publication."),
    Setting("database_url", str, "", "SQLAlchemy URL of the inspection-outcomes database (e.g. postgresql+psycopg://user@host/db); empty = SQLite at <data_dir>/riskmap.sqlite."),
    Setting("secret_key", str, "", "Key signing session cookies and CSRF tokens; empty = a random key kept in <data_dir>/.riskmap_secret_key."),
    Setting("https", _bool, False, "The service is reached over HTTPS: session cookies are marked Secure."),
    Setting("establishments_file", str, "", "CSV cvegeo,count of inspectable workplaces per municipality for targeting (K_m); empty = 0.2 x children."),
)

_BY_NAME = {s.name: s for s in SETTINGS}
ENV_PREFIX = "RISKMAP_"
_WARNED: set[str] = set()


def resolve(overrides: dict | None = None, environ: dict | None = None) -> dict:
    """Return every setting's value: defaults, then ``RISKMAP_*`` environment, then overrides.

    Parameters
    ----------
    overrides : dict, optional
        Values given in code (tests, ``create_app(config)``); keys are setting names, any case.
    environ : dict, optional
        Environment to read; defaults to :data:`os.environ`.

    Raises
    ------
    ConfigError
        For an unknown setting in ``overrides`` or a value of the wrong type.

    Warns
    -----
    UserWarning
        Once per process for each unknown ``RISKMAP_*`` environment variable (ignored).
    """
    environ = os.environ if environ is None else environ
    values = {s.name: s.default for s in SETTINGS}
    for key, raw in environ.items():
        if key.startswith(ENV_PREFIX):
            name = key[len(ENV_PREFIX):].lower()
            if name not in _BY_NAME:
                if key not in _WARNED:
                    _WARNED.add(key)
                    warnings.warn(f"ignoring unknown environment variable {key}; settings: "
                                  + ", ".join(ENV_PREFIX + n.upper() for n in _BY_NAME),
                                  stacklevel=2)
                continue
            values[name] = _convert(_BY_NAME[name], raw, key)
    for key, raw in (overrides or {}).items():
        name = key.lower()
        if name not in _BY_NAME:
            raise ConfigError(f"unknown setting {key!r}; known: " + ", ".join(_BY_NAME))
        values[name] = _convert(_BY_NAME[name], raw, key)
    return values


def _convert(setting: Setting, raw, key: str):
    try:
        return setting.type(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {key}: {exc}; expected {setting.type.__name__}") from None
