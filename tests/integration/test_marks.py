"""Marks through the ledger: stamping, staleness, and what they do to open trades."""

from __future__ import annotations

import json

from posledger import open_ledger
from posledger.domain.timestamps import parse_ts

from .helpers import entries

T = parse_ts("2026-03-02T15:00:00Z")


def _setup(url: str, clock: list[int]):
    ledger = open_ledger(url, clock=lambda: clock[0])
    ledger.register_account(account="A", venue="CME", mode="SIM", position_mode="netting")
    ledger.register_instrument(
        instrument="MES",
        kind="future",
        multiplier="5",
        quote_currency="USD",
        settlement_currency="USD",
    )
    ledger.register_strategy(strategy="s1")
    ledger.apply_fill(
        exec_id="e1",
        account="A",
        instrument="MES",
        side="BUY",
        quantity="2",
        price="100",
        ts="2026-03-02T14:00:00Z",
        strategy="s1",
    )
    return ledger


def test_a_mark_without_ts_is_stamped_when_received_and_journaled_so(db_url: str) -> None:
    clock = [T]
    with _setup(db_url, clock) as ledger:
        first = ledger.apply_mark(instrument="MES", price="98")
        clock[0] = T + 1_000_000_000
        second = ledger.apply_mark(instrument="MES", price="103")
        assert (first.status, second.status) == ("applied", "applied")
        [position] = ledger.positions()
        # (103 - 100) * 2 * 5 = 30, at the second mark, stamped one second later
        assert position["unrealized_pnl"] == "30"
        assert position["mark_ts"] == "2026-03-02T15:00:01Z"
        [trade] = ledger.trades()
        # worst mark 98: (98 - 100) * 2 * 5 = -20; best 103: +30
        assert (trade["mae"], trade["mfe"]) == ("-20", "30")
        assert ledger.verify().ok
        marks = [entry[4] for entry in entries(ledger) if entry[3] == "mark"]
    assert [json.loads(text)["ts"] for text in marks] == [
        "2026-03-02T15:00:00Z",
        "2026-03-02T15:00:01Z",
    ]


def test_a_stale_mark_changes_nothing(db_url: str) -> None:
    with _setup(db_url, [T]) as ledger:
        assert ledger.apply_mark(instrument="MES", price="101", ts="2026-03-02T15:00:00Z").applied
        stale = ledger.apply_mark(instrument="MES", price="90", ts="2026-03-02T14:59:59Z")
        assert stale.status == "duplicate" and "stale" in (stale.reason or "")
        [trade] = ledger.trades()
        assert (trade["mae"], trade["mfe"]) == ("0", "10")


# -- marks kept in memory, written by the policy (docs/accounting.md, Marks) ---------------

MS = 1_000_000


def _marks(ledger, *prices_at: tuple[str, int]) -> list:
    """Marks on MES at T + ``ms`` milliseconds, through the feed API."""
    from posledger.domain.inputs import Mark
    from posledger.domain.numbers import D

    return ledger.apply_marks(Mark("MES", D(price), T + ms * MS) for price, ms in prices_at)


def _written(ledger) -> list[dict]:
    return [json.loads(entry[4]) for entry in entries(ledger) if entry[3] == "mark"]


def test_extremes_between_two_written_marks_are_kept(db_url: str) -> None:
    """Marks 250 ms apart under persist_ms=1000 (extremes no sooner): only every fourth is
    written, but the one written carries the high and low of those before it, so the
    trade's MAE/MFE see the dip to 96 and the spike to 107 that no written price shows."""
    from posledger.domain.marks import MarkPolicy

    clock = [T]
    with _setup(db_url, clock) as ledger:
        ledger.mark_policy = MarkPolicy(persist_ms=1000, extreme_ms=1000)
        outcomes = _marks(
            ledger, ("101", 0), ("96", 250), ("107", 500), ("102", 750), ("103", 1000)
        )
        assert [o.status for o in outcomes] == ["applied"] * 5
        # the first is written (nothing was before it); then the one 1000 ms later
        assert [o.seq is not None for o in outcomes] == [True, False, False, False, True]
        written = _written(ledger)
        assert written[-1] == {
            "type": "mark",
            "instrument": "MES",
            "price": "103",
            "ts": "2026-03-02T15:00:01Z",
            "high": "107",
            "low": "96",
        }
        [trade] = ledger.trades()
        # long 2 @ 100, multiplier 5: worst 96 -> (96 - 100) * 2 * 5 = -40; best 107 -> 70
        assert (trade["mae_price"], trade["mfe_price"]) == ("96", "107")
        assert (trade["mae"], trade["mfe"]) == ("-40", "70")
        [position] = ledger.positions()
        assert position["unrealized_pnl"] == "30"  # at 103, the latest price
        assert ledger.verify().ok


def test_a_new_extreme_is_written_sooner_and_quiet_marks_not_at_all(db_url: str) -> None:
    from posledger.domain.marks import MarkPolicy

    clock = [T]
    with _setup(db_url, clock) as ledger:
        ledger.mark_policy = MarkPolicy(persist_ms=1000, extreme_ms=100)
        first = _marks(ledger, ("101", 0))  # written: the trade has now seen 100..101
        quiet = _marks(ledger, ("100.5", 150), ("100.75", 300))  # inside: kept in memory
        extreme = _marks(ledger, ("99", 400))  # a new low, 400 ms after the last written
        assert first[0].seq is not None
        assert [o.seq for o in quiet] == [None, None]
        assert extreme[0].seq is not None
        assert _written(ledger)[-1]["price"] == "99"
        [trade] = ledger.trades()
        assert trade["mae_price"] == "99"


def test_unwritten_marks_are_written_before_a_fill_closes_the_trade(db_url: str) -> None:
    """A fill on the instrument writes its marks first: a trade's MAE/MFE are final when
    it closes, with every mark before the close, and in journal order before the fill."""
    from posledger.domain.marks import MarkPolicy

    clock = [T]
    with _setup(db_url, clock) as ledger:
        ledger.mark_policy = MarkPolicy(persist_ms=60_000, extreme_ms=60_000)
        outcomes = _marks(ledger, ("101", 0), ("94", 10), ("100", 20))
        assert [o.seq is not None for o in outcomes] == [True, False, False]
        ledger.apply_fill(
            exec_id="e2",
            account="A",
            instrument="MES",
            side="SELL",
            quantity="2",
            price="100",
            ts="2026-03-02T15:00:00.030Z",
            strategy="s1",
        )
        kinds = [entry[3] for entry in entries(ledger)]
        assert kinds[-2:] == ["mark", "fill"]
        [trade] = ledger.trades()
        assert trade["status"] == "closed"
        # (94 - 100) * 2 * 5 = -60
        assert (trade["mae_price"], trade["mae"]) == ("94", "-60")
        assert ledger.verify().ok


def test_writes_are_bounded_by_the_policy(db_url: str) -> None:
    """2,000 marks 1 ms apart (2 s of mark time), rising: every one a new high. Under the
    default policy (a mark a second, a new extreme every 100 ms) at most 2 s / 100 ms + 1
    are written, and closing the ledger writes the rest."""
    clock = [T]
    with _setup(db_url, clock) as ledger:
        prices = [(f"{100 + k / 100:.2f}", k) for k in range(2000)]
        outcomes = _marks(ledger, *prices)
        written = sum(1 for o in outcomes if o.seq is not None)
        assert 2 <= written <= 21
        assert len(_written(ledger)) == written
    with open_ledger(db_url, clock=lambda: clock[0]) as again:
        last = _written(again)[-1]
        assert (last["price"], last["ts"]) == ("119.99", "2026-03-02T15:00:01.999Z")
        [trade] = again.trades()
        assert trade["mfe_price"] == "119.99"


def test_ingest_writes_what_it_kept_in_memory_at_its_end(db_url: str) -> None:
    clock = [T]
    with _setup(db_url, clock) as ledger:
        lines = [
            json.dumps({"type": "mark", "instrument": "MES", "price": p, "ts": ts})
            for p, ts in (
                ("101", "2026-03-02T15:00:00Z"),
                ("95", "2026-03-02T15:00:00.010Z"),
                ("102", "2026-03-02T15:00:00.020Z"),
            )
        ]
        report = ledger.ingest(lines, batch_size=10)
        assert report.applied == 3
        written = _written(ledger)
        assert written[-1]["price"] == "102" and written[-1]["low"] == "95"
        [trade] = ledger.trades()
        assert trade["mae_price"] == "95"
        # the same file again: every mark is stale now
        assert ledger.ingest(lines, batch_size=10).duplicate == 3


def test_marks_journaled_by_the_earlier_mae_rule_replay_by_the_current_one(db_url: str) -> None:
    """A database written before MAE/MFE counted fills at the peak quantity: its mark
    entries' effects recorded other values (and no ``mae_rule``). ``rebuild`` values them
    by the current rule, after which ``verify`` passes; their effects are not compared."""
    import sqlalchemy

    if db_url.startswith("memory://"):
        import pytest

        pytest.skip("memory: no journal rows to rewrite as an earlier version wrote them")
    clock = [T]
    with _setup(db_url, clock) as ledger:
        ledger.apply_mark(instrument="MES", price="98", ts="2026-03-02T14:30:00Z")
        assert ledger.verify().ok
    old = json.dumps({"trades": [{"trade_id": 1, "mae": "-20", "mfe": "0", "mae_price": "98",
                                  "mfe_price": "98"}]})  # fmt: skip
    engine = sqlalchemy.create_engine(db_url.replace("sqlite:", "sqlite+pysqlite:", 1))
    with engine.begin() as conn:
        conn.execute(
            sqlalchemy.text("UPDATE journal SET effects = :old WHERE kind = 'mark'"), {"old": old}
        )
        conn.execute(sqlalchemy.text("UPDATE trades SET mfe_price = '98', mfe = '0'"))
    engine.dispose()
    with open_ledger(db_url, clock=lambda: clock[0]) as ledger:
        report = ledger.verify()
        assert not report.ok and all("trades" in p for p in report.problems), report.problems
        ledger.rebuild()
        assert ledger.verify().ok
        [trade] = ledger.trades()
        assert (trade["mfe_price"], trade["mae_price"]) == ("100", "98")
