"""Reconciliation while fills keep arriving: every run commits whole, in journal order, and
replaying the journal gives exactly the stored state."""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal

from posledger import open_ledger

from .helpers import T, entries, setup

INSTRUMENTS = ("FUT", "FUT2", "FUT3")
FILLS = 240
RUNS = 12


def _register(db_url: str) -> None:
    with open_ledger(db_url) as ledger:
        setup(ledger)
        for name in INSTRUMENTS[1:]:
            assert ledger.register_instrument(
                instrument=name,
                kind="future",
                multiplier="1",
                quote_currency="USD",
                settlement_currency="USD",
            ).applied
        assert ledger.apply_mark(instrument="FUT", price="100", ts=f"{T}09:00:00Z").applied


STARTED = threading.Event()
"""Set by the writer after its first fills."""
FIRST_RUN = threading.Event()
"""Set by the reconciler after its first run: the writer goes on only then, so that runs
fall between fills whatever the machine's speed."""


def _fills(db_url: str, errors: list[BaseException]) -> None:
    try:
        with open_ledger(db_url) as ledger:
            for n in range(FILLS):
                if n == 20:
                    STARTED.set()
                    FIRST_RUN.wait(timeout=120)
                outcome = ledger.apply_fill(
                    exec_id=f"f{n}",
                    account="ACC",
                    instrument=INSTRUMENTS[n % len(INSTRUMENTS)],
                    side="BUY" if n % 3 else "SELL",
                    quantity="1",
                    price=str(100 + n % 7),
                    ts=f"{T}10:{n // 60:02d}:{n % 60:02d}Z",
                    strategy=("alpha", "beta")[n % 2],
                )
                assert outcome.applied, outcome.reason
    except BaseException as exc:  # reported by the test
        errors.append(exc)
    finally:
        STARTED.set()


def _snapshot() -> list[str]:
    """The broker says FUT is flat and it holds 5 of FUT2."""
    return [
        json.dumps({"type": "broker_position", "account": "ACC", "instrument": name, "quantity": q})
        for name, q in (("FUT", "0"), ("FUT2", "5"))
    ]


def _reconciles(db_url: str, errors: list[BaseException], runs: list[str]) -> None:
    # Under the adopt policy every run books to EXTERNAL what the fills changed since.
    snapshot = _snapshot()
    STARTED.wait(timeout=120)
    try:
        with open_ledger(db_url) as ledger:
            for _ in range(RUNS):
                report = ledger.reconcile(snapshot, policy="adopt", accounts=["ACC"])
                runs.append(report.run)
                FIRST_RUN.set()
                time.sleep(0.02)  # a scheduler's pause: SQLite's lock is not fair
    except BaseException as exc:
        errors.append(exc)
    finally:
        FIRST_RUN.set()


def test_reconciling_while_fills_arrive_replays_exactly(db_url: str) -> None:
    _register(db_url)
    STARTED.clear()
    FIRST_RUN.clear()
    errors: list[BaseException] = []
    runs: list[str] = []
    threads = [
        threading.Thread(target=_fills, args=(db_url, errors)),
        threading.Thread(target=_reconciles, args=(db_url, errors, runs)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    assert len(runs) == RUNS
    with open_ledger(db_url) as ledger:
        kinds = [entry[3] for entry in entries(ledger)]
    first, last = kinds.index("reconcile"), len(kinds) - kinds[::-1].index("reconcile")
    assert "fill" in kinds[first:last], "the runs did not overlap the fills"
    with open_ledger(db_url) as ledger:
        report = ledger.verify()
        assert report.ok, report.problems
        # every run's checks are all there: one per key it compared, never a partial run
        for run in runs:
            checks = ledger.reconciliations(run=run)
            keys = [(c["instrument"], c["position_side"]) for c in checks]
            assert ("FUT2", "BOTH") in keys  # the broker holds it: always compared
            assert len(set(keys)) == len(keys)
        # one last run after the fills: adopt makes the books agree with the broker
        final = ledger.reconcile(_snapshot(), policy="adopt", accounts=["ACC"])
        assert ledger.reconcile([], policy="report", accounts=["ACC"]).checks  # it compares
        sums: dict[str, Decimal] = {}
        for position in ledger.positions(include_flat=True):
            name = position["instrument"]
            sums[name] = sums.get(name, Decimal(0)) + Decimal(position["signed_quantity"])
        assert sums["FUT"] == 0 and sums["FUT2"] == 5, (sums, final.checks)
        assert ledger.verify().ok
