"""``GET /metrics`` on every store (docs/service.md, Metrics): a scripted session, then the
scrape parsed as Prometheus reads it and compared with values worked out by hand; the
cache; several processes adding up into one multiprocess directory; and the directory
``posledger serve`` makes for them."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

import posledger
from posledger import open_ledger
from posledger.entrypoints.http.app import Settings, create_app
from posledger.entrypoints.http.metrics import CACHE_FILE, SharedCache
from posledger.entrypoints.serve import metrics_directory
from tests.databases import fresh_database

from .helpers import execute, fill_record, setup

T = "2026-03-02T"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _fill(exec_id: str, side: str, qty: str, price: str, minute: int, **extra: Any) -> str:
    return json.dumps(fill_record(exec_id, side, qty, price, minute, **extra))


def _position(quantity: str) -> str:
    line = {"type": "broker_position", "account": "ACC", "instrument": "FUT", "quantity": quantity}
    return json.dumps(line)


class Api:
    def __init__(self, client: TestClient, admin: str) -> None:
        self.client, self.admin = client, admin

    def post(self, path: str, *lines: str, **params: Any) -> Any:
        answer = self.client.post(
            path,
            content="\n".join(lines).encode(),
            params=params,
            headers={"Authorization": f"Bearer {self.admin}", "Content-Type": "text/plain"},
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    def ingest(self, *lines: str) -> Any:
        return self.post("/v1/ingest", *lines)

    def scrape(self) -> Samples:
        answer = self.client.get("/metrics")  # no key
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/plain")
        return _samples(answer.text)


def _samples(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in found, key  # every series once: the parts do not overlap
            found[key] = sample.value
    return found


def _get(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def _api(db_url: str, **settings: Any) -> Iterator[Api]:
    with open_ledger(db_url) as ledger:
        setup(ledger)
        _, admin = ledger.create_key(admin=True, name="ops")
    app = create_app(Settings(db=db_url, **settings))
    with TestClient(app) as client:
        yield Api(client, admin)


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    yield from _api(db_url, metrics_cache=0.0)  # every scrape reads the database


ALPHA = {"strategy": "alpha", "instrument": "FUT", "position_side": "BOTH", "account": "ACC"}
BETA = {**ALPHA, "strategy": "beta"}
EXTERNAL = {**ALPHA, "strategy": "EXTERNAL"}


def _session(api: Api) -> dict[str, int]:
    """Two closed trades of alpha (a win, a loss), an open one of beta, an exit of alpha's
    that overshoots to EXTERNAL, beta's bracket (two place commands: one failed, one left
    pending), and two reconciliations of ACC (the latest finds a difference). Returns the
    times (ns) around what the test bounds by the clock."""
    # FUT: a future, multiplier 5, USD. Every fill pays 0.5 USD commission.
    api.ingest(_fill("a1", "BUY", "2", "100", 1, strategy="alpha"),
               _fill("a2", "SELL", "2", "110", 2, strategy="alpha"))  # fmt: skip
    api.ingest(_fill("a3", "SELL", "1", "120", 3, strategy="alpha"),
               _fill("a4", "BUY", "1", "125", 13, strategy="alpha"))  # fmt: skip
    api.ingest(_fill("b1", "BUY", "3", "99", 20, strategy="beta"))
    exit_order = {
        "type": "order",
        "client_order_id": "x-1",
        "account": "ACC",
        "strategy": "alpha",
        "instrument": "FUT",
        "side": "SELL",
        "quantity": "1",
        "intent": "exit",
        "ts": f"{T}10:29:00Z",
    }
    # Alpha is flat: its exit is refused pre-trade (kept), and its fill goes to EXTERNAL.
    refused = api.ingest(json.dumps(exit_order), _fill("e1", "SELL", "1", "126", 30,
                                                       client_order_id="x-1"))  # fmt: skip
    assert [o["status"] for o in refused["outcomes"]] == ["rejected", "applied"]
    again = api.ingest(_fill("a1", "BUY", "2", "100", 1, strategy="alpha"),
                       '{"type": "fill", "exec_id": "bad"}')  # fmt: skip
    assert (again["duplicate"], again["rejected"]) == (1, 1)
    bracket = {
        "type": "bracket",
        "account": "ACC",
        "instrument": "FUT",
        "strategy": "beta",
        "take_profit": "110",
        "stop_loss": "95",
    }
    times = {"bracket_before": time.time_ns()}
    api.ingest(json.dumps(bracket))
    times["bracket_after"] = time.time_ns()
    (claimed,) = api.post("/v1/commands/claim", worker="w1", limit=1)
    api.post(f"/v1/commands/{claimed['command_id']}/fail", reason="rejected: margin")
    # ACC/FUT in the ledger: beta +3, EXTERNAL -1, so 2. The broker says 2, then 3.
    first = api.post("/v1/reconcile", _position("2"), accounts="ACC")
    assert [c["kind"] for c in first["checks"]] == ["agree"]
    times["reconcile_before"] = time.time_ns()
    second = api.post("/v1/reconcile", _position("3"), accounts="ACC")
    times["reconcile_after"] = time.time_ns()
    assert [c["kind"] for c in second["checks"]] == ["missing_fills"]
    return times


def test_a_scrape_after_a_session_holds_the_hand_computed_values(api: Api) -> None:
    times = _session(api)
    before = time.time_ns()
    m = api.scrape()
    after = time.time_ns()

    def get(name: str, **labels: str) -> float:
        return _get(m, name, **labels)

    assert get("posledger_ledger_metrics_up") == 1

    # -- what this process counted ----------------------------------------------------
    # Six ingest requests, each its own transaction (one client, one request at a time):
    # fills a1 a2 | a3 a4 | b1 | order x-1 (refused), e1 | a1 again, a bad line | bracket.
    assert get("posledger_inputs_total", kind="fill", status="applied") == 6
    assert get("posledger_inputs_total", kind="fill", status="duplicate") == 1
    assert get("posledger_inputs_total", kind="order", status="rejected") == 1
    assert get("posledger_inputs_total", kind="unknown", status="rejected") == 1
    assert get("posledger_inputs_total", kind="bracket", status="applied") == 1
    assert get("posledger_batch_requests_count") == 6
    assert get("posledger_batch_requests_sum") == 6  # one request per transaction
    assert get("posledger_batch_lines_sum") == 2 + 2 + 1 + 2 + 2 + 1
    assert get("posledger_batch_lines_bucket", le="1.0") == 2  # b1; the bracket
    assert get("posledger_apply_seconds_count") == 6

    # -- positions, from the database ------------------------------------------------
    # alpha: a long 2 @ 100 -> 110, a short 1 @ 120 -> 125; beta and EXTERNAL: open.
    for labels, opened in ((ALPHA, 2), (BETA, 1), (EXTERNAL, 1)):
        assert get("posledger_positions_opened_total", **labels) == opened
    assert get("posledger_positions_closed_total", **ALPHA) == 2
    assert get("posledger_positions_winning_total", **ALPHA) == 1
    assert get("posledger_positions_losing_total", **ALPHA) == 1
    for labels in (BETA, EXTERNAL):
        for name in ("closed", "winning", "losing"):
            assert get(f"posledger_positions_{name}_total", **labels) == 0
        assert get("posledger_position_pnl_count", **labels) == 0
        assert get("posledger_position_commission_count", **labels) == 0

    # P&L: long (110 - 100) * 2 * 5 = 100 gross, - 2 * 0.5 = 99 net;
    #      short (120 - 125) * 1 * 5 = -25 gross, - 1 = -26 net. Sum 73.
    assert get("posledger_position_pnl_count", **ALPHA) == 2
    assert get("posledger_position_pnl_sum", **ALPHA) == 73
    pnl = {le: get("posledger_position_pnl_bucket", le=le, **ALPHA) for le in
           ("-50.0", "-25.0", "-10.0", "0.0", "50.0", "100.0", "+Inf")}  # fmt: skip
    # -26 is in (-50, -25]; 99 in (50, 100].
    assert pnl == {"-50.0": 0, "-25.0": 1, "-10.0": 1, "0.0": 1, "50.0": 1, "100.0": 2,
                   "+Inf": 2}  # fmt: skip
    # pnl_percent = realized_return x 100: (110 - 100) / 100 = 10%;
    # (125 - 120) / 120, short: -0.041666666666666667 (18 digits) -> -4.1666666666666667%.
    assert get("posledger_position_pnl_percent_sum", **ALPHA) == pytest.approx(
        10 - 4.1666666666666667
    )
    assert get("posledger_position_pnl_percent_bucket", le="-5.0", **ALPHA) == 0
    assert get("posledger_position_pnl_percent_bucket", le="-2.0", **ALPHA) == 1
    assert get("posledger_position_pnl_percent_bucket", le="5.0", **ALPHA) == 1
    assert get("posledger_position_pnl_percent_bucket", le="10.0", **ALPHA) == 2
    # ROI = net P&L / (peak x multiplier x avg entry): 99 / (2 x 5 x 100) = 0.099;
    # -26 / (1 x 5 x 120) = -0.043333333333333333.
    assert get("posledger_position_roi_sum", **ALPHA) == pytest.approx(0.099 - 0.043333333333333333)
    assert get("posledger_position_roi_bucket", le="-0.05", **ALPHA) == 0
    assert get("posledger_position_roi_bucket", le="-0.02", **ALPHA) == 1
    assert get("posledger_position_roi_bucket", le="0.05", **ALPHA) == 1
    assert get("posledger_position_roi_bucket", le="0.1", **ALPHA) == 2
    # Durations: 10:01 -> 10:02 is 60 s, 10:03 -> 10:13 is 600 s.
    assert get("posledger_position_duration_seconds_sum", **ALPHA) == 660
    assert get("posledger_position_duration_seconds_bucket", le="30.0", **ALPHA) == 0
    assert get("posledger_position_duration_seconds_bucket", le="60.0", **ALPHA) == 1
    assert get("posledger_position_duration_seconds_bucket", le="300.0", **ALPHA) == 1
    assert get("posledger_position_duration_seconds_bucket", le="900.0", **ALPHA) == 2
    # Commissions: 4 fills x 0.5 = 2 (= gross 75 - net 73).
    assert get("posledger_position_commission_sum", **ALPHA) == 2
    assert get("posledger_position_commission_count", **ALPHA) == 2
    # Average entries 100 and 120, exits 110 and 125.
    assert get("posledger_position_entry_price_sum", **ALPHA) == 220
    assert get("posledger_position_exit_price_sum", **ALPHA) == 235
    assert get("posledger_position_exit_price_count", **ALPHA) == 2

    # -- the ledger's state ------------------------------------------------------------
    assert get("posledger_open_slots", strategy="alpha") == 0
    assert get("posledger_open_slots", strategy="beta") == 1
    assert get("posledger_open_slots", strategy="EXTERNAL") == 1
    # e1 overshot alpha's (flat) slot; the refused place of a bracket leg.
    assert get("posledger_anomalies_total", kind="exit_overshoot") == 1
    assert get("posledger_anomalies_total", kind="exit_refused") == 1
    assert get("posledger_anomalies_total", kind="hedge_overshoot") == 0
    # The bracket's two place commands: one claimed and failed, one pending.
    assert get("posledger_commands", status="pending") == 1
    assert get("posledger_commands", status="failed") == 1
    assert get("posledger_commands", status="claimed") == 0
    assert get("posledger_commands", status="acked") == 0
    age = get("posledger_command_oldest_pending_age_seconds")
    assert (before - times["bracket_after"]) / 1e9 <= age <= (after - times["bracket_before"]) / 1e9
    # The latest run of ACC found missing fills (the first, which agreed, is not counted).
    assert get("posledger_reconciliation_mismatches", account="ACC", kind="missing_fills") == 1
    for kind in ("stale_position", "unknown_position", "quantity_mismatch", "avg_price_drift"):
        assert get("posledger_reconciliation_mismatches", account="ACC", kind=kind) == 0
    ran = get("posledger_reconciliation_last_run_timestamp_seconds", account="ACC")
    assert times["reconcile_before"] / 1e9 <= ran <= times["reconcile_after"] / 1e9
    assert not any(
        name.endswith("_last_run_timestamp_seconds") and dict(labels) != {"account": "ACC"}
        for name, labels in m
    )  # fmt: skip  (HDG was never reconciled)


def test_roi_of_an_inverse_instrument_is_on_its_base_currency_notional(api: Api) -> None:
    inverse = {
        "type": "instrument",
        "instrument": "INV",
        "kind": "perpetual",
        "multiplier": "100",
        "quote_currency": "USD",
        "base_currency": "BTC",
        "settlement_currency": "BTC",
        "inverse": True,
    }
    fills = [
        _fill(f"i{n}", side, "10", price, n, instrument="INV", strategy="alpha",
              commission="0", commission_currency="BTC")
        for n, side, price in ((1, "BUY", "50000"), (2, "SELL", "55000"))
    ]  # fmt: skip
    api.ingest(json.dumps(inverse), *fills)
    m = api.scrape()
    labels = {**ALPHA, "instrument": "INV"}
    # P&L in BTC: (1/50000 - 1/55000) x 10 x 100 = 1/550 = 0.0018181818...
    assert _get(m, "posledger_position_pnl_sum", **labels) == pytest.approx(1 / 550)
    # Notional at entry, in BTC: 10 x 100 / 50000 = 0.02; ROI (1/550) / 0.02 = 1/11.
    assert _get(m, "posledger_position_roi_sum", **labels) == pytest.approx(1 / 11)
    assert _get(m, "posledger_position_roi_bucket", le="0.05", **labels) == 0
    assert _get(m, "posledger_position_roi_bucket", le="0.1", **labels) == 1
    # The price move: (55000 - 50000) / 50000 = 10%.
    assert _get(m, "posledger_position_pnl_percent_sum", **labels) == pytest.approx(10)


def test_a_database_that_cannot_be_read_is_up_0_and_the_counts_still_served() -> None:
    with fresh_database("sqlite") as db:
        for api in _api(db, metrics_cache=0.0):
            api.ingest(_fill("f1", "BUY", "1", "100", 1, strategy="alpha"))
            execute(db, "ALTER TABLE trades RENAME TO trades_away")
            m = api.scrape()
            assert _get(m, "posledger_ledger_metrics_up") == 0
            assert not any(name.startswith("posledger_position") for name, _ in m)
            assert _get(m, "posledger_inputs_total", kind="fill", status="applied") == 1
            execute(db, "ALTER TABLE trades_away RENAME TO trades")
            m = api.scrape()
            assert _get(m, "posledger_ledger_metrics_up") == 1
            assert _get(m, "posledger_positions_opened_total", **ALPHA) == 1


DOCS = Path(__file__).parents[2] / "docs"


def test_the_docs_name_every_metric_and_only_those() -> None:
    """docs/service.md (Metrics), the alert rules and the Grafana dashboard name the
    metrics a scrape holds, and the Metrics section names every one of them."""
    with fresh_database("sqlite") as db:
        for api in _api(db, metrics_cache=0.0):
            _session(api)
            text = api.client.get("/metrics").text
    families = list(text_string_to_metric_families(text))
    served = {f.name for f in families} | {s.name for f in families for s in f.samples}
    served |= {f"{f.name}_total" for f in families if f.type == "counter"}
    section = (DOCS / "service.md").read_text().split("\n## Metrics\n", 1)[1]
    named = set(re.findall(r"posledger_[a-z_]+[a-z]", section))
    for family in families:
        if family.name.startswith("posledger_"):
            documented = {family.name, f"{family.name}_total"} & named
            assert documented, f"{family.name} is not in docs/service.md, Metrics"
    for where in ("service.md", "alerts.yml", "grafana-dashboard.json"):
        text = (DOCS / where).read_text()
        if where == "service.md":
            text = section
        unknown = set(re.findall(r"posledger_[a-z_]+[a-z]", text)) - served
        assert not unknown, (where, unknown)
    assert "(grafana-dashboard.json)" in section and "(alerts.yml)" in section


def test_nothing_yet_is_zeros_and_metrics_need_no_key(api: Api) -> None:
    m = api.scrape()
    assert _get(m, "posledger_commands", status="pending") == 0
    assert _get(m, "posledger_command_oldest_pending_age_seconds") == 0
    assert _get(m, "posledger_anomalies_total", kind="exit_overshoot") == 0
    assert _get(m, "posledger_open_slots", strategy="alpha") == 0
    assert not any(name.startswith("posledger_position") for name, _ in m)
    assert not any(name.startswith("posledger_inputs") for name, _ in m)
    assert "/metrics" in api.client.get("/openapi.json").json()["paths"]


def test_the_database_part_is_kept_for_the_cache_time(db_url: str) -> None:
    for api in _api(db_url, metrics_cache=3600.0):
        api.ingest(_fill("f1", "BUY", "1", "100", 1, strategy="alpha"))
        first = api.scrape()
        assert _get(first, "posledger_positions_opened_total", **ALPHA) == 1
        api.ingest(_fill("f2", "SELL", "1", "101", 2, strategy="alpha"),
                   _fill("f3", "BUY", "1", "102", 3, strategy="alpha"))  # fmt: skip
        kept = api.scrape()
        assert _get(kept, "posledger_positions_opened_total", **ALPHA) == 1  # cached
        # What the process counts is not cached.
        assert _get(kept, "posledger_inputs_total", kind="fill", status="applied") == 3
    with TestClient(create_app(Settings(db=db_url, metrics_cache=0.0))) as client:
        fresh = _samples(client.get("/metrics").text)  # read from the database afresh
    assert _get(fresh, "posledger_positions_opened_total", **ALPHA) == 2
    assert _get(fresh, "posledger_positions_closed_total", **ALPHA) == 1


def test_workers_share_one_cached_copy(tmp_path: Path) -> None:
    made: list[str] = []

    def maker(name: str) -> Any:
        def make() -> bytes:
            made.append(name)
            return f"# made by {name}\n".encode()

        return make

    first = SharedCache(3600.0, maker("first"), str(tmp_path))
    second = SharedCache(3600.0, maker("second"), str(tmp_path))
    assert first.get() == second.get() == b"# made by first\n"
    assert made == ["first"]
    assert (tmp_path / CACHE_FILE).exists()
    stale = SharedCache(0.0, maker("third"), str(tmp_path))
    assert stale.get() == b"# made by third\n" and made == ["first", "third"]


WORKER = """
import os, sys
from fastapi.testclient import TestClient
from posledger.entrypoints.http.app import Settings, create_app

db, key, body = sys.argv[1], sys.argv[2], sys.argv[3]
app = create_app(Settings(db=db, metrics_dir=os.environ["PROMETHEUS_MULTIPROC_DIR"],
                          metrics_cache=0.0))
with TestClient(app) as client:
    answer = client.post("/v1/ingest", content=body.encode(),
                         headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.text
    sys.stdout.write(client.get("/metrics").text)
"""


def test_several_processes_add_up_in_one_multiprocess_directory(tmp_path: Path) -> None:
    """Two real worker processes, one after the other, each with its own writer, count
    into one directory: the second's scrape adds up both (the first has stopped: its
    counts stay)."""
    directory = tmp_path / "multiproc"
    directory.mkdir()
    with fresh_database("sqlite") as db:
        with open_ledger(db) as ledger:
            setup(ledger)
            _, admin = ledger.create_key(admin=True)
        env = {
            **os.environ,
            "PROMETHEUS_MULTIPROC_DIR": str(directory),
            "PYTHONPATH": os.pathsep.join(
                [str(Path(posledger.__file__).parents[1]), str(Path.cwd())]
            ),
        }

        def worker(*lines: str) -> Samples:
            done = subprocess.run(
                [sys.executable, "-c", WORKER, db, admin, "\n".join(lines)],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            return _samples(done.stdout)

        one = worker(*(_fill(f"p1-{n}", "BUY", "1", "100", n, strategy="alpha") for n in (1, 2)))
        two = worker(
            *(_fill(f"p2-{n}", "BUY", "1", "100", n, strategy="alpha") for n in (3, 4, 5)),
            '{"type": "fill", "exec_id": "bad"}',
        )
    counted = {path.name.split("_")[0] for path in directory.glob("*.db")}
    assert counted == {"counter", "histogram"}
    assert len(list(directory.glob("counter_*.db"))) == 2  # one file per process
    assert _get(one, "posledger_inputs_total", kind="fill", status="applied") == 2
    # 2 from the first process + 3 from the second.
    assert _get(two, "posledger_inputs_total", kind="fill", status="applied") == 5
    assert _get(two, "posledger_inputs_total", kind="unknown", status="rejected") == 1
    assert _get(two, "posledger_batch_requests_count") == 2  # one transaction each
    assert _get(two, "posledger_batch_lines_sum") == 2 + 4
    # From the database: one trade of alpha, whichever process applied its fills.
    assert _get(two, "posledger_positions_opened_total", **ALPHA) == 1
    assert _get(two, "posledger_open_slots", strategy="alpha") == 1


def test_serve_gives_the_workers_a_fresh_private_directory() -> None:
    before = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    with metrics_directory() as directory:
        assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == directory
        found = Path(directory)
        assert found.is_dir() and list(found.iterdir()) == []
        assert stat.S_IMODE(found.stat().st_mode) == 0o700
        (found / "counter_1.db").write_bytes(b"")
    assert not found.exists()
    assert os.environ.get("PROMETHEUS_MULTIPROC_DIR") == before
    with metrics_directory() as other:
        assert other != directory
