"""WSGI entry point for production: ``gunicorn wsgi:app`` (settings from RISKMAP_* variables)."""

from riskmap.web import create_app

app = create_app()
