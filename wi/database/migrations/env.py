"""Alembic environment: runs on the connection ``wi.database.migrate`` hands over.

Importing each room's tables registers them on SQLModel.metadata, which autogenerate compares against.
"""

from alembic import context
from sqlmodel import SQLModel

import wi.auth.tables
import wi.engine.tables
import wi.registry.tables  # noqa: F401

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=SQLModel.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
