"""Checkpoints: the books saved every so many journal entries, so that the ledger as of a
time replays only the entries after the last one before then (docs/format.md, As of a
time). A cache of the projections: ``rebuild`` deletes them.

Every step checks what is already there first (migrations/steps.py): MariaDB cannot roll
DDL back, so a ``migrate`` killed half-way must be able to run again from where it stopped.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from posledger.store.migrations.steps import create_table, table_options

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LONG_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    create_table(
        "checkpoints",
        sa.Column("seq", ROW_ID, autoincrement=False, nullable=False),
        sa.Column("entries", sa.BigInteger(), nullable=False),
        sa.Column("recorded_at", sa.BigInteger(), nullable=False),
        sa.Column("state", LONG_TEXT, nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        **table_options(),
    )
    create_table(
        "checkpoint_orders",
        sa.Column("client_order_id", sa.String(length=128), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("state", LONG_TEXT, nullable=False),
        sa.PrimaryKeyConstraint("client_order_id", "seq", name="pk_checkpoint_orders"),
        sqlite_with_rowid=False,
        **table_options(),
    )


def downgrade() -> None:
    op.drop_table("checkpoint_orders")
    op.drop_table("checkpoints")
