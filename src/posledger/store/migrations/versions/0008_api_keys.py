"""Keys of the HTTP API (docs/service.md, Keys): only a hash of each key's secret is kept,
and the journal records which key sent each input.

Every step checks what is already there first (migrations/steps.py): MariaDB cannot roll
DDL back, so a ``migrate`` killed half-way must be able to run again from where it stopped.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from posledger.store.migrations.steps import add_column, create_table, table_options

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_column("journal", sa.Column("key_id", sa.String(length=32), nullable=True))
    create_table(
        "api_keys",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=True),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("strategy", sa.String(length=128), nullable=True),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("key_id"),
        **table_options(),
    )


def downgrade() -> None:
    op.drop_table("api_keys")
    with op.batch_alter_table("journal") as batch:
        batch.drop_column("key_id")
