"""Reconciliation: compare the ledger with a broker snapshot (docs/format.md ``broker_position``).

A snapshot lists what the broker holds per (account, instrument, position side) for the
accounts it covers; anything the ledger holds there that the snapshot does not list, the
broker holds none of. The snapshot is checked whole before anything is compared: a line
that cannot be read, an unknown account, a position on an unregistered instrument or a
position mode the account does not have refuses it whole, and nothing is compared.

Each compared key is one journal entry (a ``reconcile`` record in the instrument's stream)
holding the broker's quantity, the run it belongs to and the policy; its effects are the
comparison and whatever the policy did. All the entries of one run commit together.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from ..adapters.jsonl import Line, read_lines
from ..domain.enums import CheckKind, PositionSide, ReconcilePolicy
from ..domain.inputs import BrokerPosition, Reconcile
from ..domain.numbers import ZERO, fmt
from ..domain.reconcile import position_side_problem
from ..domain.timestamps import format_ts
from ..errors import ReconcileError
from ..ports import UnitOfWork

__all__ = [
    "DEFAULT_PRICE_TOLERANCE",
    "ReconcileError",
    "ReconcileReport",
    "check_dict",
    "new_run_id",
    "plan",
    "policies",
    "read_snapshot",
    "validate",
]

DEFAULT_PRICE_TOLERANCE = Decimal("0.001")
"""Average prices within 0.1% of each other agree (brokers round their averages)."""

Key = tuple[str, str, PositionSide]


@dataclass
class ReconcileReport:
    run: str
    recorded_at: int
    accounts: list[str]
    policies: dict[str, ReconcilePolicy]
    checks: list[dict[str, Any]] = field(default_factory=list)
    history: Any = None
    """The :class:`~posledger.service.ledger.IngestReport` of the broker's fill history."""

    @property
    def agreed(self) -> bool:
        """True when every compared key agrees with the broker (before any policy acted)."""
        return all(check["kind"] == CheckKind.AGREE for check in self.checks)

    @property
    def differences(self) -> list[dict[str, Any]]:
        return [check for check in self.checks if check["kind"] != CheckKind.AGREE]

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "run": self.run,
            "recorded_at": format_ts(self.recorded_at),
            "agreed": self.agreed,
            "accounts": self.accounts,
            "policies": {name: str(policy) for name, policy in self.policies.items()},
            "differences": len(self.differences),
            "checks": self.checks,
        }
        if self.history is not None:
            data["fill_history"] = {
                "lines": self.history.lines,
                "applied": self.history.applied,
                "duplicate": self.history.duplicate,
                "rejected": self.history.rejected,
                "rejections": [
                    {"line": number, "reason": reason} for number, reason in self.history.rejections
                ],
            }
        return data


def new_run_id() -> str:
    return f"rec-{secrets.token_hex(6)}"


def read_snapshot(lines: Iterable[str | bytes]) -> list[tuple[Line, BrokerPosition]]:
    """Every ``broker_position`` of the snapshot, or ReconcileError naming every bad line."""
    positions: list[tuple[Line, BrokerPosition]] = []
    problems: list[tuple[Line | None, str]] = []
    for line in read_lines(lines):
        if line.item is None:
            problems.append((line, line.error or "unreadable line"))
        elif not isinstance(line.item, BrokerPosition):
            problems.append((line, "a broker snapshot holds broker_position lines only"))
        else:
            positions.append((line, line.item))
    if problems:
        raise ReconcileError(problems)
    return positions


def validate(
    tx: UnitOfWork, positions: list[tuple[Line, BrokerPosition]], accounts: list[str]
) -> dict[Key, BrokerPosition]:
    """The snapshot's positions by key, checked against what the ledger knows.

    Zero positions on instruments the ledger does not know are dropped (brokers list
    every symbol); anything else wrong refuses the whole snapshot.
    """
    problems: list[tuple[Line | None, str]] = []
    mismatch: list[tuple[Line | None, str]] = []
    listed = {position.account for _, position in positions}
    for name in accounts:
        if name not in listed and tx.account(name) is None:
            problems.append((None, f"unknown account {name}: register it first"))
    by_key: dict[Key, BrokerPosition] = {}
    seen: dict[Key, Line] = {}
    for line, position in positions:
        account = tx.account(position.account)
        if account is None:
            problems.append((line, f"unknown account {position.account}: register it first"))
            continue
        if position.position_mode is not None and position.position_mode != account.position_mode:
            mismatch.append(
                (
                    line,
                    f"position mode mismatch: the broker says account {account.account} is in "
                    f"{position.position_mode} mode; the ledger has it in "
                    f"{account.position_mode} mode",
                )
            )
            continue
        # No side given is a one-way (BOTH) position: on a hedge account, a mismatch.
        side = position.position_side or PositionSide.BOTH
        problem = position_side_problem(account, side, position.quantity)
        if problem is not None:
            if not position.quantity:
                # Brokers list flat legs of the other mode too (a flat BOTH beside LONG
                # and SHORT): nothing is held there, so nothing disagrees.
                continue
            mismatch.append((line, problem))
            continue
        if tx.instrument(position.instrument) is None:
            if position.quantity:
                problems.append(
                    (
                        line,
                        f"the broker holds {fmt(position.quantity)} of {position.instrument}, "
                        "which is not registered: register the instrument, then reconcile "
                        "again (it will show as unknown_position)",
                    )
                )
            continue
        key = (position.account, position.instrument, side)
        if key in seen:
            problems.append(
                (
                    line,
                    f"a second position for {'/'.join(key)} "
                    f"(the first is on line {seen[key].number})",
                )
            )
            continue
        seen[key] = line
        by_key[key] = position
    if mismatch:
        raise ReconcileError(mismatch, mode_mismatch=True)
    if problems:
        raise ReconcileError(problems)
    return by_key


def plan(
    tx: UnitOfWork,
    broker: Mapping[Key, BrokerPosition],
    accounts: list[str],
    *,
    run: str,
    ts: int,
    policy: ReconcilePolicy | None,
    price_tolerance: Decimal,
    with_history: bool,
) -> list[Reconcile]:
    """One check per key the broker or the ledger holds something on, in key order."""
    keys: set[Key] = {key for key, position in broker.items() if position.quantity}
    for name in accounts:
        keys.update((name, instrument, side) for instrument, side in tx.held(name))
    chosen = policies(tx, accounts, policy)
    checks = []
    for key in sorted(keys):
        name, instrument, side = key
        position = broker.get(key)
        checks.append(
            Reconcile(
                run=run,
                account=name,
                instrument=instrument,
                position_side=side,
                quantity=ZERO if position is None else position.quantity,
                policy=chosen[name],
                price_tolerance=price_tolerance,
                ts=ts,
                avg_price=None if position is None else position.avg_price,
                with_history=with_history,
            )
        )
    return checks


def policies(
    tx: UnitOfWork, accounts: list[str], policy: ReconcilePolicy | None
) -> dict[str, ReconcilePolicy]:
    """The policy of each account's checks: ``policy`` for the run, else the account's own."""
    chosen = {}
    for name in accounts:
        account = tx.account(name)
        assert account is not None, name
        chosen[name] = account.reconcile_policy if policy is None else policy
    return chosen


def check_dict(item: Reconcile, effects: Mapping[str, Any], seq: int | None) -> dict[str, Any]:
    """One compared key of a report, as ``reconcile --json`` prints it."""
    ledger = Decimal(effects["ledger_quantity"])
    orphan = effects.get("orphan")
    return {
        "seq": seq,
        "account": item.account,
        "instrument": item.instrument,
        "position_side": str(item.position_side),
        "kind": effects["kind"],
        "policy": str(item.policy),
        "ledger_quantity": effects["ledger_quantity"],
        "broker_quantity": fmt(item.quantity),
        "difference": fmt(item.quantity - ledger),
        "ledger_avg_price": effects["ledger_avg_price"],
        "broker_avg_price": None if item.avg_price is None else fmt(item.avg_price),
        "holders": dict(effects["holders"]),
        "action": effects["action"],
        "detail": effects["detail"],
        "orphan": None if orphan is None else msgspec.to_builtins(orphan),
    }
