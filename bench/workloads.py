"""The benchmark's inputs: one netting slot of a future, and a realistic JSONL session.

Every workload comes from a fixed seed, so every run measures the same inputs.
"""

from __future__ import annotations

import itertools
import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from posledger.domain.enums import Side
from posledger.domain.inputs import Fill, Mark

START_NS = int(datetime(2026, 3, 2, 14, 30, tzinfo=UTC).timestamp()) * 1_000_000_000


def iso(ns: int) -> str:
    """ISO 8601 UTC text with milliseconds for nanoseconds since the epoch."""
    when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def dec(value: Decimal) -> str:
    return format(value, "f")


def jsonl(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"))


# -- one slot -----------------------------------------------------------------------------

ACCOUNT = "SIM-4821"
INSTRUMENT = "MESH6.CME"
SLOT_STRATEGY = "mes-orb-01"
TICK = Decimal("0.25")
MES_COMMISSION = Decimal("0.62")

REFDATA_ONE_SLOT: list[dict[str, Any]] = [
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
    {"type": "strategy", "strategy": SLOT_STRATEGY},
]


@dataclass(frozen=True, slots=True)
class SlotFill:
    """One fill of the one-slot workload, before it becomes a Fill, a JSONL line or kwargs."""

    exec_id: str
    side: Side
    quantity: int
    price: Decimal
    ts: int
    held: int
    """The slot's position after this fill."""

    @property
    def commission(self) -> Decimal:
        return MES_COMMISSION * self.quantity


def one_slot_fills(count: int, seed: int, prefix: str) -> list[SlotFill]:
    """Fills for one netting slot of a future (multiplier 5).

    Each fill moves the slot to a random target position in -5..5 other than where it is:
    on the same side or flat four times in five, anywhere (a flip when the sign changes)
    otherwise. So the slot opens, increases, reduces, closes and sometimes flips. Prices
    walk in ticks of 0.25 around 6850.
    """
    rng = random.Random(seed)
    held, ticks, ts = 0, 27_400, START_NS
    out: list[SlotFill] = []
    for n in range(count):
        same_side = held and rng.random() < 0.8
        target = rng.choice(
            [t for t in range(-5, 6) if t != held and (not same_side or t * held >= 0)]
        )
        side = Side.BUY if target > held else Side.SELL
        quantity = abs(target - held)
        held = target
        ticks = max(4, ticks + rng.randint(-4, 4))
        ts += rng.randint(1, 2_000) * 1_000_000
        out.append(SlotFill(f"{prefix}-{n}", side, quantity, ticks * TICK, ts, held))
    return out


def slot_mix(fills: list[SlotFill]) -> str:
    """What the fills do to the slot, in shares: open, increase, reduce, close, flip."""
    roles: Counter[str] = Counter()
    before = 0
    for f in fills:
        after = f.held
        if before == 0:
            roles["open"] += 1
        elif after == 0:
            roles["close"] += 1
        elif after * before < 0:
            roles["flip"] += 1
        else:
            roles["increase" if abs(after) > abs(before) else "reduce"] += 1
        before = after
    names = ("open", "increase", "reduce", "close", "flip")
    return ", ".join(f"{name} {roles[name] / len(fills):.0%}" for name in names)


def as_fill(f: SlotFill) -> Fill:
    return Fill(
        exec_id=f.exec_id,
        account=ACCOUNT,
        instrument=INSTRUMENT,
        side=f.side,
        quantity=Decimal(f.quantity),
        price=f.price,
        ts=f.ts,
        strategy=SLOT_STRATEGY,
        commission=f.commission,
        commission_currency="USD",
    )


def as_fields(f: SlotFill) -> dict[str, Any]:
    """The keyword arguments of ``Ledger.apply_fill`` for this fill."""
    return {
        "exec_id": f.exec_id,
        "account": ACCOUNT,
        "instrument": INSTRUMENT,
        "side": str(f.side),
        "quantity": str(f.quantity),
        "price": dec(f.price),
        "ts": iso(f.ts),
        "strategy": SLOT_STRATEGY,
        "commission": dec(f.commission),
        "commission_currency": "USD",
    }


def as_line(f: SlotFill) -> str:
    return jsonl({"type": "fill", **as_fields(f)})


# -- a realistic session ------------------------------------------------------------------


@dataclass
class _Instr:
    name: str
    venue_prefix: str
    account: str
    tick: Decimal
    lot: Decimal
    lots: tuple[int, int]
    price: Decimal
    currency: str
    per_contract: Decimal | None  # futures: flat per contract; else a rate of notional
    rate: Decimal = Decimal("0.0004")


@dataclass
class _Strat:
    name: str
    instr: _Instr
    hedge_side: str | None  # LONG/SHORT on the hedge account, None on the netting one
    held: Decimal = Decimal(0)


@dataclass
class Session:
    """A session written to a JSONL file, and what is in it."""

    path: Path
    lines: int
    fills: int
    orders: int
    marks: int
    refdata: int
    size: int  # bytes


def write_session(path: Path, fills: int, seed: int) -> Session:
    """Write a realistic trading session to ``path`` (see ``session_lines``)."""
    counts: Counter[str] = Counter()
    with path.open("w", encoding="utf-8") as out:
        for line in session_lines(fills, seed, counts):
            out.write(line + "\n")
    fills, orders, marks, refdata = (counts[k] for k in ("fill", "order", "mark", "refdata"))
    return Session(path, counts.total(), fills, orders, marks, refdata, path.stat().st_size)


def session_lines(fills: int, seed: int, counts: Counter[str]) -> Iterator[str]:
    """A JSONL trading session: two accounts (netting CME, hedge Binance), three instruments,
    six strategies; every fill belongs to a registered order with an intent (entry, exit,
    take_profit, stop_loss), orders fill in one to three parts, commissions on every fill,
    a mark every 50 fills. Slots open, increase, reduce, close and (netting) flip.
    ``counts`` is told how many lines of each type were yielded."""
    rng = random.Random(seed)
    future = REFDATA_ONE_SLOT[1]
    refdata: list[dict[str, Any]] = [
        REFDATA_ONE_SLOT[0],
        {
            "type": "account",
            "account": "BN-UM-01",
            "venue": "BINANCE",
            "mode": "LIVE",
            "position_mode": "hedge",
        },
        future,
        future | {"instrument": "MNQH6.CME", "multiplier": "2"},
        {
            "type": "instrument",
            "instrument": "BTCUSDT-PERP.BINANCE",
            "kind": "perpetual",
            "multiplier": "1",
            "tick_size": "0.10",
            "lot_size": "0.001",
            "base_currency": "BTC",
            "quote_currency": "USDT",
            "settlement_currency": "USDT",
        },
    ]
    one, thousandth = Decimal(1), Decimal("0.001")
    mes = _Instr(
        INSTRUMENT, "cme", ACCOUNT, TICK, one, (1, 4), Decimal(6850), "USD", MES_COMMISSION
    )
    mnq = _Instr(
        "MNQH6.CME", "cme", ACCOUNT, TICK, one, (1, 6), Decimal(24100), "USD", MES_COMMISSION
    )
    btc = _Instr(
        "BTCUSDT-PERP.BINANCE", "bn", "BN-UM-01", Decimal("0.1"), thousandth, (1, 50),
        Decimal(91250), "USDT", None,
    )  # fmt: skip
    strategies = [
        _Strat("mes-orb-01", mes, None),
        _Strat("mes-mr-02", mes, None),
        _Strat("mnq-trend-01", mnq, None),
        _Strat("btc-trend", btc, "LONG"),
        _Strat("btc-fade", btc, "SHORT"),
        _Strat("btc-scalp", btc, "LONG"),
    ]
    refdata += [{"type": "strategy", "strategy": st.name} for st in strategies]
    for record in refdata:
        counts["refdata"] += 1
        yield jsonl(record)
    ts = START_NS
    exits = ("exit", "take_profit", "stop_loss")

    def lots(instr: _Instr) -> Decimal:
        return rng.randint(*instr.lots) * instr.lot

    while counts["fill"] < fills:
        st = rng.choice(strategies)
        instr, held = st.instr, st.held
        if not held:
            long_side = "BUY" if st.hedge_side in (None, "LONG") else "SELL"
            side = long_side if st.hedge_side else rng.choice(("BUY", "SELL"))
            quantity, intent = lots(instr), "entry"
        else:
            grow, shrink = ("BUY", "SELL") if held > 0 else ("SELL", "BUY")
            r = rng.random()
            if r < 0.25:
                side, quantity, intent = grow, lots(instr), "entry"
            elif r < 0.35 and st.hedge_side is None:
                side, quantity, intent = shrink, abs(held) + lots(instr), "entry"  # flip
            elif r < 0.55 and abs(held) > instr.lot:
                part = rng.randint(1, int(abs(held) / instr.lot) - 1) * instr.lot
                side, quantity, intent = shrink, part, rng.choice(exits)
            else:
                side, quantity, intent = shrink, abs(held), rng.choice(exits)
        counts["order"] += 1
        cid = f"{st.name}-{counts['order']}"
        ts += rng.randint(1, 3_000) * 1_000_000
        order: dict[str, Any] = {
            "type": "order",
            "client_order_id": cid,
            "account": instr.account,
            "strategy": st.name,
            "instrument": instr.name,
            "side": side,
            "quantity": dec(quantity),
            "intent": intent,
        }
        if st.hedge_side:
            order["position_side"] = st.hedge_side
        order["ts"] = iso(ts)
        yield jsonl(order)
        steps = int(quantity / instr.lot)
        parts = min(rng.randint(1, 3), steps)
        bounds = [0, *sorted(rng.sample(range(1, steps), parts - 1)), steps]
        for low, high in itertools.pairwise(bounds):
            size = (high - low) * instr.lot
            instr.price = max(instr.tick, instr.price + rng.randint(-6, 6) * instr.tick)
            ts += rng.randint(1, 900) * 1_000_000
            if instr.per_contract is not None:
                commission = instr.per_contract * size
            else:
                commission = (instr.price * size * instr.rate).quantize(Decimal("0.00000001"))
            counts["fill"] += 1
            yield jsonl(
                {
                    "type": "fill",
                    "exec_id": f"{instr.venue_prefix}-{counts['fill']}",
                    "account": instr.account,
                    "instrument": instr.name,
                    "side": side,
                    "quantity": dec(size),
                    "price": dec(instr.price),
                    "ts": iso(ts),
                    "client_order_id": cid,
                    "commission": dec(commission),
                    "commission_currency": instr.currency,
                }
            )
            st.held += size if side == "BUY" else -size
            if counts["fill"] % 50 == 0:
                counts["mark"] += 1
                marked = rng.choice((mes, mnq, btc))
                mark = {"type": "mark", "instrument": marked.name, "price": dec(marked.price)}
                yield jsonl(mark | {"ts": iso(ts)})
            if counts["fill"] >= fills:
                break


# -- brackets on every slot ----------------------------------------------------------------

BRACKET_STRATEGIES = ("b-orb", "b-fade", "b-trend", "b-mean")


def bracket_workload(count: int, seed: int) -> tuple[list[str], list[str], list[str]]:
    """Four strategies on one MES contract, each holding 3 to 9 lots and moving by 1 or 2
    a fill, never flat: with a bracket on every slot, every fill resizes two legs (two
    ``amend`` commands). Returns (set-up lines without brackets, the bracket lines, the
    fills)."""
    rng = random.Random(seed)
    setup = [jsonl(r) for r in REFDATA_ONE_SLOT[:2]]
    setup += [jsonl({"type": "strategy", "strategy": name}) for name in BRACKET_STRATEGIES]
    held = {}
    ts, ticks = START_NS, 27_400
    for name in BRACKET_STRATEGIES:
        held[name] = 5
        ts += 1_000_000
        setup.append(_bracket_fill(f"open-{name}", name, Side.BUY, 5, ticks * TICK, ts))
    brackets = [
        jsonl({"type": "bracket", "account": ACCOUNT, "instrument": INSTRUMENT, "strategy": name,
               "take_profit": dec((ticks + 400) * TICK), "stop_loss": dec((ticks - 400) * TICK)})
        for name in BRACKET_STRATEGIES
    ]  # fmt: skip
    fills = []
    for n in range(count):
        name = rng.choice(BRACKET_STRATEGIES)
        step = rng.choice((1, 2))
        up = held[name] + step <= 9 and (held[name] - step < 3 or rng.random() < 0.5)
        held[name] += step if up else -step
        ticks = max(4, ticks + rng.randint(-4, 4))
        ts += rng.randint(1, 2_000) * 1_000_000
        side = Side.BUY if up else Side.SELL
        fills.append(_bracket_fill(f"bf-{n}", name, side, step, ticks * TICK, ts))
    return setup, brackets, fills


def _bracket_fill(
    exec_id: str, strategy: str, side: Side, qty: int, price: Decimal, ts: int
) -> str:
    return jsonl({"type": "fill", "exec_id": exec_id, "account": ACCOUNT,
                  "instrument": INSTRUMENT, "side": str(side), "quantity": str(qty),
                  "price": dec(price), "ts": iso(ts), "strategy": strategy})  # fmt: skip


# -- marks on many open slots ----------------------------------------------------------------

MARK_INSTRUMENTS, MARK_STRATEGIES = 100, 10
MARK_SPACING_NS = 10_000
"""Mark time between two marks: 100,000 marks per second of mark time across the
instruments, 1,000 per instrument."""


def marks_workload(count: int, seed: int) -> tuple[list[str], list[Mark]]:
    """1,000 open slots: 10 strategies on each of 100 instruments, each long or short from
    a fill at 100. Then ``count`` marks (values, parsed already), round-robin over the
    instruments, each a random walk in quarter ticks. Returns (set-up lines, marks)."""
    rng = random.Random(seed)
    setup = [jsonl({"type": "account", "account": "MK-1", "venue": "X", "mode": "SIM",
                    "position_mode": "netting"})]  # fmt: skip
    names = [f"MK{i:03d}.X" for i in range(MARK_INSTRUMENTS)]
    for name in names:
        setup.append(jsonl({"type": "instrument", "instrument": name, "kind": "future",
                            "multiplier": "5", "quote_currency": "USD",
                            "settlement_currency": "USD", "tick_size": "0.25"}))  # fmt: skip
    setup += [jsonl({"type": "strategy", "strategy": f"mk-{s}"}) for s in range(MARK_STRATEGIES)]
    ts = START_NS
    for i, name in enumerate(names):
        for s in range(MARK_STRATEGIES):
            ts += 1_000_000
            setup.append(jsonl({"type": "fill", "exec_id": f"mk-{i}-{s}", "account": "MK-1",
                                "instrument": name, "side": rng.choice(("BUY", "SELL")),
                                "quantity": str(rng.randint(1, 5)), "price": "100",
                                "ts": iso(ts), "strategy": f"mk-{s}"}))  # fmt: skip
    prices = [Decimal(400)] * MARK_INSTRUMENTS  # in quarter ticks
    quarter = Decimal("0.25")
    marks = []
    start = ts + 1_000_000_000
    for n in range(count):
        i = n % MARK_INSTRUMENTS
        prices[i] += rng.choice((-1, 0, 0, 1))
        marks.append(Mark(names[i], prices[i] * quarter, start + n * MARK_SPACING_NS))
    return setup, marks
