"""Stream versions and server id sequences, for several writers on one database.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "streams",
        sa.Column("stream", sa.String(length=256), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("stream"),
    )
    # A database written by revision 0001 already has a journal: carry its versions over.
    op.execute(
        "INSERT INTO streams (stream, version) "
        "SELECT stream, max(version) FROM journal GROUP BY stream"
    )
    bind = op.get_bind()
    dialect = bind.dialect.name
    if dialect == "sqlite":
        return
    for sequence, table, column in (
        ("journal_seq", "journal", "seq"),
        ("trade_id_seq", "trades", "trade_id"),
    ):
        start = bind.execute(sa.text(f"SELECT coalesce(max({column}), 0) + 1 FROM {table}"))
        first = int(start.scalar_one())
        op.execute(f"CREATE SEQUENCE {sequence} START WITH {first}")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        for sequence in ("journal_seq", "trade_id_seq"):
            op.execute(f"DROP SEQUENCE {sequence}")
    op.drop_table("streams")
