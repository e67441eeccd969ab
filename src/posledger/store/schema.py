"""The database schema (SQLAlchemy Core). Changes to it are Alembic migrations.

The journal is the source of truth; every other table is a projection of it that
``rebuild`` can rewrite. Amounts are exact: ``NUMERIC(38, 18)`` on server databases and
canonical decimal text on SQLite (whose NUMERIC affinity would go through a float).
On MariaDB/MySQL every table uses the binary collation ``utf8mb4_bin`` (migration 0004):
ids compare exactly there too, never case- or accent-insensitively.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Dialect,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

from ..domain.numbers import fmt

__all__ = ["SCHEMA_REVISION", "Amount", "metadata"]

SCHEMA_REVISION = "0009"
"""The Alembic revision this code reads and writes; a test keeps it equal to the head."""

ID = 128
ENUM = 16

RowId = BigInteger().with_variant(Integer(), "sqlite")
"""A 64-bit key. On SQLite it is spelt INTEGER so that it *is* the rowid (SQLite only
aliases ``INTEGER PRIMARY KEY``; a BIGINT key would cost a second B-tree)."""


class Amount(TypeDecorator[Decimal]):
    """An exact decimal: NUMERIC(38, 18) on servers, canonical text on SQLite."""

    impl = Numeric(38, 18)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Text())
        return dialect.type_descriptor(Numeric(38, 18, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return fmt(value)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(value)


class LongText(TypeDecorator[str]):
    """Text of any length: LONGTEXT on MariaDB/MySQL (whose TEXT holds 64 KiB), TEXT
    elsewhere. (Spelt as a type of its own so that importing the schema does not import the
    MySQL dialect.)"""

    impl = Text()
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects.mysql import LONGTEXT

            return LONGTEXT()
        return Text()


metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("account", String(ID), primary_key=True),
    Column("venue", String(ID), nullable=False),
    Column("mode", String(ENUM), nullable=False),
    Column("position_mode", String(ENUM), nullable=False),
    Column("lot_method", String(ENUM), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("reconcile_policy", String(ENUM), nullable=False, server_default="report"),
)

instruments = Table(
    "instruments",
    metadata,
    Column("instrument", String(ID), primary_key=True),
    Column("kind", String(ENUM), nullable=False),
    Column("multiplier", Amount, nullable=False),
    Column("quote_currency", String(ID), nullable=False),
    Column("settlement_currency", String(ID), nullable=False),
    Column("base_currency", String(ID)),
    Column("tick_size", Amount),
    Column("lot_size", Amount),
    Column("inverse", Boolean, nullable=False),
    Column("allow_negative_prices", Boolean, nullable=False),
    Column("seq", BigInteger, nullable=False),
)

strategies = Table(
    "strategies",
    metadata,
    Column("strategy", String(ID), primary_key=True),
    Column("adopt_orphans", Boolean, nullable=False),
    Column("max_open_slots", Integer),
    Column("seq", BigInteger, nullable=False),
    Column("take_profit", String(ENUM * 2)),
    Column("stop_loss", String(ENUM * 2)),
)

orders = Table(
    "orders",
    metadata,
    Column("client_order_id", String(ID), primary_key=True),
    Column("account", String(ID), nullable=False),
    Column("strategy", String(ID), nullable=False),
    Column("instrument", String(ID), nullable=False),
    Column("side", String(ENUM), nullable=False),
    Column("quantity", Amount, nullable=False),
    Column("intent", String(ENUM), nullable=False),
    Column("position_side", String(ENUM)),
    Column("bracket_id", String(ID)),
    Column("ts", BigInteger),
    Column("status", String(ENUM), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("bracket", Text),
    Index("ix_orders_account_instrument", "account", "instrument"),
    Index("ix_orders_strategy", "strategy"),
    Index("ix_orders_bracket_id", "bracket_id"),
)

fills = Table(
    "fills",
    metadata,
    Column("account", String(ID), nullable=False),
    Column("exec_id", String(ID), nullable=False),
    Column("instrument", String(ID), nullable=False),
    Column("side", String(ENUM), nullable=False),
    Column("quantity", Amount, nullable=False),
    Column("price", Amount, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("client_order_id", String(ID)),
    Column("strategy", String(ID), nullable=False),
    Column("position_side", String(ENUM), nullable=False),
    Column("intent", String(ENUM)),
    Column("commission", Amount, nullable=False),
    Column("commission_currency", String(ID), nullable=False),
    Column("liquidation", Boolean, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("digest", String(64), nullable=False),
    # Exactly once: a broker execution id is applied once per account.
    PrimaryKeyConstraint("account", "exec_id", name="pk_fills"),
    Index("ix_fills_client_order_id", "client_order_id"),
    sqlite_with_rowid=False,
)

journal = Table(
    "journal",
    metadata,
    Column("seq", RowId, primary_key=True, autoincrement=False),
    Column("stream", String(2 * ID), nullable=False),
    Column("version", Integer, nullable=False),
    Column("kind", String(ENUM), nullable=False),
    Column("recorded_at", BigInteger, nullable=False),
    Column("input", LongText(), nullable=False),
    Column("effects", LongText(), nullable=False),
    # The idempotency key of the transaction that wrote the entry (servers only): after a
    # connection lost while committing, the entries numbered in that attempt are looked up
    # by number and this key tells whether the commit happened.
    Column("txid", String(32)),
    # The key of the HTTP API that sent the input (docs/service.md, Keys): an audit trail.
    # NULL for inputs from anywhere else (the command line, the Python API).
    Column("key_id", String(32)),
    # Two writers can never append the same version of a stream.
    UniqueConstraint("stream", "version", name="uq_journal_stream_version"),
)

streams = Table(
    "streams",
    metadata,
    Column("stream", String(2 * ID), primary_key=True),
    Column("version", Integer, nullable=False),
)
"""The last journal version of each stream. Server writers lock a stream's row for the
length of a transaction: that is what orders writers on one instrument."""

SEQUENCES = ("journal_seq", "trade_id_seq")
"""Server-side id allocators (PostgreSQL and MariaDB sequences; SQLite counts under its
write lock instead)."""

slots = Table(
    "slots",
    metadata,
    Column("account", String(ID), nullable=False),
    Column("instrument", String(ID), nullable=False),
    Column("strategy", String(ID), nullable=False),
    Column("position_side", String(ENUM), nullable=False),
    Column("quantity", Amount, nullable=False),
    Column("avg_entry", Amount),
    Column("lots", LongText()),
    Column("trade_id", BigInteger),
    Column("last_price", Amount),
    Column("seq", BigInteger, nullable=False),
    PrimaryKeyConstraint("account", "instrument", "strategy", "position_side", name="pk_slots"),
    Index("ix_slots_instrument", "instrument"),
    sqlite_with_rowid=False,
)

trades = Table(
    "trades",
    metadata,
    Column("trade_id", RowId, primary_key=True, autoincrement=False),
    Column("account", String(ID), nullable=False),
    Column("instrument", String(ID), nullable=False),
    Column("strategy", String(ID), nullable=False),
    Column("position_side", String(ENUM), nullable=False),
    Column("direction", String(ENUM), nullable=False),
    Column("status", String(ENUM), nullable=False),
    # The slot key while the trade is open, NULL once closed: the unique constraint is
    # "one open trade per slot", enforced by the database on every backend.
    Column("open_slot", String(4 * ID + 16)),
    Column("opened_at", BigInteger, nullable=False),
    Column("closed_at", BigInteger),
    Column("pnl_currency", String(ID), nullable=False),
    Column("quantity", Amount, nullable=False),
    Column("peak_quantity", Amount, nullable=False),
    Column("avg_entry", Amount, nullable=False),
    Column("entry_quantity", Amount, nullable=False),
    Column("avg_exit", Amount),
    Column("exit_quantity", Amount, nullable=False),
    Column("gross_realized", Amount, nullable=False),
    Column("realized_pnl", Amount, nullable=False),
    Column("commissions", Text, nullable=False),
    Column("realized_return", Amount),
    Column("close_reason", String(ENUM)),
    Column("mae", Amount),
    Column("mfe", Amount),
    Column("mae_price", Amount),
    Column("mfe_price", Amount),
    UniqueConstraint("open_slot", name="uq_trades_open_slot"),
    Index("ix_trades_instrument_status", "instrument", "status"),
)

TRADE_MUTABLE_OPEN = (
    "quantity",
    "peak_quantity",
    "avg_entry",
    "entry_quantity",
    "avg_exit",
    "exit_quantity",
    "gross_realized",
    "realized_pnl",
    "commissions",
    "realized_return",
    "mae",
    "mfe",
    "mae_price",
    "mfe_price",
)
"""What changes on a trade while it stays open: none of them is indexed."""
TRADE_MUTABLE_CLOSE = (*TRADE_MUTABLE_OPEN, "status", "open_slot", "closed_at", "close_reason")

trade_fills = Table(
    "trade_fills",
    metadata,
    Column("trade_id", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("leg", Integer, nullable=False),
    Column("account", String(ID), nullable=False),
    Column("exec_id", String(ID)),
    Column("role", String(ENUM), nullable=False),
    Column("quantity", Amount, nullable=False),
    Column("delta", Amount, nullable=False),
    Column("price", Amount, nullable=False),
    Column("commission", Amount, nullable=False),
    Column("commission_currency", String(ID), nullable=False),
    Column("realized", Amount, nullable=False),
    Column("adjustment", Boolean, nullable=False),
    Column("ts", BigInteger, nullable=False),
    # fill, transfer or reconciliation (exec_id is NULL for the last two).
    Column("source", String(ENUM), nullable=False, server_default="fill"),
    PrimaryKeyConstraint("trade_id", "seq", "leg", name="pk_trade_fills"),
    sqlite_with_rowid=False,
)

marks = Table(
    "marks",
    metadata,
    Column("instrument", String(ID), primary_key=True),
    Column("price", Amount, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
)

anomalies = Table(
    "anomalies",
    metadata,
    Column("seq", BigInteger, nullable=False),
    Column("idx", Integer, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("account", String(ID), nullable=False),
    Column("instrument", String(ID), nullable=False),
    Column("strategy", String(ID), nullable=False),
    Column("position_side", String(ENUM), nullable=False),
    Column("exec_id", String(ID)),
    Column("quantity", Amount, nullable=False),
    Column("detail", Text, nullable=False),
    PrimaryKeyConstraint("seq", "idx", name="pk_anomalies"),
    sqlite_with_rowid=False,
)

rejected_inputs = Table(
    "rejected_inputs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", BigInteger, nullable=False),
    Column("source", String(512)),
    Column("line_no", Integer),
    Column("raw", LongText(), nullable=False),
    Column("reason", Text, nullable=False),
    # The same bad line sent again is not stored again.
    Column("digest", String(64), nullable=False),
    UniqueConstraint("digest", name="uq_rejected_inputs_digest"),
)

transfers = Table(
    "transfers",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("account", String(ID), nullable=False),
    Column("transfer_id", String(ID)),
    Column("instrument", String(ID), nullable=False),
    Column("position_side", String(ENUM), nullable=False),
    Column("from_strategy", String(ID), nullable=False),
    Column("to_strategy", String(ID), nullable=False),
    Column("quantity", Amount, nullable=False),
    Column("price", Amount, nullable=False),
    Column("ts", BigInteger, nullable=False),
    # transfer (posledger transfer) or adopt_orphans (a reconciliation's).
    Column("origin", String(ENUM), nullable=False),
    Column("digest", String(64)),
    # A transfer sent again with its id is applied once per account.
    UniqueConstraint("account", "transfer_id", name="uq_transfers_account_transfer_id"),
)

adjustments = Table(
    "adjustments",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("run", String(ID), nullable=False),
    Column("account", String(ID), nullable=False),
    Column("instrument", String(ID), nullable=False),
    Column("position_side", String(ENUM), nullable=False),
    Column("quantity", Amount, nullable=False),
    Column("price", Amount, nullable=False),
    Column("ts", BigInteger, nullable=False),
)
"""What reconciliation under the adopt policy booked to EXTERNAL: signed quantity. Not a
fill, but counted with the fills when the slots' sum is checked (conservation)."""

reconciliation_checks = Table(
    "reconciliation_checks",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("run", String(ID), nullable=False),
    Column("account", String(ID), nullable=False),
    Column("instrument", String(ID), nullable=False),
    Column("position_side", String(ENUM), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("policy", String(ENUM), nullable=False),
    Column("ledger_quantity", Amount, nullable=False),
    Column("broker_quantity", Amount, nullable=False),
    Column("ledger_avg_price", Amount),
    Column("broker_avg_price", Amount),
    Column("holders", Text, nullable=False),
    Column("action", String(ENUM), nullable=False),
    Column("detail", Text, nullable=False),
    Column("orphan", Text),
    Column("ts", BigInteger, nullable=False),
    Index("ix_reconciliation_checks_run", "run"),
)

reconciliation_runs = Table(
    "reconciliation_runs",
    metadata,
    Column("run", String(ID), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("ts", BigInteger, nullable=False),
)
"""One row per reconciliation run, written by its first check: a run name is used once,
even by runs that commit at the same moment."""

halts = Table(
    "halts",
    metadata,
    Column("account", String(ID), nullable=False),
    Column("instrument", String(ID), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    PrimaryKeyConstraint("account", "instrument", name="pk_halts"),
)
"""Instruments halted on an account: entry orders there are refused until resumed."""

brackets = Table(
    "brackets",
    metadata,
    Column("account", String(ID), nullable=False),
    Column("instrument", String(ID), nullable=False),
    Column("strategy", String(ID), nullable=False),
    Column("position_side", String(ENUM), nullable=False),
    Column("bracket_id", String(ID), nullable=False),
    Column("direction", String(ENUM), nullable=False),
    Column("take_profit_price", Amount),
    Column("stop_loss_type", String(ENUM)),
    Column("stop_loss_stop_price", Amount),
    Column("stop_loss_price", Amount),
    Column("failed", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    PrimaryKeyConstraint("account", "instrument", "strategy", "position_side", name="pk_brackets"),
)
"""The bracket of each slot that has one (docs/brackets.md)."""

exits = Table(
    "exits",
    metadata,
    Column("client_order_id", String(ID), primary_key=True),
    Column("account", String(ID), nullable=False),
    Column("instrument", String(ID), nullable=False),
    Column("strategy", String(ID), nullable=False),
    Column("position_side", String(ENUM), nullable=False),
    Column("intent", String(ENUM), nullable=False),
    Column("side", String(ENUM), nullable=False),
    Column("quantity", Amount, nullable=False),
    Column("filled", Amount, nullable=False),
    Column("state", String(ENUM), nullable=False),
    Column("order_type", String(ENUM)),
    Column("price", Amount),
    Column("stop_price", Amount),
    Column("bracket_id", String(ID)),
    Column("confirmed", Amount, nullable=False),
    Column("armed", Boolean, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Index("ix_exits_instrument", "instrument"),
)
"""Exit orders the ledger watches: bracket legs and strategies' own exit orders, with where
each stands with the broker (docs/brackets.md)."""

outbox = Table(
    "outbox",
    metadata,
    Column("command_id", String(ID), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("kind", String(ENUM), nullable=False),
    Column("account", String(ID), nullable=False),
    Column("instrument", String(ID), nullable=False),
    Column("strategy", String(ID), nullable=False),
    Column("payload", LongText(), nullable=False),
    Column("status", String(ENUM), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("worker", String(ID)),
    Column("lease_until", BigInteger),
    Column("attempts", Integer, nullable=False),
    Column("broker_order_id", String(ID)),
    Column("reason", Text),
    Index("ix_outbox_status_seq", "status", "seq"),
)
"""Commands for whoever executes orders (docs/brackets.md), written in the transaction of the
input that caused them: pending, claimed under a lease by a worker, then acked or failed."""

PROJECTIONS = (
    accounts,
    instruments,
    strategies,
    orders,
    fills,
    slots,
    trades,
    trade_fills,
    marks,
    anomalies,
    transfers,
    adjustments,
    reconciliation_checks,
    reconciliation_runs,
    halts,
    brackets,
    exits,
)
"""Tables ``rebuild`` rewrites from the journal. (The outbox is not one of them: what was
sent to a broker, and acknowledged, is not in the journal and cannot be rewritten.)"""

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("seq", RowId, primary_key=True, autoincrement=False),
    Column("entries", BigInteger, nullable=False),
    Column("recorded_at", BigInteger, nullable=False),
    Column("state", LongText(), nullable=False),
)
"""The books saved at journal entry ``seq``, which covers ``entries`` journal entries: a
cache for the ledger as of a time (store/checkpoints.py)."""

checkpoint_orders = Table(
    "checkpoint_orders",
    metadata,
    Column("client_order_id", String(ID), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("state", LongText(), nullable=False),
    PrimaryKeyConstraint("client_order_id", "seq", name="pk_checkpoint_orders"),
    sqlite_with_rowid=False,
)
"""Each order registered or changed before checkpoint ``seq`` and after the one before it,
as it stood then."""

CHECKPOINTS = (checkpoints, checkpoint_orders)
"""Derived from the projections; ``rebuild`` deletes them."""

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("name", String(ID)),
    Column("scope", String(ENUM), nullable=False),
    Column("strategy", String(ID)),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
)
"""Keys of the HTTP API (docs/service.md, Keys): an admin key, or a strategy's. Only a
SHA-256 of each key's secret is kept. Not a projection: keys are not journaled, and
``rebuild`` leaves them alone."""

symbols = Table(
    "symbols",
    metadata,
    Column("venue", String(ID), primary_key=True),
    Column("account", String(ID), primary_key=True),
    Column("symbol", String(ID), primary_key=True),
    Column("instrument", String(ID), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_symbols_instrument", "venue", "account", "instrument"),
)
"""The symbol map (docs/venues/README.md, Symbol map): a venue's symbol on an account is
an instrument. Not a projection: brokers' messages are translated with it before they
are journaled, so ``rebuild`` leaves it alone."""

paper_venues = Table(
    "paper_venues",
    metadata,
    Column("venue", String(ID), primary_key=True),
    Column("state", LongText(), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
"""The paper venue's own book (posledger.paper): its orders, executions not yet sent to
the ledger, prices and positions. Not a projection: the venue is the broker's side."""

storage_damage = Table(
    "storage_damage",
    metadata,
    # Always 1: a database holds one mark, the first damage found; a second detection
    # finds it there and leaves it be.
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("found_at", BigInteger, nullable=False),
    Column("found_by", String(ENUM), nullable=False),
    Column("detail", Text, nullable=False),
)
"""Set when ``doctor`` (or a writer's driver error) finds the storage damaged: while it
holds a row every unit of work refuses to begin (``DamagedDatabase``). Not a projection:
``rebuild`` leaves it alone; ``posledger doctor --clear-damage`` deletes it
(docs/doctor.md)."""
