"""How the command line shows things to people: tables, summaries, progress.

JSON output needs none of this: it prints what the ledger's queries return.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.table import Table

from ..domain.numbers import fmt

if TYPE_CHECKING:
    from ..service.ledger import IngestReport

__all__ = [
    "Progress",
    "anomalies_table",
    "commands_table",
    "console",
    "doctor_text",
    "halts_table",
    "human",
    "positions_table",
    "reconcile_table",
    "rejected_table",
    "summary_text",
    "trades_table",
    "transfers_table",
]


DEFAULT_WIDTH = 80
"""The width of a table when the output is not a terminal and COLUMNS is not set."""


def width(stream: IO[str] | None = None) -> int:
    """The columns a table may take: ``$COLUMNS`` when set, else the terminal's width,
    else 80 (output to a file or a pipe)."""
    given = os.environ.get("COLUMNS", "").strip()
    if given.isdigit() and int(given) >= 20:
        return int(given)
    target = stream or sys.stdout
    if target.isatty():
        return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
    return DEFAULT_WIDTH


WIDE = 100_000
"""The console width of ``--wide``: every column at its full width, however wide."""


def console(
    stream: IO[str] | None = None, *, wide: bool = False, soft_wrap: bool = False
) -> Console:
    """A console on ``stream`` (stdout) as wide as :func:`width` says, or, ``wide``, as wide
    as what it prints. ``soft_wrap``: text is printed as it is, never wrapped (prose with
    paths and commands to copy)."""
    target = stream or sys.stdout
    return Console(
        file=target, width=WIDE if wide else width(target), highlight=False, soft_wrap=soft_wrap
    )


@dataclass(frozen=True)
class Column:
    """A column of a table for people.

    ``wrap``: free text, wrapped at spaces (and folded) to the width left. Any other
    column (numbers, ids, names) stays whole on one line while the table fits. ``keep``: a
    column shown at any width; the others are shown, in the order given, while the table
    still fits, and the caption names those left out. ``label``: when every row has the
    same value there, the column goes and the title says ``label`` with the value."""

    name: str
    justify: str = "left"
    keep: bool = True
    wrap: bool = False
    label: str | None = None
    short: str | None = None
    """The header in a compact table (``instr`` for ``instrument``)."""

    @property
    def number(self) -> bool:
        """A column of numbers (right-aligned): never wrapped while text can be."""
        return self.justify == "right"


_WRAP_MIN = 16
"""The narrowest a wrapped column is made when columns are chosen."""


def fit_table(
    title: str,
    columns: list[Column],
    rows: list[list[str]],
    *,
    wide: bool = False,
    available: int | None = None,
) -> Table:
    """A table of ``rows`` (cells as text, one per column) within ``available`` columns
    (the console's width), never cutting a cell short (docs/cli.md#tables).

    Without ``wide``: a labelled column whose cells are all the same moves to the title;
    then the columns not kept go, last first, while the table is too wide (the caption
    names them); if even the kept columns do not fit in a box, the table is compact (no
    box, one space between columns, short headers) with as many columns as fit that way;
    if it is still too wide, text cells wrap (and fold) onto more lines, and numbers too
    only if they alone do not fit. ``wide``:
    every column, boxed, at its full width (print it on ``console(wide=True)``)."""
    room = width() if available is None else available
    compact_style = False

    def header(index: int) -> str:
        column = columns[index]
        return (column.short or column.name) if compact_style else column.name

    def natural(index: int) -> int:
        column = columns[index]
        size = max([len(header(index))] + [len(row[index]) for row in rows])
        return min(size, _WRAP_MIN) if column.wrap else size

    shown = list(range(len(columns)))
    labels = []
    if not wide and rows:
        for i, column in enumerate(columns):
            if column.label is not None and len({row[i] for row in rows}) == 1:
                shown.remove(i)
                labels.append(column.label.format(rows[0][i]))

    def fewer(size: Callable[[list[int]], int]) -> tuple[list[int], list[str]]:
        """The columns left when those not kept go, last first, until ``size`` fits."""
        kept = list(shown)
        optional = [i for i in kept if not columns[i].keep]
        gone: list[str] = []
        while optional and size(kept) > room:
            dropped = optional.pop()
            kept.remove(dropped)
            gone.insert(0, columns[dropped].name)
        return kept, gone

    def boxed(kept: list[int]) -> int:
        return sum(natural(i) + 3 for i in kept) + 1

    def compact(kept: list[int]) -> int:
        return sum(natural(i) + 1 for i in kept) - 1

    left_out: list[str] = []
    squeezed = False
    fold_numbers = False
    if not wide:
        kept, left_out = fewer(boxed)
        if boxed(kept) > room:
            compact_style = True
            kept, left_out = fewer(compact)
            squeezed = compact(kept) > room
            # Text columns give way first (at least 4 characters each); numbers fold too
            # only when they alone do not fit.
            texts = [i for i in kept if not columns[i].number]
            numbers = sum(natural(i) + 1 for i in kept if columns[i].number)
            fold_numbers = squeezed and numbers + 5 * len(texts) > room
        shown = kept
    box_style = not compact_style
    heading = title + (f" ({', '.join(labels)})" if labels else "")
    if box_style:
        table = Table(title=heading, title_justify="left")
    else:
        table = Table(
            title=heading,
            title_justify="left",
            box=box.SIMPLE_HEAD,
            padding=(0, 0),
            show_edge=False,
        )
    widths: dict[int, int] = {}
    if squeezed:
        # Widths set here, not left to Rich (which may exceed the room by a character,
        # and the console would then cut it): numbers get theirs, the other columns
        # share what is left, the narrowest needs first, free text last.
        fixed = [i for i in shown if columns[i].number and not fold_numbers]
        widths = {i: natural(i) for i in fixed}
        left = room - (len(shown) - 1) - sum(widths.values())

        def full(i: int) -> int:
            return max([len(header(i))] + [len(row[i]) for row in rows])

        def share_out(kept: list[int], room_left: int) -> int:
            """Water-filling: the narrowest first gets all it needs while it fits."""
            kept = sorted(kept, key=full)
            while kept:
                share = room_left // len(kept)
                if full(kept[0]) > share:
                    for n, j in enumerate(kept):
                        widths[j] = max(1, share + (n < room_left % len(kept)))
                    return 0
                widths[kept[0]] = full(kept[0])
                room_left -= full(kept.pop(0))
            return room_left

        text = [i for i in shown if i not in widths and not columns[i].wrap]
        free = [i for i in shown if i not in widths and columns[i].wrap]
        reserve = sum(min(full(i), 12) for i in free)
        left = share_out(text, left - reserve) + reserve
        share_out(free, left)
    for i in shown:
        column = columns[i]
        table.add_column(
            header(i),
            justify=column.justify,  # type: ignore[arg-type]
            no_wrap=not (column.wrap or squeezed),
            overflow="fold",
            min_width=min(natural(i), _WRAP_MIN) if column.wrap and not squeezed else None,
            width=widths.get(i),
        )
    for row in rows:
        table.add_row(*(row[i] for i in shown))
    if left_out:
        table.caption = f"not shown: {', '.join(left_out)} (--wide shows every column)"
        table.caption_justify = "left"
    return table


class Progress:
    """A progress bar on stderr for long work (ingest, verify, rebuild, reports...), shown
    only when stderr is a terminal, and only once ``at_least`` units are done (short work
    shows none). ``total``: the units there will be (None: unknown, a running count).

    ``tick(done, position=None)`` reports how many units are done; with ``measure`` (a
    total in other units, as the bytes of a file), ``position`` is how far through that
    the work is, and the bar follows it. ``done()`` removes the bar. Reusable as a
    context manager::

        with Progress(True, "reporting", "trades") as progress:
            for n, trade in enumerate(trades, 1):
                ...
                progress.tick(n)
    """

    def __init__(
        self,
        enabled: bool,
        what: str = "ingesting",
        unit: str = "lines",
        *,
        total: int | None = None,
        measure: int | None = None,
        at_least: int = 2000,
        stream: IO[str] | None = None,
    ) -> None:
        target = stream or sys.stderr
        self.enabled = enabled and target.isatty()
        self.what = what
        self.unit = unit
        self.total = measure if measure is not None else total
        self.by_position = measure is not None
        self.at_least = at_least
        self.stream = target
        self.lines = 0
        self._bar: Any = None
        self._task: Any = None

    def _start(self) -> None:
        from rich.progress import (
            BarColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Bar

        columns: list[Any] = [TextColumn(f"{self.what}"), BarColumn()]
        if self.total is not None:
            columns += [TaskProgressColumn(), TimeRemainingColumn()]
        columns += [
            TextColumn(f"{{task.fields[count]:,}} {self.unit}"),
            TimeElapsedColumn(),
        ]
        self._bar = Bar(
            *columns,
            console=Console(file=self.stream, highlight=False),
            transient=True,
        )
        self._task = self._bar.add_task(self.what, total=self.total, count=0)
        self._bar.start()

    def tick(self, lines: int, position: int | None = None) -> None:
        self.lines = lines
        if not self.enabled:
            return
        if self._bar is None:
            if lines < self.at_least:
                return
            self._start()
        completed = position if self.by_position and position is not None else lines
        self._bar.update(self._task, completed=completed, count=lines)

    def done(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.done()


SHOWN_REJECTIONS = 20
"""Rejected lines an ingest summary shows; ``posledger rejected`` lists every one."""


def summary_text(
    report: IngestReport, source: str, *, interrupted: bool = False, shown: int = SHOWN_REJECTIONS
) -> str:
    """An ingest's counts, then its first ``shown`` rejections and how many more."""
    stopped = "interrupted after " if interrupted else ""
    lines = [
        f"{source}: {stopped}{report.lines} lines: {report.applied} applied, "
        f"{report.duplicate} duplicate, {report.rejected} rejected"
    ]
    for number, reason in report.rejections[:shown]:
        lines.append(f"  rejected line {number}: {reason}")
    more = len(report.rejections) - shown
    if more > 0:
        lines.append(f"  ... and {more:,} more: posledger rejected lists them all")
    return "\n".join(lines)


def human(value: str | None, places: int = 6) -> str:
    """An amount for a human table: at most ``places`` decimals (JSON keeps every digit)."""
    if value is None:
        return "-"
    amount = Decimal(value)
    if amount.as_tuple().exponent < -places:  # type: ignore[operator]
        amount = amount.quantize(Decimal(1).scaleb(-places))
    return fmt(amount)


def _percent(value: str | None) -> str:
    if value is None:
        return "-"
    return f"{(Decimal(value) * 100).quantize(Decimal('0.001'))}%"


def _when(value: str | None) -> str:
    return "-" if value is None else value.replace("T", " ")[:19]


def positions_table(
    rows: list[dict[str, Any]], title: str = "Positions", *, wide: bool = False
) -> Table:
    """Slots. The position side is a column only when a slot is not BOTH (a hedge
    account) or with ``wide``."""
    sides = wide or any(row["position_side"] != "BOTH" for row in rows)
    columns = [
        Column("account", label="{}", short="acct"),
        Column("instrument", label="{}", short="instr"),
        Column("strategy"),
        *([Column("pos side", keep=False)] if sides else []),
        Column("qty", "right"),
        Column("avg entry", "right"),
        Column("realized", "right"),
        Column("unrealized", "right"),
        Column("ccy", label="P&L in {}"),
        Column("trade", "right"),
        Column("last", "right", keep=False),
        Column("mark", "right", keep=False),
    ]
    cells = []
    for row in rows:
        cells.append(
            [
                row["account"],
                row["instrument"],
                row["strategy"],
                *([row["position_side"]] if sides else []),
                row["signed_quantity"],
                human(row["avg_entry_price"]),
                human(row["realized_pnl"]),
                human(row["unrealized_pnl"]),
                row["pnl_currency"],
                str(row["trade_id"] or ""),
                human(row.get("last_price")),
                human(row.get("mark_price")),
            ]
        )
    return fit_table(title, columns, cells, wide=wide)


def trades_table(rows: list[dict[str, Any]], title: str = "Trades", *, wide: bool = False) -> Table:
    """Trades: id, slot, side, quantity, prices and net P&L always; the rest while it
    fits."""
    columns = [
        Column("id", "right"),
        Column("account", label="{}", short="acct"),
        Column("instrument", label="{}", short="instr"),
        Column("strategy"),
        Column("side"),
        Column("qty", "right"),
        Column("entry", "right"),
        Column("exit", "right"),
        Column("net p&l", "right"),
        Column("ccy", label="P&L in {}"),
        Column("peak", "right", keep=False),
        Column("reason", keep=False),
        Column("return", "right", keep=False),
        Column("opened", keep=False),
        Column("closed", keep=False),
    ]
    cells = []
    for row in rows:
        cells.append(
            [
                str(row["trade_id"]),
                row["account"],
                row["instrument"],
                row["strategy"],
                row["side"],
                row["quantity"],
                human(row["avg_entry_price"]),
                human(row["avg_exit_price"]),
                human(row["realized_pnl"]),
                row["pnl_currency"],
                row["peak_quantity"],
                row["close_reason"] or "",
                _percent(row["realized_return"]),
                _when(row["opened_at"]),
                _when(row["closed_at"]),
            ]
        )
    return fit_table(title, columns, cells, wide=wide)


def anomalies_table(rows: list[dict[str, Any]], *, wide: bool = False) -> Table:
    columns = [
        Column("seq", "right"),
        Column("kind"),
        Column("strategy"),
        Column("exec_id"),
        Column("qty", "right"),
        Column("detail", wrap=True),
        Column("account", keep=False),
        Column("instrument", keep=False),
    ]
    cells = [
        [
            str(row["seq"]),
            row["kind"],
            row["strategy"],
            row["exec_id"] or "",
            row["quantity"],
            row["detail"],
            row["account"],
            row["instrument"],
        ]
        for row in rows
    ]
    return fit_table("Anomalies", columns, cells, wide=wide)


def rejected_table(rows: list[dict[str, Any]], *, wide: bool = False) -> Table:
    columns = [
        Column("id", "right"),
        Column("line", "right"),
        Column("reason", wrap=True),
        Column("raw", wrap=True),
        Column("source", keep=False),
        Column("received", keep=False),
    ]
    cells = [
        [
            str(row["id"]),
            str(row["line"] or ""),
            row["reason"],
            row["raw"],
            row["source"] or "",
            row["received_at"],
        ]
        for row in rows
    ]
    return fit_table("Rejected inputs", columns, cells, wide=wide)


def reconcile_table(checks: list[dict[str, Any]], title: str, *, wide: bool = False) -> Table:
    columns = [
        Column("account"),
        Column("instrument"),
        Column("pos side"),
        Column("ledger", "right"),
        Column("broker", "right"),
        Column("result"),
        Column("action"),
        Column("detail", wrap=True),
    ]
    cells = []
    for check in checks:
        result = check["kind"]
        cells.append(
            [
                check["account"],
                check["instrument"],
                check["position_side"],
                check["ledger_quantity"],
                check["broker_quantity"],
                result if result == "agree" else result.upper(),
                check["action"],
                check["detail"] + ("" if not check["orphan"] else f"; {check['orphan']['detail']}"),
            ]
        )
    return fit_table(title, columns, cells, wide=wide)


def halts_table(rows: list[dict[str, Any]], *, wide: bool = False) -> Table:
    columns = [
        Column("account"),
        Column("instrument"),
        Column("since"),
        Column("seq", "right"),
        Column("reason", wrap=True),
    ]
    cells = [
        [row["account"], row["instrument"], _when(row["since"]), str(row["seq"]), row["reason"]]
        for row in rows
    ]
    return fit_table("Halts", columns, cells, wide=wide)


def transfers_table(rows: list[dict[str, Any]], *, wide: bool = False) -> Table:
    columns = [
        Column("seq", "right"),
        Column("account"),
        Column("instrument"),
        Column("from"),
        Column("to"),
        Column("qty", "right"),
        Column("price", "right"),
        Column("pos side", keep=False),
        Column("origin", keep=False),
        Column("ts", keep=False),
    ]
    cells = [
        [
            str(row["seq"]),
            row["account"],
            row["instrument"],
            row["from_strategy"],
            row["to_strategy"],
            row["quantity"],
            row["price"],
            row["position_side"],
            row["origin"],
            _when(row["ts"]),
        ]
        for row in rows
    ]
    return fit_table("Transfers", columns, cells, wide=wide)


def doctor_text(findings: list[dict[str, Any]], checks_run: list[str]) -> str:
    errors = sum(1 for f in findings if f["severity"] == "error")
    warnings = sum(1 for f in findings if f["severity"] == "warning")
    lines = []
    for finding in findings:
        lines.append(f"{finding['severity'].upper():7} {finding['check']}: {finding['subject']}")
        lines.append(f"        {finding['detail']}")
    verdict = "ok" if not errors else "PROBLEMS FOUND"
    lines.append(
        f"doctor: {verdict}: {len(checks_run)} checks, {errors} errors, {warnings} warnings, "
        f"{len(findings) - errors - warnings} notes"
    )
    return "\n".join(lines)


def order_text(kind: str, payload: dict[str, Any]) -> str:
    """What a command asks for, in a few words."""
    if kind == "place":
        price = []
        if payload.get("stop_price") is not None:
            price.append(f"stop {payload['stop_price']}")
        if payload.get("price") is not None:
            price.append(f"limit {payload['price']}")
        return (
            f"{payload.get('side', '')} {payload.get('quantity', '')} "
            f"{' '.join(price) or payload.get('order_type', '')} ({payload.get('intent', '')})"
        ).strip()
    if kind == "amend":
        return f"{payload.get('client_order_id', '')} to {payload.get('quantity', '')}"
    return str(payload.get("client_order_id", ""))


def commands_table(rows: list[dict[str, Any]], *, wide: bool = False) -> Table:
    columns = [
        Column("command"),
        Column("kind"),
        Column("order", wrap=True),
        Column("status"),
        Column("strategy", keep=False),
        Column("seq", "right", keep=False),
        Column("account", keep=False),
        Column("instrument", keep=False),
        Column("worker / lease", wrap=True, keep=False),
        Column("broker id / reason", wrap=True, keep=False),
    ]
    cells = []
    for row in rows:
        lease = "" if row["worker"] is None else f"{row['worker']} until {row['lease_until']}"
        settled = row["broker_order_id"] or row["reason"] or ""
        cells.append(
            [
                row["command_id"],
                row["kind"],
                order_text(row["kind"], row["payload"]),
                row["status"],
                row["strategy"],
                str(row["seq"]),
                row["account"],
                row["instrument"],
                lease if row["status"] == "claimed" else (row["worker"] or ""),
                settled,
            ]
        )
    return fit_table("Outbox commands", columns, cells, wide=wide)


def _leg_text(spec: dict[str, str] | None) -> str:
    if spec is None:
        return "-"
    if spec["order_type"] == "stop_limit":
        return f"stop {spec['stop_price']} limit {spec['price']}"
    if spec["order_type"] == "stop":
        return f"stop {spec['stop_price']}"
    return f"limit {spec['price']}"


def brackets_table(rows: list[dict[str, Any]], *, wide: bool = False) -> Table:
    columns = [
        Column("strategy"),
        Column("instrument"),
        Column("side"),
        Column("take-profit", wrap=True),
        Column("stop-loss", wrap=True),
        Column("legs", wrap=True),
        Column("account", keep=False),
    ]
    cells = []
    for row in rows:
        legs = ", ".join(
            f"{leg['intent']} {leg['remaining']} {leg['state']}" for leg in row["legs"]
        )
        if row["refused"]:
            legs += f" (refused: {', '.join(row['refused'])})"
        cells.append(
            [
                row["strategy"],
                row["instrument"],
                f"{row['direction']} {row['position_side']}",
                _leg_text(row["take_profit"]),
                _leg_text(row["stop_loss"]),
                legs or "-",
                row["account"],
            ]
        )
    return fit_table("Brackets", columns, cells, wide=wide)


def watched_table(rows: list[dict[str, Any]], *, wide: bool = False) -> Table:
    columns = [
        Column("client order id"),
        Column("strategy"),
        Column("intent"),
        Column("order", wrap=True),
        Column("left", "right"),
        Column("state"),
        Column("account", keep=False),
        Column("instrument", keep=False),
    ]
    cells = []
    for row in rows:
        spec = None
        if row["order_type"] is not None:
            spec = {k: row[k] for k in ("order_type", "price", "stop_price")}
        cells.append(
            [
                row["client_order_id"],
                row["strategy"],
                row["intent"],
                f"{row['side']} {_leg_text(spec) if spec else 'own order'}",
                row["remaining"],
                row["state"],
                row["account"],
                row["instrument"],
            ]
        )
    return fit_table("Watched exit orders", columns, cells, wide=wide)


def missing_exits_table(rows: list[dict[str, Any]], policy: str, *, wide: bool = False) -> Table:
    columns = [
        Column("strategy"),
        Column("instrument"),
        Column("exit", wrap=True),
        Column("qty", "right"),
        Column("price", "right"),
        Column("at"),
        Column("note", wrap=True, keep=False),
        Column("account", keep=False),
        Column("pos side", keep=False),
    ]
    cells = []
    for row in rows:
        price = row["price"] if row["price"] is not None else row["stop_price"]
        cells.append(
            [
                row["strategy"],
                row["instrument"],
                f"{row['side']} {row['order_type']} ({row['intent']})",
                row["quantity"],
                price or "-",
                row["at"] or "now",
                row["note"],
                row["account"],
                row["position_side"],
            ]
        )
    table = fit_table(f"Missing exits (policy {policy})", columns, cells, wide=wide)
    if not rows:
        table.caption = "every open position is covered"
    return table
