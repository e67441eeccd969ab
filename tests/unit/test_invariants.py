"""check_invariants finds broken states built by hand (docs/accounting.md, Invariants)."""

from __future__ import annotations

from posledger.domain.enums import EXTERNAL, Direction, Kind, PositionSide, Side
from posledger.domain.invariants import check_invariants, fill_delta
from posledger.domain.numbers import D
from posledger.domain.positions import Lot, Slot, SlotKey, Trade

from .scenario import T0, future, spot

BOTH, LONG, SHORT = PositionSide.BOTH, PositionSide.LONG, PositionSide.SHORT


def key(strategy: str = "s1", side: PositionSide = BOTH, account: str = "A") -> SlotKey:
    return SlotKey(account, "ES", strategy, side)


def trade(trade_id: int, k: SlotKey, quantity: str, direction=Direction.LONG) -> Trade:
    q = D(quantity)
    return Trade(trade_id, k, direction, T0, "USD", q, q, D(100), q)


def slot(k: SlotKey, quantity: str, trade_id: int | None) -> Slot:
    return Slot(k, D(quantity), D(100), (), trade_id)


def test_a_consistent_state_has_no_problems():
    s1, ext = key("s1"), key(EXTERNAL)
    slots = [slot(s1, "2", 1), slot(ext, "-0.5", 2)]
    trades = [trade(1, s1, "2"), trade(2, ext, "0.5", Direction.SHORT)]
    # 2 + (-0.5) = 1.5 held; the fills applied there net 1.5
    assert check_invariants(slots, trades, {("A", "ES", BOTH): D("1.5")}, set()) == []


def test_broken_conservation_is_found():
    s1 = key("s1")
    problems = check_invariants(
        [slot(s1, "2", 1)], [trade(1, s1, "2")], {("A", "ES", BOTH): D(3)}, set()
    )
    assert len(problems) == 1
    assert "conservation" in problems[0]
    assert "A/ES/BOTH" in problems[0]


def test_fills_without_any_slot_break_conservation():
    problems = check_invariants([], [], {("A", "ES", LONG): D(1)}, {"A"})
    assert any("conservation" in p for p in problems)


def test_two_open_trades_in_one_slot_are_found():
    s1 = key("s1")
    problems = check_invariants(
        [slot(s1, "2", 2)],
        [trade(1, s1, "2"), trade(2, s1, "2")],
        {("A", "ES", BOTH): D(2)},
        set(),
    )
    assert any("2 open trades (1, 2)" in p for p in problems)


def test_hedge_slot_with_the_wrong_sign_is_found():
    long_key, short_key = key("s1", LONG, "H"), key("s2", SHORT, "H")
    slots = [slot(long_key, "-1", 1), slot(short_key, "1", 2)]
    trades = [trade(1, long_key, "1", Direction.SHORT), trade(2, short_key, "1")]
    net = {("H", "ES", LONG): D(-1), ("H", "ES", SHORT): D(1)}
    problems = check_invariants(slots, trades, net, {"H"})
    assert any("hedge LONG slot H/ES/s1/LONG is short -1" in p for p in problems)
    assert any("hedge SHORT slot H/ES/s2/SHORT is long 1" in p for p in problems)
    # the same state on a netting account is not a hedge problem
    assert not any("hedge" in p for p in check_invariants(slots, trades, net, set()))


def test_external_hedge_slot_may_hold_the_wrong_sign():
    ext = key(EXTERNAL, LONG, "H")
    problems = check_invariants(
        [slot(ext, "-1", 1)],
        [trade(1, ext, "1", Direction.SHORT)],
        {("H", "ES", LONG): D(-1)},
        {"H"},
    )
    assert problems == []


def test_slot_and_trade_disagreements_are_found():
    s1, s2, s3 = key("s1"), key("s2"), key("s3")
    slots = [slot(s1, "0", 1), slot(s2, "2", None), slot(s3, "-3", 7)]
    trades = [trade(1, s1, "1"), trade(3, s3, "2")]
    net = {("A", "ES", BOTH): D(-1)}
    problems = check_invariants(slots, trades, net, set())
    assert any("flat slot A/ES/s1/BOTH has an open trade 1" in p for p in problems)
    assert any("A/ES/s2/BOTH holds 2 without an open trade" in p for p in problems)
    assert any("points at trade 7, open is 3" in p for p in problems)
    assert any("trade 3 holds 2" in p for p in problems)
    assert any("trade 3 is LONG, its slot is SHORT" in p for p in problems)


def test_open_trade_on_an_unknown_slot_is_found():
    problems = check_invariants([], [trade(1, key("s9"), "1")], {}, set())
    assert any("unknown slot A/ES/s9/BOTH" in p for p in problems)


def test_lots_that_do_not_add_up_are_found():
    s1 = key("s1")
    bad = Slot(s1, D(2), D(100), (Lot(D(1), D(100)),), 1)
    problems = check_invariants([bad], [trade(1, s1, "2")], {("A", "ES", BOTH): D(2)}, set())
    assert any("lots do not add up" in p for p in problems)


def test_fill_delta():
    btc = spot()
    es = future()
    assert btc.kind is Kind.SPOT
    # spot, base commission: buy 1 paying 0.001 BTC holds 0.999; a sell gives 0.001 more
    assert fill_delta(Side.BUY, D(1), D("0.001"), "BTC", btc) == D("0.999")
    assert fill_delta(Side.SELL, D(1), D("0.001"), "BTC", btc) == D("-1.001")
    # quote commission, or not spot: the quantity alone
    assert fill_delta(Side.BUY, D(1), D("0.5"), "USDT", btc) == D(1)
    assert fill_delta(Side.SELL, D(2), D("0.5"), "BTC", es) == D(-2)
