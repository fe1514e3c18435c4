"""WSGI entry point in a checkout: ``gunicorn wsgi:app`` (settings from RISKMAP_* variables).
An installed riskmap (wheel) needs no file: ``gunicorn 'riskmap.web:create_app()'``.

As ``riskmap serve`` does, it first builds the synthetic demo into an empty data directory when
the ``auto_demo`` setting is on (``RISKMAP_AUTO_DEMO=0`` turns that off); the app factory itself
never builds data.
"""

from riskmap.demo.ensure import ensure_demo_from_settings
from riskmap.settings import resolve
from riskmap.web import create_app

ensure_demo_from_settings(resolve())
app = create_app()
