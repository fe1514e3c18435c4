"""The synthetic demo atlas: a fictional country, its census, surveys, raster and truth.

All of it is synthetic demonstration data (datos sintéticos de demostración): it represents
no real country. See :mod:`riskmap.demo.build`.
"""

from .build import DEFAULT_SEED, DemoConfig, build_demo, build_demo_inputs
from .ensure import ensure_demo, ensure_demo_from_settings

__all__ = ["DEFAULT_SEED", "DemoConfig", "build_demo", "build_demo_inputs", "ensure_demo",
           "ensure_demo_from_settings"]
