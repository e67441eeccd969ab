"""A large, realistic, deterministic JSONL session for the crash and concurrency tests.

Several strategies trade two futures on two netting accounts and a perpetual on a
hedge-mode account; orders with every intent, partially filled, some cancelled; fills that
carry only a strategy, fills nobody owns (EXTERNAL), exits that overshoot (anomalies),
flips, marks, and a few fills sent twice.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

START = datetime(2026, 3, 2, tzinfo=UTC)

INSTRUMENTS = {
    "ES.F": {
        "kind": "future",
        "multiplier": "50",
        "tick_size": "0.25",
        "lot_size": "1",
        "quote_currency": "USD",
        "settlement_currency": "USD",
    },
    "NQ.F": {
        "kind": "future",
        "multiplier": "20",
        "tick_size": "0.25",
        "lot_size": "1",
        "quote_currency": "USD",
        "settlement_currency": "USD",
    },
    "BTC.P": {
        "kind": "perpetual",
        "multiplier": "1",
        "tick_size": "0.1",
        "lot_size": "0.001",
        "base_currency": "BTC",
        "quote_currency": "USDT",
        "settlement_currency": "USDT",
    },
}
START_PRICE = {"ES.F": Decimal("5000"), "NQ.F": Decimal("18000"), "BTC.P": Decimal("60000")}
TICK = {"ES.F": Decimal("0.25"), "NQ.F": Decimal("0.25"), "BTC.P": Decimal("0.1")}
LOT = {"ES.F": Decimal("1"), "NQ.F": Decimal("1"), "BTC.P": Decimal("0.001")}
ACCOUNTS = {"NET-A": "netting", "NET-B": "netting", "HEDGE-H": "hedge"}
STRATEGIES = ["orb", "trend", "fade", "scalp", "carry", "pairs"]
EXIT_INTENTS = ["exit", "take_profit", "stop_loss"]


@dataclass
class Session:
    path: Path
    lines: int
    fills: int
    """Fill lines, duplicates included."""
    exec_ids: int
    """Distinct (account, exec_id): the fills the ledger must hold in the end."""
    duplicates: int
    orders: int
    marks: int
    counts: dict[str, int] = field(default_factory=dict)


def _text(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _entry_side(rng: random.Random, hedge: bool, pside: str) -> str:
    if hedge:
        return "BUY" if pside == "LONG" else "SELL"
    return rng.choice(["BUY", "SELL"])


def generate(path: Path, fills: int, seed: int) -> Session:
    """Write a session with ``fills`` distinct fills (plus what they need) to ``path``."""
    rng = random.Random(seed)
    out: list[str] = []
    now = START
    price = dict(START_PRICE)
    held: dict[tuple[str, str, str, str], Decimal] = {}
    fill_lines: list[str] = []
    counts = {"order": 0, "fill": 0, "duplicate": 0, "mark": 0, "cancel": 0}
    exec_seq = 0
    order_seq = 0

    def emit(record: dict[str, object]) -> None:
        out.append(json.dumps(record, separators=(",", ":")))

    def stamp() -> str:
        nonlocal now
        now += timedelta(milliseconds=rng.randint(1, 4000))
        return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def move(instrument: str) -> Decimal:
        price[instrument] = max(
            TICK[instrument], price[instrument] + TICK[instrument] * rng.randint(-8, 8)
        )
        return price[instrument]

    for account, mode in ACCOUNTS.items():
        emit(
            {
                "type": "account",
                "account": account,
                "venue": "X",
                "mode": "LIVE",
                "position_mode": mode,
            }
        )
    for instrument, fields in INSTRUMENTS.items():
        emit({"type": "instrument", "instrument": instrument, **fields})
    for strategy in STRATEGIES:
        emit({"type": "strategy", "strategy": strategy})

    def send_fill(
        account: str, instrument: str, side: str, qty: Decimal, pside: str | None, **owner: str
    ) -> None:
        nonlocal exec_seq
        exec_seq += 1
        px = move(instrument)
        if instrument == "BTC.P":
            commission, ccy = (px * qty * Decimal("0.0004")).quantize(Decimal("0.00000001")), "USDT"
        else:
            commission, ccy = Decimal("1.18") * qty, "USD"
        record: dict[str, object] = {
            "type": "fill",
            "exec_id": f"{account[-1]}{exec_seq:07d}",
            "account": account,
            "instrument": instrument,
            "side": side,
            "quantity": _text(qty),
            "price": _text(px),
            "ts": stamp(),
            **owner,
            "commission": _text(commission),
            "commission_currency": ccy,
        }
        if pside is not None:
            record["position_side"] = pside
        emit(record)
        fill_lines.append(out[-1])
        counts["fill"] += 1

    while exec_seq < fills:
        account = rng.choice(list(ACCOUNTS))
        hedge = ACCOUNTS[account] == "hedge"
        instrument = "BTC.P" if hedge else rng.choice(["ES.F", "NQ.F"])
        strategy = rng.choice(STRATEGIES)
        pside = rng.choice(["LONG", "SHORT"]) if hedge else "BOTH"
        key = (account, instrument, strategy, pside)
        position = held.get(key, Decimal(0))
        lots = LOT[instrument] * rng.randint(1, 10)
        roll = rng.random()

        if roll < 0.04:  # a fill that names only its strategy (no order)
            side = _entry_side(rng, hedge, pside)
            send_fill(account, instrument, side, lots, pside if hedge else None, strategy=strategy)
            held[key] = position + (lots if side == "BUY" else -lots)
            continue
        if roll < 0.05:  # a fill nobody can be shown to own: EXTERNAL
            side = rng.choice(["BUY", "SELL"]) if not hedge else "BUY"
            send_fill(account, instrument, side, lots, "LONG" if hedge else None)
            continue
        if roll < 0.06 and fill_lines:  # a fill sent again, verbatim
            out.append(rng.choice(fill_lines[-500:]))
            counts["duplicate"] += 1
            continue
        if roll < 0.08:  # a mark
            emit(
                {
                    "type": "mark",
                    "instrument": instrument,
                    "price": _text(move(instrument)),
                    "ts": stamp(),
                }
            )
            counts["mark"] += 1
            continue

        order_seq += 1
        coid = f"o{order_seq:07d}"
        if position == 0 or rng.random() < 0.45:
            intent = "entry"
            side = _entry_side(rng, hedge, pside)
            quantity = lots
        else:
            intent = rng.choice(EXIT_INTENTS)
            side = "SELL" if position > 0 else "BUY"
            quantity = abs(position)
            if rng.random() < 0.3:
                quantity = max(LOT[instrument], (quantity / 2).quantize(LOT[instrument]))
            if rng.random() < 0.03:
                quantity += LOT[instrument]  # overshoot: the excess goes to EXTERNAL
        order: dict[str, object] = {
            "type": "order",
            "client_order_id": coid,
            "account": account,
            "strategy": strategy,
            "instrument": instrument,
            "side": side,
            "quantity": _text(quantity),
            "intent": intent,
            "ts": stamp(),
        }
        if hedge:
            order["position_side"] = pside
        emit(order)
        counts["order"] += 1
        if rng.random() < 0.03:  # never filled, cancelled
            emit({"type": "cancel", "client_order_id": coid, "ts": stamp()})
            counts["cancel"] += 1
            continue
        remaining = quantity
        while remaining > 0 and exec_seq < fills:
            part = remaining
            if remaining > LOT[instrument] and rng.random() < 0.7:
                part = LOT[instrument] * rng.randint(
                    1, max(1, int(remaining / LOT[instrument]) // 2)
                )
            send_fill(
                account, instrument, side, part, pside if hedge else None, client_order_id=coid
            )
            remaining -= part
        delta = quantity - remaining
        signed = delta if side == "BUY" else -delta
        if intent == "entry":
            held[key] = position + signed
        elif position > 0:
            held[key] = max(Decimal(0), position + signed)
        else:
            held[key] = min(Decimal(0), position + signed)

    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return Session(
        path=path,
        lines=len(out),
        fills=counts["fill"] + counts["duplicate"],
        exec_ids=exec_seq,
        duplicates=counts["duplicate"],
        orders=counts["order"],
        marks=counts["mark"],
        counts=counts,
    )


if __name__ == "__main__":  # pragma: no cover - a manual helper
    import sys

    session = generate(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
    print(session)
