"""Brackets and watched exit orders (docs/brackets.md), the bracket an entry order
carries, a strategy's default take-profit and stop-loss distances, and the paper venue's
own book.

Every step checks what is already there first (migrations/steps.py): MariaDB cannot roll
DDL back, so a ``migrate`` killed half-way must be able to run again from where it stopped.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from posledger.store.migrations.steps import add_column, create_index, create_table, table_options

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

AMOUNT = sa.Numeric(38, 18).with_variant(sa.Text(), "sqlite")
LONG_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    add_column("orders", sa.Column("bracket", sa.Text(), nullable=True))
    add_column("strategies", sa.Column("take_profit", sa.String(length=32), nullable=True))
    add_column("strategies", sa.Column("stop_loss", sa.String(length=32), nullable=True))
    create_table(
        "brackets",
        sa.Column("account", sa.String(length=128), nullable=False),
        sa.Column("instrument", sa.String(length=128), nullable=False),
        sa.Column("strategy", sa.String(length=128), nullable=False),
        sa.Column("position_side", sa.String(length=16), nullable=False),
        sa.Column("bracket_id", sa.String(length=128), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("take_profit_price", AMOUNT, nullable=True),
        sa.Column("stop_loss_type", sa.String(length=16), nullable=True),
        sa.Column("stop_loss_stop_price", AMOUNT, nullable=True),
        sa.Column("stop_loss_price", AMOUNT, nullable=True),
        sa.Column("failed", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "account", "instrument", "strategy", "position_side", name="pk_brackets"
        ),
        **table_options(),
    )
    create_table(
        "exits",
        sa.Column("client_order_id", sa.String(length=128), nullable=False),
        sa.Column("account", sa.String(length=128), nullable=False),
        sa.Column("instrument", sa.String(length=128), nullable=False),
        sa.Column("strategy", sa.String(length=128), nullable=False),
        sa.Column("position_side", sa.String(length=16), nullable=False),
        sa.Column("intent", sa.String(length=16), nullable=False),
        sa.Column("side", sa.String(length=16), nullable=False),
        sa.Column("quantity", AMOUNT, nullable=False),
        sa.Column("filled", AMOUNT, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("order_type", sa.String(length=16), nullable=True),
        sa.Column("price", AMOUNT, nullable=True),
        sa.Column("stop_price", AMOUNT, nullable=True),
        sa.Column("bracket_id", sa.String(length=128), nullable=True),
        sa.Column("confirmed", AMOUNT, nullable=False),
        sa.Column("armed", sa.Boolean(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("client_order_id"),
        **table_options(),
    )
    create_index("ix_exits_instrument", "exits", ["instrument"])
    create_table(
        "paper_venues",
        sa.Column("venue", sa.String(length=128), nullable=False),
        sa.Column("state", LONG_TEXT, nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("venue"),
        **table_options(),
    )


def downgrade() -> None:
    op.drop_table("paper_venues")
    op.drop_index("ix_exits_instrument", table_name="exits")
    op.drop_table("exits")
    op.drop_table("brackets")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("bracket")
    with op.batch_alter_table("strategies") as batch:
        batch.drop_column("take_profit")
        batch.drop_column("stop_loss")
