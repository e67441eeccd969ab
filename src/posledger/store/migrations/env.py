"""Alembic environment: migrations run on the connection posledger hands over."""

from __future__ import annotations

from alembic import context

from posledger.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run posledger migrations through `posledger migrate`")

# posledger runs migrations holding a database-wide lock (store/database.py), so two
# processes never create or upgrade the schema at once.
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
