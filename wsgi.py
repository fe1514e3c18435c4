"""WSGI entry point in a checkout: ``gunicorn wsgi:app`` (settings from RISKMAP_* variables).

An installed riskmap (wheel) needs no file: ``gunicorn 'riskmap.web:create_app()'``.
"""

from riskmap.web import create_app

app = create_app()
