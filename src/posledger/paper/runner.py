"""``posledger paper run``: the paper venue carrying out the ledger's commands.

The runner talks to the ledger only as a broker adapter does (docs/brackets.md, "Writing
an adapter"): it claims outbox commands, carries them out at its venue
(:class:`~.engine.Venue`, the command id as the order id), sends the venue's executions
back as ``fill`` inputs, and acks or fails each command. Between commands it feeds the
venue a price stream (:func:`~.prices.read_prices`), one event at a time, and marks the
ledger at each event's last price.

The venue's own book (open orders, executions not yet sent, last prices, positions) is
saved in the ledger database's ``paper_venues`` table, so that a run killed at any
instant and started again goes on where it stopped:

1. commands are claimed (a restarted runner takes its own claims back at once);
2. each is carried out at the venue: a second ``place`` of one id, a second cancel, an
   amend to the same size change nothing;
3. the venue's book is saved, with the executions it produced queued in it;
4. the queued executions go to the ledger as fills (a fill sent twice is a duplicate:
   its exec id is ``<order id>-<n>``), then the commands are acked or failed;
5. the book is saved again, its queue empty.

A crash before 3 repeats 2 on restart, harmlessly; a crash after 3 sends the queue again,
harmlessly. Price events at or before the venue's last one of an instrument are skipped
on restart: the venue has seen them.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..domain.enums import OrderType
from ..domain.numbers import fmt
from ..domain.timestamps import format_ts, parse_ts
from ..service.ledger import Ledger
from .engine import (
    CommissionModel,
    Execution,
    PaperOrder,
    SlippageModel,
    UnknownOrder,
    Venue,
    VenueError,
)
from .prices import Bar, Tick

__all__ = ["PaperReport", "PaperRun", "snapshot_lines"]

BATCH = 100
"""Commands claimed at a time."""
CRASH_AT = "POSLEDGER_PAPER_CRASH"
"""Fault injection for the crash tests: ``after-fill`` kills the process (SIGKILL) right
after the first fills reach the ledger, before the commands they caused are carried out."""


@dataclass
class PaperReport:
    events: int = 0
    skipped: int = 0
    """Price events the venue had seen before (a restarted run)."""
    fills: int = 0
    commands: int = 0
    failed: list[str] = field(default_factory=list)
    """Commands the venue could not carry out, with why."""


class PaperRun:
    """A paper venue serving a ledger (see the module)."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        venue: str = "paper",
        worker: str = "paper",
        accounts: Iterable[str] | None = None,
        slippage: SlippageModel | None = None,
        commission: CommissionModel | None = None,
        marks: bool = True,
        progress: Callable[[PaperReport], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.name = venue
        self.worker = worker
        self.accounts = None if accounts is None else tuple(accounts)
        self.marks = marks
        self.progress = progress
        self.report = PaperReport()
        saved = ledger.store.venue_state(venue)
        self.queue: list[Execution] = []
        if saved is None:
            self.venue = Venue(slippage=slippage, commission=commission)
        else:
            state = json.loads(saved)
            self.venue = Venue.from_state(state["venue"], slippage=slippage, commission=commission)
            self.queue = [_execution(entry) for entry in state.get("unsent", [])]
        self._restarted = True

    # -- the venue's book -----------------------------------------------------------------

    def save(self) -> None:
        state = {"venue": self.venue.to_state(), "unsent": [_record(e) for e in self.queue]}
        self.ledger.store.save_venue_state(self.name, json.dumps(state), self._now())

    def _now(self) -> int:
        return self.ledger.now()

    def send(self) -> None:
        """The queued executions to the ledger, as fills; then the queue is empty."""
        if not self.queue:
            return
        for execution in self.queue:
            outcome = self.ledger.apply_fill(**_fill_fields(execution))
            if outcome.status == "rejected":
                self.report.failed.append(f"fill {execution.exec_id}: {outcome.reason}")
            elif outcome.status == "applied":
                self.report.fills += 1
        self.queue = []
        if os.environ.get(CRASH_AT) == "after-fill":
            os.kill(os.getpid(), signal.SIGKILL)
        self.save()

    # -- commands ---------------------------------------------------------------------------

    def commands(self) -> int:
        """Carry out every command due (until none is left); how many."""
        done = 0
        while True:
            claimed = self.ledger.commands(
                claim=self.worker, limit=BATCH, accounts=self.accounts, own=self._restarted
            )
            self._restarted = False
            if not claimed:
                return done
            results = [(command, self._carry_out(command)) for command in claimed]
            self.save()
            self.send()
            for command, refused in results:
                if refused is None:
                    self.ledger.ack(command["command_id"], broker_order_id=command["command_id"])
                else:
                    self.ledger.fail(command["command_id"], reason=refused)
                    self.report.failed.append(
                        f"{command['kind']} {command['command_id']}: {refused}"
                    )
            done += len(claimed)
            self.report.commands += len(claimed)

    def _carry_out(self, command: dict[str, Any]) -> str | None:
        """Carry one command out at the venue; why it could not be, or None."""
        payload = command["payload"]
        kind = command["kind"]
        target = str(payload.get("client_order_id", command["command_id"]))
        try:
            if kind == "place":
                self.queue.extend(self.venue.submit(self._order(command, payload)))
            elif kind == "amend":
                self.venue.amend(target, Decimal(payload["quantity"]))
            elif kind == "cancel":
                self.venue.cancel(target)
            else:
                return f"unknown command kind {kind}"
        except UnknownOrder:
            return f"order {target} is not at this venue"
        except (VenueError, ArithmeticError, KeyError) as exc:
            return str(exc)
        return None

    def _order(self, command: dict[str, Any], payload: dict[str, Any]) -> PaperOrder:
        instrument = payload["instrument"]
        last = self.venue.last_ts(instrument)
        side = payload.get("position_side")
        group = (
            "/".join((payload["account"], instrument, payload["strategy"], side or "BOTH"))
            + f"/{payload.get('bracket_id')}"
        )
        return PaperOrder(
            order_id=command["command_id"],
            account=payload["account"],
            instrument=instrument,
            side=payload["side"],
            quantity=Decimal(payload["quantity"]),
            order_type=OrderType(payload["order_type"]),
            limit_price=_decimal(payload.get("price")),
            stop_price=_decimal(payload.get("stop_price")),
            position_side=side,
            strategy=payload.get("strategy"),
            oco_group=group if payload.get("bracket_id") else None,
            submitted_ts=last if last is not None else parse_ts(command["created_at"]),
        )

    # -- prices -----------------------------------------------------------------------------

    def run(self, prices: Iterable[Tick | Bar]) -> PaperReport:
        """Sweep, send what a crash left queued, carry out what is due, then feed the venue
        the price stream, carrying out the commands each event causes before the next."""
        self.ledger.sweep()
        self.send()
        self.commands()
        for event in prices:
            last = self.venue.last_ts(event.instrument)
            if last is not None and event.ts <= last:
                self.report.skipped += 1
                continue
            self.commands()
            self.queue.extend(self.venue.on_price(event))
            self.save()
            self.send()
            if self.marks:
                price = event.price if isinstance(event, Tick) else event.close
                self.ledger.apply_mark(
                    instrument=event.instrument, price=price, ts=format_ts(event.ts)
                )
            self.commands()
            self.report.events += 1
            if self.progress is not None:
                self.progress(self.report)
        return self.report


def snapshot_lines(venue: Venue) -> list[str]:
    """The venue's positions as ``broker_position`` lines, for ``posledger reconcile``."""
    lines = []
    for (account, instrument, side), (quantity, avg) in sorted(
        venue.positions_with_prices().items()
    ):
        record: dict[str, Any] = {
            "type": "broker_position",
            "account": account,
            "instrument": instrument,
            "quantity": fmt(quantity),
            "position_side": side,
        }
        if avg is not None:
            record["avg_price"] = fmt(avg)
        lines.append(json.dumps(record))
    return lines


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _record(execution: Execution) -> dict[str, Any]:
    data = execution._asdict()
    for name in ("quantity", "price", "commission"):
        data[name] = fmt(data[name])
    return data


def _execution(data: dict[str, Any]) -> Execution:
    values = dict(data)
    for name in ("quantity", "price", "commission"):
        values[name] = Decimal(values[name])
    return Execution(**values)


def _fill_fields(execution: Execution) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "exec_id": execution.exec_id,
        "client_order_id": execution.order_id,
        "account": execution.account,
        "instrument": execution.instrument,
        "side": execution.side,
        "quantity": execution.quantity,
        "price": execution.price,
        "ts": format_ts(execution.ts),
    }
    if execution.commission:
        fields["commission"] = execution.commission
    if execution.position_side not in (None, "BOTH"):
        fields["position_side"] = execution.position_side
    return fields
