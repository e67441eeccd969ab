"""The symbol map (docs/venues/README.md, Symbol map): a venue's symbol on an account is
an instrument.

Every step checks what is already there first (migrations/steps.py): MariaDB cannot roll
DDL back, so a ``migrate`` killed half-way must be able to run again from where it stopped.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from posledger.store.migrations.steps import create_index, create_table, table_options

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_table(
        "symbols",
        sa.Column("venue", sa.String(length=128), nullable=False),
        sa.Column("account", sa.String(length=128), nullable=False),
        sa.Column("symbol", sa.String(length=128), nullable=False),
        sa.Column("instrument", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("venue", "account", "symbol"),
        **table_options(),
    )
    # What maps to an instrument (an executor turning commands into venue orders).
    create_index("ix_symbols_instrument", "symbols", ["venue", "account", "instrument"])


def downgrade() -> None:
    op.drop_table("symbols")
