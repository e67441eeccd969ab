"""initial schema

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from posledger.store.migrations.steps import create_index, create_table

# Frozen here on purpose: later changes to posledger's types must not change what
# this revision creates. Amounts are exact text on SQLite, NUMERIC(38, 18) elsewhere.
AMOUNT = sa.Numeric(38, 18).with_variant(sa.Text(), "sqlite")
# INTEGER on SQLite so that the key is the rowid rather than a second B-tree.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Each step checks what exists first (see migrations/steps.py): on MariaDB a killed
    # migrate leaves this revision half done, and the next one runs it again.
    create_table(
        "accounts",
        sa.Column("account", sa.String(length=128), nullable=False),
        sa.Column("venue", sa.String(length=128), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("position_mode", sa.String(length=16), nullable=False),
        sa.Column("lot_method", sa.String(length=16), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account"),
    )
    create_table(
        "anomalies",
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("account", sa.String(length=128), nullable=False),
        sa.Column("instrument", sa.String(length=128), nullable=False),
        sa.Column("strategy", sa.String(length=128), nullable=False),
        sa.Column("position_side", sa.String(length=16), nullable=False),
        sa.Column("exec_id", sa.String(length=128), nullable=True),
        sa.Column("quantity", AMOUNT, nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", "idx", name="pk_anomalies"),
        sqlite_with_rowid=False,
    )
    create_table(
        "fills",
        sa.Column("account", sa.String(length=128), nullable=False),
        sa.Column("exec_id", sa.String(length=128), nullable=False),
        sa.Column("instrument", sa.String(length=128), nullable=False),
        sa.Column("side", sa.String(length=16), nullable=False),
        sa.Column("quantity", AMOUNT, nullable=False),
        sa.Column("price", AMOUNT, nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("client_order_id", sa.String(length=128), nullable=True),
        sa.Column("strategy", sa.String(length=128), nullable=False),
        sa.Column("position_side", sa.String(length=16), nullable=False),
        sa.Column("intent", sa.String(length=16), nullable=True),
        sa.Column("commission", AMOUNT, nullable=False),
        sa.Column("commission_currency", sa.String(length=128), nullable=False),
        sa.Column("liquidation", sa.Boolean(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("account", "exec_id", name="pk_fills"),
        sqlite_with_rowid=False,
    )

    create_table(
        "instruments",
        sa.Column("instrument", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("multiplier", AMOUNT, nullable=False),
        sa.Column("quote_currency", sa.String(length=128), nullable=False),
        sa.Column("settlement_currency", sa.String(length=128), nullable=False),
        sa.Column("base_currency", sa.String(length=128), nullable=True),
        sa.Column("tick_size", AMOUNT, nullable=True),
        sa.Column("lot_size", AMOUNT, nullable=True),
        sa.Column("inverse", sa.Boolean(), nullable=False),
        sa.Column("allow_negative_prices", sa.Boolean(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("instrument"),
    )
    create_table(
        "journal",
        sa.Column("seq", ROW_ID, autoincrement=False, nullable=False),
        sa.Column("stream", sa.String(length=256), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("recorded_at", sa.BigInteger(), nullable=False),
        sa.Column(
            "input",
            sa.Text()
            .with_variant(mysql.LONGTEXT(), "mariadb")
            .with_variant(mysql.LONGTEXT(), "mysql"),
            nullable=False,
        ),
        sa.Column(
            "effects",
            sa.Text()
            .with_variant(mysql.LONGTEXT(), "mariadb")
            .with_variant(mysql.LONGTEXT(), "mysql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("stream", "version", name="uq_journal_stream_version"),
    )
    create_table(
        "marks",
        sa.Column("instrument", sa.String(length=128), nullable=False),
        sa.Column("price", AMOUNT, nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("instrument"),
    )
    create_table(
        "orders",
        sa.Column("client_order_id", sa.String(length=128), nullable=False),
        sa.Column("account", sa.String(length=128), nullable=False),
        sa.Column("strategy", sa.String(length=128), nullable=False),
        sa.Column("instrument", sa.String(length=128), nullable=False),
        sa.Column("side", sa.String(length=16), nullable=False),
        sa.Column("quantity", AMOUNT, nullable=False),
        sa.Column("intent", sa.String(length=16), nullable=False),
        sa.Column("position_side", sa.String(length=16), nullable=True),
        sa.Column("bracket_id", sa.String(length=128), nullable=True),
        sa.Column("ts", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("client_order_id"),
    )
    create_index("ix_orders_account_instrument", "orders", ["account", "instrument"])
    create_index("ix_orders_strategy", "orders", ["strategy"])

    create_table(
        "rejected_inputs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=512), nullable=True),
        sa.Column("line_no", sa.Integer(), nullable=True),
        sa.Column(
            "raw",
            sa.Text()
            .with_variant(mysql.LONGTEXT(), "mariadb")
            .with_variant(mysql.LONGTEXT(), "mysql"),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("digest", name="uq_rejected_inputs_digest"),
    )
    create_table(
        "slots",
        sa.Column("account", sa.String(length=128), nullable=False),
        sa.Column("instrument", sa.String(length=128), nullable=False),
        sa.Column("strategy", sa.String(length=128), nullable=False),
        sa.Column("position_side", sa.String(length=16), nullable=False),
        sa.Column("quantity", AMOUNT, nullable=False),
        sa.Column("avg_entry", AMOUNT, nullable=True),
        sa.Column(
            "lots",
            sa.Text()
            .with_variant(mysql.LONGTEXT(), "mariadb")
            .with_variant(mysql.LONGTEXT(), "mysql"),
            nullable=True,
        ),
        sa.Column("trade_id", sa.BigInteger(), nullable=True),
        sa.Column("last_price", AMOUNT, nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "account", "instrument", "strategy", "position_side", name="pk_slots"
        ),
        sqlite_with_rowid=False,
    )
    create_index("ix_slots_instrument", "slots", ["instrument"])

    create_table(
        "strategies",
        sa.Column("strategy", sa.String(length=128), nullable=False),
        sa.Column("adopt_orphans", sa.Boolean(), nullable=False),
        sa.Column("max_open_slots", sa.Integer(), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("strategy"),
    )
    create_table(
        "trade_fills",
        sa.Column("trade_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("leg", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=128), nullable=False),
        sa.Column("exec_id", sa.String(length=128), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("quantity", AMOUNT, nullable=False),
        sa.Column("delta", AMOUNT, nullable=False),
        sa.Column("price", AMOUNT, nullable=False),
        sa.Column("commission", AMOUNT, nullable=False),
        sa.Column("commission_currency", sa.String(length=128), nullable=False),
        sa.Column("realized", AMOUNT, nullable=False),
        sa.Column("adjustment", sa.Boolean(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("trade_id", "seq", "leg", name="pk_trade_fills"),
        sqlite_with_rowid=False,
    )
    create_table(
        "trades",
        sa.Column("trade_id", ROW_ID, autoincrement=False, nullable=False),
        sa.Column("account", sa.String(length=128), nullable=False),
        sa.Column("instrument", sa.String(length=128), nullable=False),
        sa.Column("strategy", sa.String(length=128), nullable=False),
        sa.Column("position_side", sa.String(length=16), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("open_slot", sa.String(length=528), nullable=True),
        sa.Column("opened_at", sa.BigInteger(), nullable=False),
        sa.Column("closed_at", sa.BigInteger(), nullable=True),
        sa.Column("pnl_currency", sa.String(length=128), nullable=False),
        sa.Column("quantity", AMOUNT, nullable=False),
        sa.Column("peak_quantity", AMOUNT, nullable=False),
        sa.Column("avg_entry", AMOUNT, nullable=False),
        sa.Column("entry_quantity", AMOUNT, nullable=False),
        sa.Column("avg_exit", AMOUNT, nullable=True),
        sa.Column("exit_quantity", AMOUNT, nullable=False),
        sa.Column("gross_realized", AMOUNT, nullable=False),
        sa.Column("realized_pnl", AMOUNT, nullable=False),
        sa.Column("commissions", sa.Text(), nullable=False),
        sa.Column("realized_return", AMOUNT, nullable=True),
        sa.Column("close_reason", sa.String(length=16), nullable=True),
        sa.Column("mae", AMOUNT, nullable=True),
        sa.Column("mfe", AMOUNT, nullable=True),
        sa.Column("mae_price", AMOUNT, nullable=True),
        sa.Column("mfe_price", AMOUNT, nullable=True),
        sa.PrimaryKeyConstraint("trade_id"),
        sa.UniqueConstraint("open_slot", name="uq_trades_open_slot"),
    )
    create_index("ix_trades_instrument_status", "trades", ["instrument", "status"])


def downgrade() -> None:
    for table in (
        "trade_fills",
        "trades",
        "slots",
        "rejected_inputs",
        "orders",
        "marks",
        "journal",
        "instruments",
        "fills",
        "anomalies",
        "accounts",
        "strategies",
    ):
        op.drop_table(table)
