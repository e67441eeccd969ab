"""The outbox (docs/brackets.md): commands written with the input that caused them, then claimed
under a lease, acked or failed by whoever executes orders.

A command is pending until a worker claims it; a claim lasts until its lease runs out,
after which the command is handed out again (the worker died, or lost its connection).
Acked and failed are final. Claiming takes rows no other worker holds: ``FOR UPDATE SKIP
LOCKED`` on the servers, SQLite's single write lock there.
"""

from __future__ import annotations

from typing import Any

from ..domain.writeset import Command
from ..ports import CommandRow
from .backends import Backend
from .codec import COLUMNS, command_row
from .statements import Statements

__all__ = ["ACKED", "CLAIMED", "FAILED", "PENDING", "Outbox", "command_from_row", "stored_row"]

PENDING = "pending"
CLAIMED = "claimed"
ACKED = "acked"
FAILED = "failed"

_COLUMNS = ", ".join(COLUMNS["outbox"])


def command_from_row(row: tuple[Any, ...]) -> CommandRow:
    (
        command_id,
        seq,
        kind,
        account,
        instrument,
        strategy,
        payload,
        status,
        created_at,
        updated_at,
        worker,
        lease_until,
        attempts,
        broker_order_id,
        reason,
    ) = row
    return CommandRow(
        command_id,
        kind,
        account,
        instrument,
        strategy,
        str(payload),
        int(seq),
        status,
        int(created_at),
        worker,
        None if lease_until is None else int(lease_until),
        int(attempts),
        broker_order_id,
        reason,
        int(updated_at),
    )


def stored_row(command: CommandRow) -> tuple[Any, ...]:
    """A command as its row (the inverse of :func:`command_from_row`)."""
    return (
        command.command_id,
        command.seq,
        command.kind,
        command.account,
        command.instrument,
        command.strategy,
        command.payload,
        command.status,
        command.created_at,
        command.updated_at,
        command.worker,
        command.lease_until,
        command.attempts,
        command.broker_order_id,
        command.reason,
    )


class Outbox:
    def __init__(self, backend: Backend, statements: Statements) -> None:
        self.backend = backend
        self.sql = statements
        q = backend.placeholder
        lock = " FOR UPDATE SKIP LOCKED" if backend.has_streams_table_locks else ""
        self._q = q
        self._lock = lock
        self._due = (
            f"SELECT {_COLUMNS} FROM outbox WHERE (status = '{PENDING}' "
            f"OR (status = '{CLAIMED}' AND (lease_until <= {q} OR worker = {q}))){{filters}} "
            f"ORDER BY seq, command_id LIMIT {q}{lock}"
        )
        self._claim = (
            f"UPDATE outbox SET status = '{CLAIMED}', worker = {q}, lease_until = {q}, "
            f"attempts = attempts + 1, updated_at = {q} WHERE command_id = {q}"
        )
        self._one = f"SELECT {_COLUMNS} FROM outbox WHERE command_id = {q}{lock}"
        self._settle = (
            f"UPDATE outbox SET status = {q}, broker_order_id = {q}, reason = {q}, "
            f"lease_until = NULL, updated_at = {q} WHERE command_id = {q}"
        )

    def write(self, cursor: Any, commands: list[tuple[Command, int, int]]) -> None:
        """Store commands as (command, journal number of their cause, time)."""
        if commands:
            cursor.executemany(
                self.sql.insert["outbox"],
                [command_row(command, seq, now) for command, seq, now in commands],
            )

    def claim(
        self,
        cursor: Any,
        worker: str,
        limit: int,
        now: int,
        lease_ns: int,
        accounts: tuple[str, ...] | None = None,
        strategies: tuple[str, ...] | None = None,
        own: bool = False,
    ) -> list[CommandRow]:
        """Pending commands, and claimed ones whose lease ran out (or, ``own``, that
        ``worker`` holds already: a worker that restarted takes its claims back at once);
        of ``accounts`` and ``strategies`` only, when given (an empty one matches none)."""
        if accounts == () or strategies == ():
            return []
        mine = worker if own else None  # worker = NULL matches nothing
        filters, values = "", list[str]()
        for column, names in (("account", accounts), ("strategy", strategies)):
            if names is not None:
                filters += f" AND {column} IN ({', '.join([self._q] * len(names))})"
                values += names
        sql = self._due.format(filters=filters)
        params = (now, mine, *values, limit)
        cursor.execute(sql, params)
        due = [command_from_row(row) for row in cursor.fetchall()]
        until = now + lease_ns
        if due:
            cursor.executemany(
                self._claim, [(worker, until, now, command.command_id) for command in due]
            )
        return [
            command._replace(
                status=CLAIMED,
                worker=worker,
                lease_until=until,
                attempts=command.attempts + 1,
                updated_at=now,
            )
            for command in due
        ]

    def get(self, cursor: Any, command_id: str) -> CommandRow | None:
        cursor.execute(self._one, (command_id,))
        row = cursor.fetchone()
        return None if row is None else command_from_row(row)

    def settle(
        self,
        cursor: Any,
        command: CommandRow,
        status: str,
        now: int,
        broker_order_id: str | None,
        reason: str | None,
    ) -> CommandRow:
        cursor.execute(self._settle, (status, broker_order_id, reason, now, command.command_id))
        return command._replace(
            status=status,
            broker_order_id=broker_order_id,
            reason=reason,
            lease_until=None,
            updated_at=now,
        )
