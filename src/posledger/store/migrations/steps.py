"""Migration steps that look before they change anything, so that a revision can run again.

MariaDB and MySQL commit every DDL statement on its own: a ``migrate`` killed half-way
through a revision leaves that revision's first tables, columns and indexes in place and
its version stamp not yet moved (Alembic moves the stamp after the revision's last step,
and MariaDB commits the stamp with the next DDL statement). The next ``migrate`` runs the
revision again from its start, so every step here does only what is missing: a table,
column, index or sequence that exists is left as it is, and data steps insert only the
rows still missing. SQLite and PostgreSQL run the whole upgrade in one transaction, which
a kill rolls back; these checks cost them nothing but a look at the catalog.

Revisions use these helpers instead of ``op.create_table`` and friends directly.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Connection

__all__ = [
    "add_column",
    "columns",
    "create_index",
    "create_sequence",
    "create_table",
    "dialect",
    "has_sequence",
    "indexes",
    "is_mariadb",
    "table_collations",
    "table_options",
    "tables",
]


def _bind() -> Connection:
    return op.get_bind()


def dialect() -> str:
    return _bind().dialect.name


def is_mariadb() -> bool:
    """MariaDB or MySQL: the databases whose DDL is not transactional."""
    return dialect() in ("mysql", "mariadb")


def tables() -> set[str]:
    return set(sa.inspect(_bind()).get_table_names())


def columns(table: str) -> set[str]:
    return {column["name"] for column in sa.inspect(_bind()).get_columns(table)}


def indexes(table: str) -> set[str]:
    return {index["name"] or "" for index in sa.inspect(_bind()).get_indexes(table)}


def has_sequence(name: str) -> bool:
    bind = _bind()
    return bool(bind.dialect.has_sequence(bind, name))


def table_options() -> dict[str, Any]:
    """Tables created from revision 0005 on compare identifiers exactly on MariaDB (0004
    converted the older ones)."""
    if is_mariadb():
        return {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
    return {}


def table_collations() -> dict[str, str]:
    """MariaDB/MySQL: each table of the current database and its collation."""
    found = _bind().execute(
        sa.text(
            "SELECT table_name, table_collation FROM information_schema.tables "
            "WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'"
        )
    )
    return {str(name): str(collation or "") for name, collation in found}


def create_table(name: str, *elements: Any, **options: Any) -> bool:
    """Create the table unless it exists (CREATE TABLE is atomic everywhere, so a table
    that exists was created whole, with its inline constraints). True if created."""
    if name in tables():
        return False
    op.create_table(name, *elements, **options)
    return True


def add_column(table: str, column: sa.Column[Any]) -> bool:
    if column.name in columns(table):
        return False
    op.add_column(table, column)
    return True


def create_index(name: str, table: str, names: list[str], **options: Any) -> bool:
    if name in indexes(table):
        return False
    op.create_index(name, table, names, **options)
    return True


def create_sequence(name: str, table: str, column: str) -> bool:
    """A server sequence whose next value is after the largest ``column`` of ``table``.

    A sequence that exists already is never restarted, only moved forward if rows were
    numbered past it meanwhile (it never goes back: numbers it handed out stay unique).
    True if created."""
    bind = _bind()
    largest = int(
        bind.execute(sa.text(f"SELECT coalesce(max({column}), 0) FROM {table}")).scalar_one()
    )
    if not has_sequence(name):
        op.execute(f"CREATE SEQUENCE {name} START WITH {largest + 1}")
        return True
    if largest == 0:
        return False
    if dialect() == "postgresql":
        following = bind.execute(
            sa.text(
                f"SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM {name}"
            )
        ).scalar_one()
        if int(following) <= largest:
            bind.execute(sa.text(f"SELECT setval('{name}', {largest})"))
    else:  # MariaDB's SETVAL ignores a value below the sequence's current one
        bind.execute(sa.text(f"SELECT SETVAL({name}, {largest})"))
    return False
