"""The storage damage mark: a table that, while it holds a row, stops every writer.

``doctor`` writes it when it finds the storage damaged (SQLite's integrity check, or a
read the driver refuses as damaged), and so does a writer whose driver reports damage;
``posledger doctor --clear-damage`` deletes it once the database is repaired.

Every step checks what is already there first (migrations/steps.py).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from posledger.store.migrations.steps import create_table, table_options

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_table(
        "storage_damage",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("found_at", sa.BigInteger(), nullable=False),
        sa.Column("found_by", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        **table_options(),
    )


def downgrade() -> None:
    op.drop_table("storage_damage")
