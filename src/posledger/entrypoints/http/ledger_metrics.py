"""The metrics read from the database at scrape time (docs/service.md, Metrics).

Positions (trades), open slots, anomalies, reconciliations and the outbox, as the books
hold them: the same whichever worker applied the fills and whichever answers the scrape,
and the same after a restart. One read transaction (a snapshot) per computation. The
arithmetic is the ledger's, in exact decimals; a value becomes a float only for the
exposition.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from prometheus_client import generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    SummaryMetricFamily,
)
from prometheus_client.metrics_core import Metric

from ...domain.enums import EXTERNAL, CheckKind
from ...domain.numbers import ZERO, exact, q18
from ...ports import Reads
from ...service.ledger import Ledger

__all__ = ["ANOMALY_KINDS", "COMMAND_STATUSES", "LABELS", "ledger_exposition"]

log = logging.getLogger(__name__)

LABELS = ("strategy", "instrument", "position_side", "account")
"""The labels of every position metric: nothing of higher cardinality (no trade id)."""

Labels = tuple[str, str, str, str]

NS = Decimal(1_000_000_000)


def _bounds(*values: str) -> tuple[Decimal, ...]:
    return tuple(Decimal(value) for value in values)


def _signed(*values: str) -> tuple[Decimal, ...]:
    """``-values`` (reversed), 0, ``values``: buckets for a gain or a loss."""
    up = _bounds(*values)
    return (*(-value for value in reversed(up)), ZERO, *up)


PNL_BUCKETS = _signed(
    "1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "10000"
)
"""Money, in the trade's P&L currency."""
PERCENT_BUCKETS = _signed("0.1", "0.25", "0.5", "1", "2", "5", "10", "20", "50", "100")
ROI_BUCKETS = _signed("0.001", "0.0025", "0.005", "0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1")
DURATION_BUCKETS = _bounds(
    "1", "5", "15", "30", "60", "300", "900", "1800", "3600", "7200", "14400", "28800",
    "86400", "259200", "604800", "2592000",
)  # fmt: skip
"""Seconds: a second to 30 days."""

ANOMALY_KINDS = (
    "exit_overshoot",
    "hedge_overshoot",
    "external_wrong_side",
    "orphaned_exit",
    "oversized_exit",
    "exit_refused",
    "exit_stuck",
)
"""The kinds the ledger records (docs/accounting.md, docs/brackets.md): each always has a
sample, 0 until one happens, so that ``increase()`` sees the first."""
COMMAND_STATUSES = ("pending", "claimed", "acked", "failed")
UNSETTLED = ("pending", "claimed")
"""A command neither acked nor failed yet: what the oldest-pending age is measured on."""
MISMATCHES = tuple(kind.value for kind in CheckKind if kind is not CheckKind.AGREE)


class _Histogram:
    """Observations in fixed buckets, summed exactly."""

    def __init__(self, bounds: tuple[Decimal, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.count = 0
        self.sum = ZERO

    def observe(self, value: Decimal) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # buckets are "less or equal"
        self.count += 1
        self.sum += value

    def buckets(self) -> list[tuple[str, float]]:
        found, cumulative = [], 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            cumulative += count
            found.append((repr(float(bound)), float(cumulative)))
        found.append(("+Inf", float(self.count)))
        return found


@dataclass
class _Positions:
    """What one label set's trades add up to."""

    opened: int = 0
    closed: int = 0
    winning: int = 0
    losing: int = 0
    pnl: _Histogram = field(default_factory=lambda: _Histogram(PNL_BUCKETS))
    pnl_percent: _Histogram = field(default_factory=lambda: _Histogram(PERCENT_BUCKETS))
    roi: _Histogram = field(default_factory=lambda: _Histogram(ROI_BUCKETS))
    duration: _Histogram = field(default_factory=lambda: _Histogram(DURATION_BUCKETS))
    # Summaries (a count and a sum): no buckets.
    commission: _Histogram = field(default_factory=lambda: _Histogram(()))
    entry_price: _Histogram = field(default_factory=lambda: _Histogram(()))
    exit_price: _Histogram = field(default_factory=lambda: _Histogram(()))


def roi(
    pnl: Decimal, peak: Decimal, avg_entry: Decimal, multiplier: Decimal, inverse: bool
) -> Decimal | None:
    """Realized P&L (net) over what the trade held at its peak, valued at its average entry,
    in the P&L currency: ``peak × multiplier × |avg_entry|`` (inverse: ``peak × multiplier /
    avg_entry``, in the base currency). None when that is 0. Within :func:`exact`."""
    notional = peak * multiplier / avg_entry if inverse else peak * multiplier * abs(avg_entry)
    if not notional:
        return None
    return q18(pnl / notional)


def _positions(reads: Reads) -> dict[Labels, _Positions]:
    found: dict[Labels, _Positions] = {}
    for (strategy, instrument, side, account), count in reads.tally("trades", LABELS).items():
        found[(strategy, instrument, side, account)] = _Positions(opened=count)
    for row in reads.closed_trade_figures():
        (account, instrument, strategy, side, opened_at, closed_at, peak, avg_entry) = row[:8]
        avg_exit, gross, pnl, returned, multiplier, inverse = row[8:]
        labels = (strategy, instrument, side, account)
        one = found.get(labels)
        if one is None:
            one = found[labels] = _Positions()
        one.closed += 1
        if pnl > 0:
            one.winning += 1
        elif pnl < 0:
            one.losing += 1
        one.pnl.observe(pnl)
        if returned is not None:
            one.pnl_percent.observe(returned * 100)
        ratio = roi(pnl, peak, avg_entry, multiplier, bool(inverse))
        if ratio is not None:
            one.roi.observe(ratio)
        one.duration.observe(Decimal(closed_at - opened_at) / NS)
        one.commission.observe(gross - pnl)
        one.entry_price.observe(avg_entry)
        if avg_exit is not None:
            one.exit_price.observe(avg_exit)
    return found


def _histogram(name: str, text: str) -> Metric:
    """A histogram family whose samples are added one by one: with its ``_sum`` and
    ``_count`` even where a bucket is negative (P&L), which the text format allows and
    prometheus_client's ``HistogramMetricFamily`` leaves out."""
    return Metric(name, text, "histogram")


def _position_families(found: dict[Labels, _Positions]) -> list[Metric]:
    def counter(name: str, text: str) -> CounterMetricFamily:
        return CounterMetricFamily(name, text, labels=LABELS)

    opened = counter("posledger_positions_opened", "Trades opened (open and closed ones).")
    closed = counter("posledger_positions_closed", "Trades closed.")
    winning = counter("posledger_positions_winning", "Closed trades with net realized P&L > 0.")
    losing = counter("posledger_positions_losing", "Closed trades with net realized P&L < 0.")
    histograms = {
        "pnl": _histogram(
            "posledger_position_pnl",
            "Closed trades' realized P&L net of commissions, in the trade's P&L currency.",
        ),
        "pnl_percent": _histogram(
            "posledger_position_pnl_percent",
            "Closed trades' realized_return x 100: the price move from average entry to "
            "average exit, sign-adjusted for shorts, in percent (before commissions).",
        ),
        "roi": _histogram(
            "posledger_position_roi",
            "Closed trades' net realized P&L over their peak quantity valued at the average "
            "entry (peak x multiplier x |avg_entry|; inverse: peak x multiplier / avg_entry), "
            "a ratio.",
        ),
        "duration": _histogram(
            "posledger_position_duration_seconds", "Closed trades' closed_at - opened_at."
        ),
    }
    summaries = {
        "commission": SummaryMetricFamily(
            "posledger_position_commission",
            "Closed trades' commissions in the P&L currency (gross - net realized P&L): "
            "_sum is the total.",
            labels=LABELS,
        ),
        "entry_price": SummaryMetricFamily(
            "posledger_position_entry_price",
            "Closed trades' average entry price: _sum / _count is their mean.",
            labels=LABELS,
        ),
        "exit_price": SummaryMetricFamily(
            "posledger_position_exit_price",
            "Closed trades' average exit price: _sum / _count is their mean.",
            labels=LABELS,
        ),
    }
    for labels in sorted(found):
        one = found[labels]
        opened.add_metric(labels, one.opened)
        closed.add_metric(labels, one.closed)
        winning.add_metric(labels, one.winning)
        losing.add_metric(labels, one.losing)
        named = dict(zip(LABELS, labels, strict=True))
        for name, family in histograms.items():
            seen: _Histogram = getattr(one, name)
            for bound, count in seen.buckets():
                family.add_sample(f"{family.name}_bucket", {**named, "le": bound}, count)
            family.add_sample(f"{family.name}_count", named, seen.count)
            family.add_sample(f"{family.name}_sum", named, float(seen.sum))
        for name, summary in summaries.items():
            seen = getattr(one, name)
            summary.add_metric(labels, seen.count, float(seen.sum))
    return [opened, closed, winning, losing, *histograms.values(), *summaries.values()]


def _state_families(reads: Reads, now: int) -> list[Metric]:
    _, strategies = reads.reference()
    held = Counter(slot.key.strategy for slot in reads.open_slots({}))
    slots = GaugeMetricFamily(
        "posledger_open_slots", "Slots holding a position, per strategy.", labels=["strategy"]
    )
    for strategy in sorted({*strategies, EXTERNAL, *held}):
        slots.add_metric([strategy], held[strategy])

    anomalies = CounterMetricFamily(
        "posledger_anomalies", "Anomalies recorded (docs/accounting.md), by kind.", labels=["kind"]
    )
    kinds = {kind: count for (kind,), count in reads.tally("anomalies", ("kind",)).items()}
    for kind in sorted({*ANOMALY_KINDS, *kinds}):
        anomalies.add_metric([kind], kinds.get(kind, 0))

    commands = GaugeMetricFamily(
        "posledger_commands", "Outbox commands, by status.", labels=["status"]
    )
    statuses = {status: count for (status,), count in reads.tally("outbox", ("status",)).items()}
    for status in sorted({*COMMAND_STATUSES, *statuses}):
        commands.add_metric([status], statuses.get(status, 0))
    oldest = reads.oldest_command(UNSETTLED)
    age = GaugeMetricFamily(
        "posledger_command_oldest_pending_age_seconds",
        "Age of the oldest command not yet acked or failed (pending or claimed); 0 if none.",
        value=0.0 if oldest is None else max(0, now - oldest) / 1e9,
    )

    mismatches = GaugeMetricFamily(
        "posledger_reconciliation_mismatches",
        "Checks of each account's latest reconciliation run that found a difference, by kind.",
        labels=["account", "kind"],
    )
    last = GaugeMetricFamily(
        "posledger_reconciliation_last_run_timestamp_seconds",
        "When each account's latest reconciliation run ran (Unix time).",
        labels=["account"],
    )
    runs: dict[str, tuple[int, Counter[str]]] = {}
    for account, _run, kind, checks, ts in reads.latest_reconciliations():
        when, kinds_seen = runs.setdefault(account, (ts, Counter()))
        kinds_seen[kind] += checks
        runs[account] = (max(when, ts), kinds_seen)
    for account in sorted(runs):
        when, kinds_seen = runs[account]
        last.add_metric([account], when / 1e9)
        for kind in MISMATCHES:
            mismatches.add_metric([account, kind], kinds_seen[kind])
    return [slots, anomalies, commands, age, mismatches, last]


def ledger_families(ledger: Ledger) -> list[Metric]:
    """Every metric read from the database, from one snapshot of the books."""
    now = ledger.now()
    with ledger.store.snapshot() as reads, exact():
        return [*_position_families(_positions(reads)), *_state_families(reads, now)]


class _Families:
    def __init__(self, families: Sequence[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def ledger_exposition(ledger: Ledger) -> bytes:
    """The database's metrics as Prometheus text, with ``posledger_ledger_metrics_up`` (0
    when the database could not be read: the error is logged and the rest left out) and
    the seconds the read took."""
    started = time.perf_counter()
    try:
        families = ledger_families(ledger)
        up = 1
    except Exception:
        log.exception("the ledger's metrics could not be read from the database")
        families, up = [], 0
    families += [
        GaugeMetricFamily(
            "posledger_ledger_metrics_up",
            "1 when the ledger's metrics were read from the database, 0 when that failed.",
            value=up,
        ),
        GaugeMetricFamily(
            "posledger_ledger_metrics_read_seconds",
            "How long reading the ledger's metrics from the database took.",
            value=time.perf_counter() - started,
        ),
    ]
    return generate_latest(_Families(families))
