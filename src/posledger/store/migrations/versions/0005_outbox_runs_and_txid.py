"""The outbox, one row per reconciliation run, and each journal entry's transaction id.

Every step checks what is already there first: MariaDB cannot roll DDL back, so a
``migrate`` killed half-way must be able to run again from where it stopped.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

LONG_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def _tables() -> set[str]:
    return set(sa.inspect(op.get_bind()).get_table_names())


def _columns(table: str) -> set[str]:
    return {column["name"] for column in sa.inspect(op.get_bind()).get_columns(table)}


def _indexes(table: str) -> set[str]:
    return {index["name"] or "" for index in sa.inspect(op.get_bind()).get_indexes(table)}


def _table_options() -> dict[str, Any]:
    """MariaDB tables compare identifiers exactly (see 0004)."""
    if op.get_bind().dialect.name in ("mysql", "mariadb"):
        return {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
    return {}


def upgrade() -> None:
    if "txid" not in _columns("journal"):
        op.add_column("journal", sa.Column("txid", sa.String(length=32), nullable=True))
    tables = _tables()
    if "reconciliation_runs" not in tables:
        op.create_table(
            "reconciliation_runs",
            sa.Column("run", sa.String(length=128), nullable=False),
            sa.Column("seq", sa.BigInteger(), nullable=False),
            sa.Column("ts", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("run"),
            **_table_options(),
        )
        # Runs recorded before: each named by its first check.
        op.execute(
            "INSERT INTO reconciliation_runs (run, seq, ts) "
            "SELECT run, min(seq), min(ts) FROM reconciliation_checks GROUP BY run"
        )
    if "outbox" not in tables:
        op.create_table(
            "outbox",
            sa.Column("command_id", sa.String(length=128), nullable=False),
            sa.Column("seq", sa.BigInteger(), nullable=False),
            sa.Column("kind", sa.String(length=16), nullable=False),
            sa.Column("account", sa.String(length=128), nullable=False),
            sa.Column("instrument", sa.String(length=128), nullable=False),
            sa.Column("strategy", sa.String(length=128), nullable=False),
            sa.Column("payload", LONG_TEXT, nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("created_at", sa.BigInteger(), nullable=False),
            sa.Column("updated_at", sa.BigInteger(), nullable=False),
            sa.Column("worker", sa.String(length=128), nullable=True),
            sa.Column("lease_until", sa.BigInteger(), nullable=True),
            sa.Column("attempts", sa.Integer(), nullable=False),
            sa.Column("broker_order_id", sa.String(length=128), nullable=True),
            sa.Column("reason", sa.Text(), nullable=True),
            sa.PrimaryKeyConstraint("command_id"),
            **_table_options(),
        )
    if "ix_outbox_status_seq" not in _indexes("outbox"):
        op.create_index("ix_outbox_status_seq", "outbox", ["status", "seq"])


def downgrade() -> None:
    op.drop_index("ix_outbox_status_seq", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("reconciliation_runs")
    with op.batch_alter_table("journal") as batch:
        batch.drop_column("txid")
