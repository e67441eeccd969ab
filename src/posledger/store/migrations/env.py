"""Alembic environment: migrations run on the connection posledger hands over."""

from __future__ import annotations

from alembic import context

from posledger.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run posledger migrations through `posledger migrate`")

# Two processes that open an empty database at once must not both create the schema:
# on the servers, migrations run under a database-wide lock (SQLite's write lock does the
# same there, and the loser sees the winner's schema: see store/database.py).
dialect = connection.dialect.name
if dialect == "postgresql":
    connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7061726)")
elif dialect in ("mysql", "mariadb"):
    connection.exec_driver_sql("SELECT GET_LOCK('posledger-migrate', 600)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
try:
    with context.begin_transaction():
        context.run_migrations()
finally:
    if dialect in ("mysql", "mariadb"):
        connection.exec_driver_sql("SELECT RELEASE_LOCK('posledger-migrate')")
