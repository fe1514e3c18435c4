"""Alembic environment: migrations run on the connection riskmap hands over (never a URL
from a config file), so the same code upgrades SQLite and PostgreSQL."""

from alembic import context

from riskmap.outcomes.db import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
context.run_migrations()
