"""Identifiers compare exactly on MariaDB/MySQL: binary collation on every table.

The server default (utf8mb4_general_ci) compares text case- and accent-insensitively:
exec ids "a1" and "A1" would be one key, and the second fill taken for a duplicate.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

from posledger.store.migrations.steps import is_mariadb, table_collations

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLES = (
    "accounts",
    "instruments",
    "strategies",
    "orders",
    "fills",
    "journal",
    "streams",
    "slots",
    "trades",
    "trade_fills",
    "marks",
    "anomalies",
    "rejected_inputs",
    "transfers",
    "adjustments",
    "reconciliation_checks",
    "halts",
)


def upgrade() -> None:
    if not is_mariadb():
        return
    # Each ALTER commits on its own: a second run converts only what the first did not.
    collations = table_collations()
    for table in TABLES:
        if collations.get(table) != "utf8mb4_bin":
            op.execute(f"ALTER TABLE {table} CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")


def downgrade() -> None:
    if op.get_bind().dialect.name not in ("mysql", "mariadb"):
        return
    for table in TABLES:
        op.execute(
            f"ALTER TABLE {table} CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
        )
