"""Stream versions and server id sequences, for several writers on one database.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from posledger.store.migrations.steps import create_sequence, create_table, dialect

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Each step checks what exists first (see migrations/steps.py).
    create_table(
        "streams",
        sa.Column("stream", sa.String(length=256), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("stream"),
    )
    # A database written by revision 0001 already has a journal: carry its versions over
    # (the streams not carried over yet: this may be a second run of this revision).
    op.execute(
        "INSERT INTO streams (stream, version) "
        "SELECT stream, max(version) FROM journal "
        "WHERE stream NOT IN (SELECT stream FROM streams) GROUP BY stream"
    )
    if dialect() == "sqlite":
        return
    create_sequence("journal_seq", "journal", "seq")
    create_sequence("trade_id_seq", "trades", "trade_id")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        for sequence in ("journal_seq", "trade_id_seq"):
            op.execute(f"DROP SEQUENCE {sequence}")
    op.drop_table("streams")
