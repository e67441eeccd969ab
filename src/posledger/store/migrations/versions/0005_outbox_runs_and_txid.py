"""The outbox, one row per reconciliation run, each journal entry's transaction id, and
the storage damage mark (a table that, while it holds a row, stops every writer: doctor
writes it when it finds the storage damaged, and so does a writer whose driver reports
damage; ``posledger doctor --clear-damage`` deletes it once the database is repaired).

Every step checks what is already there first (migrations/steps.py): MariaDB cannot roll
DDL back, so a ``migrate`` killed half-way must be able to run again from where it stopped.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from posledger.store.migrations.steps import add_column, create_index, create_table, table_options

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

LONG_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    add_column("journal", sa.Column("txid", sa.String(length=32), nullable=True))
    create_table(
        "reconciliation_runs",
        sa.Column("run", sa.String(length=128), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("run"),
        **table_options(),
    )
    # Runs recorded before: each named by its first check. Only the runs not carried over
    # yet: on MariaDB the table above commits on its own, and a kill before this insert
    # commits leaves it empty for the next run of this revision to fill.
    op.execute(
        "INSERT INTO reconciliation_runs (run, seq, ts) "
        "SELECT run, min(seq), min(ts) FROM reconciliation_checks "
        "WHERE run NOT IN (SELECT run FROM reconciliation_runs) GROUP BY run"
    )
    create_table(
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
        **table_options(),
    )
    create_index("ix_outbox_status_seq", "outbox", ["status", "seq"])
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
    op.drop_index("ix_outbox_status_seq", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("reconciliation_runs")
    with op.batch_alter_table("journal") as batch:
        batch.drop_column("txid")
