"""Input files for several ``posledger ingest`` processes writing one instrument at once.

Fill order matters for average prices and realized P&L, so the data is laid out for the
final state not to depend on how the processes interleave, while every process still
writes the same instrument (one journal stream, one lock):

* one netting account ``ACC``, one future ``FUT``; strategies ``s0`` .. ``s7`` and ``shared``.
* Strategy ``sk`` is traded by process k only, in order: fills that carry only the
  strategy (they may flip the position), entry orders filled in one or two parts, and
  exit / take-profit / stop-loss orders; ``s0``'s exits sometimes overshoot, so that part
  goes to ``EXTERNAL`` (an anomaly) -- only ``s0`` does that, so ``EXTERNAL`` stays
  deterministic too.
* ``shared`` fills are all BUY 1 @ 100 with the same commission and timestamp, each sent by
  2 to 8 processes at once (same exec_id, same content): applied once, in any order, they
  give the same state.
* Wave 1: process k gets the reference data (the same lines in every file), the first half
  of ``sk``'s inputs, a few of its own lines again (exact duplicates, always after the
  original), contested ``shared`` fills, its own bad line and one bad line every file has.
* Wave 2 (after wave 1 has finished): the second half of ``sk``'s inputs, exact copies of
  other processes' wave-1 lines, more contested ``shared`` fills and the bad lines again.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ACCOUNT = "ACC"
INSTRUMENT = "FUT"
SHARED = "shared"
START = datetime(2026, 3, 2, 9, tzinfo=UTC)
TICK = Decimal("0.25")
SHARED_TS = "2026-03-02T08:00:00Z"
EXIT_INTENTS = ("exit", "take_profit", "stop_loss")


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"))


def _text(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def strategies(processes: int) -> list[str]:
    return [f"s{k}" for k in range(processes)]


def reference_lines(processes: int) -> list[str]:
    """Account, instrument and strategies: the first lines of every file."""
    records: list[dict[str, Any]] = [
        {
            "type": "account",
            "account": ACCOUNT,
            "venue": "CME",
            "mode": "SIM",
            "position_mode": "netting",
        },
        {
            "type": "instrument",
            "instrument": INSTRUMENT,
            "kind": "future",
            "multiplier": "5",
            "tick_size": "0.25",
            "lot_size": "1",
            "quote_currency": "USD",
            "settlement_currency": "USD",
        },
    ]
    records += [{"type": "strategy", "strategy": name} for name in strategies(processes)]
    records.append({"type": "strategy", "strategy": SHARED})
    return [_line(record) for record in records]


def strategy_inputs(strategy: str, fills: int, rng: random.Random, overshoot: bool) -> list[str]:
    """Orders and ``fills`` fills of one strategy, in the order they must be applied."""
    out: list[str] = []
    now = START
    price = Decimal(100) + TICK * rng.randint(-40, 40)
    held = Decimal(0)
    made = 0
    orders = 0

    def stamp() -> str:
        nonlocal now
        now += timedelta(milliseconds=rng.randint(1, 5000))
        return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def fill(side: str, quantity: Decimal, **owner: str) -> None:
        nonlocal made, price, held
        made += 1
        price = max(TICK, price + TICK * rng.randint(-6, 6))
        record = {
            "type": "fill",
            "exec_id": f"{strategy}-x{made:05d}",
            "account": ACCOUNT,
            "instrument": INSTRUMENT,
            "side": side,
            "quantity": _text(quantity),
            "price": _text(price),
            "ts": stamp(),
            **owner,
            "commission": _text(Decimal("0.62") * quantity),
            "commission_currency": "USD",
        }
        out.append(_line(record))

    def order(side: str, quantity: Decimal, intent: str) -> str:
        nonlocal orders
        orders += 1
        coid = f"{strategy}-o{orders:05d}"
        record = {
            "type": "order",
            "client_order_id": coid,
            "account": ACCOUNT,
            "strategy": strategy,
            "instrument": INSTRUMENT,
            "side": side,
            "quantity": _text(quantity),
            "intent": intent,
            "ts": stamp(),
        }
        out.append(_line(record))
        return coid

    while made < fills:
        roll = rng.random()
        if held == 0 or roll < 0.3:
            # A fill that names only its strategy: free to open, increase, reduce or flip.
            side = rng.choice(["BUY", "SELL"])
            quantity = Decimal(rng.randint(1, 6))
            fill(side, quantity, strategy=strategy)
            held += quantity if side == "BUY" else -quantity
        elif roll < 0.6:
            side = rng.choice(["BUY", "SELL"])
            quantity = Decimal(rng.randint(1, 6))
            coid = order(side, quantity, "entry")
            first = Decimal(rng.randint(1, int(quantity)))
            parts = [first, quantity - first] if first < quantity else [quantity]
            for part in parts:
                fill(side, part, client_order_id=coid)
                held += part if side == "BUY" else -part
        else:
            side = "SELL" if held > 0 else "BUY"
            quantity = abs(held)
            if rng.random() < 0.3 and quantity > 1:
                quantity = Decimal(rng.randint(1, int(quantity) - 1))
            if overshoot and rng.random() < 0.25:
                quantity += rng.randint(1, 2)
            coid = order(side, quantity, rng.choice(EXIT_INTENTS))
            fill(side, quantity, client_order_id=coid)
            taken = min(quantity, abs(held))
            held += taken if side == "BUY" else -taken
    return out


def shared_fill(exec_id: str) -> str:
    """A contested fill: every one is BUY 1 @ 100 at the same time with the same
    commission, so ``shared``'s state does not depend on the order they are applied in."""
    record = {
        "type": "fill",
        "exec_id": exec_id,
        "account": ACCOUNT,
        "instrument": INSTRUMENT,
        "side": "BUY",
        "quantity": "1",
        "price": "100",
        "ts": SHARED_TS,
        "strategy": SHARED,
        "commission": "0.5",
        "commission_currency": "USD",
    }
    return _line(record)


def bad_line(exec_id: str) -> str:
    """A fill of an unregistered account: refused, whatever the order."""
    record = json.loads(shared_fill(exec_id))
    record["account"] = "NOPE"
    return _line(record)


COMMON_BAD = bad_line("bad-common")


@dataclass
class Plan:
    seed: int
    processes: int
    waves: list[list[list[str]]]
    """waves[w][k]: the lines of process k in wave w."""
    shared: list[str] = field(default_factory=list)
    """Exec ids of the contested ``shared`` fills."""

    def write(self, directory: Path) -> list[list[Path]]:
        paths = []
        for w, wave in enumerate(self.waves):
            paths.append([])
            for k, lines in enumerate(wave):
                path = directory / f"wave{w + 1}-p{k}.jsonl"
                path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
                paths[-1].append(path)
        return paths

    @property
    def exec_ids(self) -> set[str]:
        """Every (good) fill's exec_id."""
        found = set()
        for wave in self.waves:
            for lines in wave:
                for line in lines:
                    record = json.loads(line)
                    if record["type"] == "fill" and record["account"] == ACCOUNT:
                        found.add(record["exec_id"])
        return found


def _insert_randomly(rng: random.Random, lines: list[str], extra: list[str], after: int) -> None:
    """Insert ``extra`` lines at random places of ``lines``, none before index ``after``."""
    for line in extra:
        lines.insert(rng.randint(after, len(lines)), line)


def _contested(rng: random.Random, processes: int, prefix: str, count: int) -> list[list[str]]:
    per_process: list[list[str]] = [[] for _ in range(processes)]
    for i in range(count):
        line = shared_fill(f"{prefix}-{i:04d}")
        senders = rng.sample(range(processes), rng.randint(min(2, processes), processes))
        for k in senders:
            per_process[k].append(line)
    return per_process


def make_plan(seed: int, processes: int = 8, fills: int = 400, contested: int = 60) -> Plan:
    """``fills`` fills per strategy (half in each wave) and ``contested`` shared fills per
    wave, each sent by 2 to ``processes`` processes."""
    rng = random.Random(seed)
    head = reference_lines(processes)
    own = [
        strategy_inputs(name, fills, rng, overshoot=(k == 0))
        for k, name in enumerate(strategies(processes))
    ]
    halves: list[tuple[list[str], list[str]]] = []
    for inputs in own:
        # Cut after the fill that ends the first half.
        fill_lines = [i for i, line in enumerate(inputs) if '"type":"fill"' in line]
        cut = fill_lines[len(fill_lines) // 2 - 1] + 1
        halves.append((inputs[:cut], inputs[cut:]))

    wave1: list[list[str]] = []
    shared1 = _contested(rng, processes, "sh1", contested)
    for k in range(processes):
        body = list(halves[k][0])
        # Some of its own lines again, each somewhere after the original.
        for index in sorted(rng.sample(range(len(body)), max(1, len(body) // 20)), reverse=True):
            body.insert(rng.randint(index + 1, len(body)), body[index])
        _insert_randomly(rng, body, shared1[k] + [bad_line(f"bad1-p{k}"), COMMON_BAD], 0)
        wave1.append(head + body)

    wave2: list[list[str]] = []
    shared2 = _contested(rng, processes, "sh2", contested)
    for k in range(processes):
        body = list(halves[k][1])
        others = [line for j in range(processes) if j != k for line in wave1[j]]
        copies = rng.sample(others, min(len(others), max(1, len(body) // 8)))
        _insert_randomly(rng, body, copies + shared2[k] + [bad_line(f"bad2-p{k}"), COMMON_BAD], 0)
        wave2.append(body)

    shared = [f"sh1-{i:04d}" for i in range(contested)] + [f"sh2-{i:04d}" for i in range(contested)]
    return Plan(seed, processes, [wave1, wave2], shared)
