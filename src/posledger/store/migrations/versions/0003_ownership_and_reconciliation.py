"""Transfers, reconciliation checks and adjustments, halts; account reconcile policy.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from posledger.store.migrations.steps import add_column, create_index, create_table

# Frozen here on purpose (see 0001).
AMOUNT = sa.Numeric(38, 18).with_variant(sa.Text(), "sqlite")

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Each step checks what exists first (see migrations/steps.py).
    add_column(
        "accounts",
        sa.Column(
            "reconcile_policy", sa.String(length=16), nullable=False, server_default="report"
        ),
    )
    add_column(
        "trade_fills",
        sa.Column("source", sa.String(length=16), nullable=False, server_default="fill"),
    )
    create_index("ix_orders_bracket_id", "orders", ["bracket_id"])
    create_index("ix_fills_client_order_id", "fills", ["client_order_id"])
    create_table(
        "transfers",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account", sa.String(length=128), nullable=False),
        sa.Column("transfer_id", sa.String(length=128), nullable=True),
        sa.Column("instrument", sa.String(length=128), nullable=False),
        sa.Column("position_side", sa.String(length=16), nullable=False),
        sa.Column("from_strategy", sa.String(length=128), nullable=False),
        sa.Column("to_strategy", sa.String(length=128), nullable=False),
        sa.Column("quantity", AMOUNT, nullable=False),
        sa.Column("price", AMOUNT, nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("account", "transfer_id", name="uq_transfers_account_transfer_id"),
    )
    create_table(
        "adjustments",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("run", sa.String(length=128), nullable=False),
        sa.Column("account", sa.String(length=128), nullable=False),
        sa.Column("instrument", sa.String(length=128), nullable=False),
        sa.Column("position_side", sa.String(length=16), nullable=False),
        sa.Column("quantity", AMOUNT, nullable=False),
        sa.Column("price", AMOUNT, nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    create_table(
        "reconciliation_checks",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("run", sa.String(length=128), nullable=False),
        sa.Column("account", sa.String(length=128), nullable=False),
        sa.Column("instrument", sa.String(length=128), nullable=False),
        sa.Column("position_side", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("policy", sa.String(length=16), nullable=False),
        sa.Column("ledger_quantity", AMOUNT, nullable=False),
        sa.Column("broker_quantity", AMOUNT, nullable=False),
        sa.Column("ledger_avg_price", AMOUNT, nullable=True),
        sa.Column("broker_avg_price", AMOUNT, nullable=True),
        sa.Column("holders", sa.Text(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("orphan", sa.Text(), nullable=True),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    create_index("ix_reconciliation_checks_run", "reconciliation_checks", ["run"])
    create_table(
        "halts",
        sa.Column("account", sa.String(length=128), nullable=False),
        sa.Column("instrument", sa.String(length=128), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("account", "instrument", name="pk_halts"),
    )


def downgrade() -> None:
    op.drop_table("halts")
    op.drop_index("ix_reconciliation_checks_run", table_name="reconciliation_checks")
    op.drop_table("reconciliation_checks")
    op.drop_table("adjustments")
    op.drop_table("transfers")
    op.drop_index("ix_fills_client_order_id", table_name="fills")
    op.drop_index("ix_orders_bracket_id", table_name="orders")
    with op.batch_alter_table("trade_fills") as batch:
        batch.drop_column("source")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("reconcile_policy")
