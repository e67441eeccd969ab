"""The storage damage mark: a table that, while it holds a row, stops every writer.

``doctor`` writes it when it finds the storage damaged (SQLite's integrity check, or a
read the driver refuses as damaged), and so does a writer whose driver reports damage;
``posledger doctor --clear-damage`` deletes it once the database is repaired.

Every step checks what is already there first (see 0005).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _table_options() -> dict[str, Any]:
    """MariaDB tables compare identifiers exactly (see 0004)."""
    if op.get_bind().dialect.name in ("mysql", "mariadb"):
        return {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
    return {}


def upgrade() -> None:
    if "storage_damage" in set(sa.inspect(op.get_bind()).get_table_names()):
        return
    op.create_table(
        "storage_damage",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("found_at", sa.BigInteger(), nullable=False),
        sa.Column("found_by", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        **_table_options(),
    )


def downgrade() -> None:
    op.drop_table("storage_damage")
