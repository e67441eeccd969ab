"""Sierra Chart DTC, JSON encoding (posledger.venues.dtc): framing, what a client sends, the
parser on messages built from the protocol definition (tests/fixtures/venues/dtc), and its
fills and positions fed to a real ledger."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from posledger import open_ledger
from posledger.venues.base import Parsed, Rejection, SymbolMap
from posledger.venues.dtc import (
    JSON_ENCODING_REQUEST,
    Framer,
    current_positions_request,
    decode,
    encode,
    heartbeat,
    historical_order_fills_request,
    logon_request,
    open_orders_request,
    parse_message,
    trade_accounts_request,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "venues" / "dtc"

ACCOUNTS = {"Sim1": "SC-SIM1", "A12345": "SC-LIVE"}
SYMBOLS = SymbolMap(
    "dtc",
    {
        ("SC-SIM1", "ESH26_FUT_CME"): "ES",
        ("SC-SIM1", "CLJ26_FUT_NYMEX"): "CL",
        ("SC-LIVE", "ESH26_FUT_CME"): "ES",
    },
)
SERVER_ORDERS = {"1401": "alpha-0001", "1402": "beta-0002"}
"""ServerOrderID -> ClientOrderID, as a connector learns it from ORDER_UPDATEs."""


def strategy_of(client_order_id: str) -> str | None:
    """The convention of these tests: a client order id starts with its strategy."""
    strategy, dash, _ = client_order_id.partition("-")
    return strategy if dash else None


def messages(name: str) -> list[dict[str, Any]]:
    """A fixture's messages, as they come out of the framer from the wire."""
    stream = b"".join(encode(message) for message in json.loads((FIXTURES / name).read_text()))
    frames = Framer().feed(stream)
    assert all(isinstance(frame, dict) for frame in frames), frames
    return [frame for frame in frames if isinstance(frame, dict)]


def parse(message: dict[str, Any] | Rejection, **options: Any) -> Parsed:
    return parse_message(
        message,
        accounts=ACCOUNTS,
        symbols=SYMBOLS,
        strategy_of=strategy_of,
        client_order_of=SERVER_ORDERS.get,
        **options,
    )


def fills(*names: str, **options: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name in names:
        for message in messages(name):
            parsed = parse(message, **options)
            assert not parsed.rejections, parsed.rejections
            out.extend(parsed.fills)
    return out


ES_FILL = {
    "type": "fill",
    "exec_id": "SC-F-000101",
    "account": "SC-SIM1",
    "instrument": "ES",
    "side": "BUY",
    "quantity": "2",
    "price": "6850.25",
    "ts": "2026-03-02T14:45:02Z",
    "client_order_id": "alpha-0001",
    "strategy": "alpha",
}
CL_FILLS = [
    {
        "type": "fill",
        "exec_id": "SC-F-000102",
        "account": "SC-SIM1",
        "instrument": "CL",
        "side": "SELL",
        "quantity": "1",
        "price": "71.23",
        "ts": "2026-03-02T14:46:10Z",
        "client_order_id": "beta-0002",
        "strategy": "beta",
    },
    {
        "type": "fill",
        "exec_id": "SC-F-000103",
        "account": "SC-SIM1",
        "instrument": "CL",
        "side": "SELL",
        "quantity": "2",
        "price": "71.26",
        "ts": "2026-03-02T14:46:11Z",
        "client_order_id": "beta-0002",
        "strategy": "beta",
    },
]


# -- framing -------------------------------------------------------------------------

A = {"Type": 3, "NumDroppedMessages": 0, "CurrentDateTime": 1772462700}
B = {"Type": 401, "TotalNumberMessages": 1, "MessageNumber": 1, "TradeAccount": "Sim1"}


def test_a_message_cut_anywhere_comes_out_whole_once_its_nul_arrives() -> None:
    stream = encode(A) + encode(B)
    for cut in range(len(stream) + 1):
        framer = Framer()
        assert framer.feed(stream[:cut]) + framer.feed(stream[cut:]) == [A, B], cut
        assert framer.pending == 0
    framer = Framer()
    one_by_one = [frame for byte in stream for frame in framer.feed(bytes([byte]))]
    assert one_by_one == [A, B]


def test_several_messages_in_one_chunk_and_a_trailing_partial_one() -> None:
    framer = Framer()
    tail = encode(A)
    assert framer.feed(encode(A) + encode(B) + encode(A) + tail[:7]) == [A, B, A]
    assert framer.pending == 7
    assert framer.feed(b"") == []
    assert framer.feed(tail[7:]) == [A]
    assert framer.pending == 0


def test_a_frame_that_is_not_a_message_is_a_rejection_in_its_place() -> None:
    framer = Framer()
    frames = framer.feed(encode(A) + b"not json\x00" + b"[1,2]\x00" + encode(B))
    assert frames[0] == A and frames[3] == B
    assert isinstance(frames[1], Rejection) and isinstance(frames[2], Rejection)
    assert frames[1].reason.startswith("frame is not JSON: Expecting value")
    assert frames[1].raw == "not json"
    assert frames[2].reason == "a DTC message is a JSON object, got array"
    # Passed to the parser, a rejected frame stays a rejection.
    assert parse(frames[1]) == Parsed(rejections=(frames[1],))


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b'{"Type":3,"Type":2}', "frame is not JSON: duplicate field 'Type'"),
        (b'{"Type":301,"LastFillPrice":NaN}', "frame is not JSON: NaN is not a JSON number"),
        (b'{"Type":3,"X":"\xff"}', "frame is not UTF-8 text (byte 0xff at 15)"),
        (b'"Type"', "a DTC message is a JSON object, got string"),
    ],
)
def test_what_a_frame_is_rejected_for(frame: bytes, reason: str) -> None:
    decoded = decode(frame)
    assert isinstance(decoded, Rejection)
    assert decoded.reason == reason


def test_empty_frames_are_skipped_and_an_endless_one_is_dropped_to_the_next_nul() -> None:
    assert Framer().feed(b"\x00\r\n\x00 \x00") == []
    framer = Framer(max_frame=16)
    frames = framer.feed(b'{"Type":3,' + b"x" * 20)
    assert len(frames) == 1 and isinstance(frames[0], Rejection)
    assert frames[0].reason == (
        "frame longer than 16 bytes without a NUL terminator: dropped up to the next NUL"
    )
    assert framer.pending == 0
    assert framer.feed(b"more of it") == []
    assert framer.feed(b"end\x00" + encode(A)) == [A]


def test_encode_is_compact_json_ended_by_one_nul() -> None:
    assert encode({"Type": 400, "RequestID": 1}) == b'{"Type":400,"RequestID":1}\x00'
    framed = encode({"Type": 1, "Username": "a\x00b", "Password": "é"})
    assert framed.count(b"\x00") == 1 and framed.endswith(b"\x00")
    assert Framer().feed(framed) == [{"Type": 1, "Username": "a\x00b", "Password": "é"}]
    with pytest.raises(ValueError, match="integer Type"):
        encode({"RequestID": 1})


# -- what a client sends -------------------------------------------------------------


def test_the_builders_give_the_protocol_fields() -> None:
    assert logon_request("trader", "secret") == {
        "Type": 1,
        "ProtocolVersion": 8,
        "Username": "trader",
        "Password": "secret",
        "HeartbeatIntervalInSeconds": 10,
        "ClientName": "posledger",
    }
    simulated = logon_request("t", "p", heartbeat_interval=5, trade_mode="SIMULATED")
    assert simulated["TradeMode"] == 2 and simulated["HeartbeatIntervalInSeconds"] == 5
    assert logon_request("t", "p", trade_mode="LIVE", trade_account="A12345")["TradeMode"] == 3
    with pytest.raises(ValueError, match="trade_mode"):
        logon_request("t", "p", trade_mode="PAPER")
    assert heartbeat() == {"Type": 3, "NumDroppedMessages": 0}
    assert heartbeat(1772462700)["CurrentDateTime"] == 1772462700
    assert trade_accounts_request(1) == {"Type": 400, "RequestID": 1}
    assert current_positions_request(10, "Sim1") == {
        "Type": 305,
        "RequestID": 10,
        "TradeAccount": "Sim1",
    }
    assert historical_order_fills_request(4, trade_account="Sim1", number_of_days=2) == {
        "Type": 303,
        "RequestID": 4,
        "ServerOrderID": "",
        "NumberOfDays": 2,
        "TradeAccount": "Sim1",
        "StartDateTime": 0,
    }
    since = historical_order_fills_request(5, start_datetime=1772462000)
    assert since["StartDateTime"] == 1772462000 and since["NumberOfDays"] == 0
    with pytest.raises(ValueError, match="number_of_days or start_datetime"):
        historical_order_fills_request(6)
    assert open_orders_request(3, "Sim1") == {
        "Type": 300,
        "RequestID": 3,
        "RequestAllOrders": 1,
        "ServerOrderID": "",
        "TradeAccount": "Sim1",
    }


def test_the_json_encoding_request_is_the_documented_binary_message() -> None:
    # Sierra Chart's documentation: "0x10000600 0x08000000 0x02000000 0x44544300".
    documented = bytes.fromhex("10000600 08000000 02000000 44544300")
    assert documented == JSON_ENCODING_REQUEST


# -- the parser on each fixture --------------------------------------------------------


def test_a_fill() -> None:
    [message] = messages("order_update_fill.json")
    parsed = parse(message)
    assert parsed.fills == (ES_FILL,)
    assert parsed.rejections == () and parsed.positions == () and parsed.ignored is None
    assert parsed.extra == {
        "order": {
            "trade_account": "Sim1",
            "server_order_id": "1401",
            "client_order_id": "alpha-0001",
            "status": "ORDER_STATUS_FILLED",
            "reason": "ORDER_FILLED",
        }
    }
    exact = parse(message, whole_seconds=False)
    assert exact.fills == ({**ES_FILL, "ts": "2026-03-02T14:45:02.117Z"},)


def test_partial_fills_of_one_order() -> None:
    assert fills("order_update_partial_fills.json") == CL_FILLS
    exact = fills("order_update_partial_fills.json", whole_seconds=False)
    assert [fill["ts"] for fill in exact] == ["2026-03-02T14:46:10.25Z", "2026-03-02T14:46:11.004Z"]


def test_a_restated_order_is_never_a_fill_even_when_filled() -> None:
    restated = [parse(message) for message in messages("order_update_restated.json")]
    assert all(p.fills == () and p.rejections == () for p in restated)
    assert restated[0].ignored == ("ORDER_UPDATE OPEN_ORDERS_REQUEST_RESPONSE: not a fill")
    assert restated[1].ignored == (
        "ORDER_UPDATE ORDER_FILLED restated (RequestID 5, message 1 of 2): a restated order "
        "is not a fill; fills are caught up with HISTORICAL_ORDER_FILLS_REQUEST"
    )
    assert restated[2].ignored is not None
    assert restated[2].ignored.startswith(
        "ORDER_UPDATE ORDER_FILLED restated (RequestID 0, message 2 of 2)"
    )
    assert restated[3].ignored == "ORDER_UPDATE NoOrders: no open orders"
    assert restated[3].extra == {"request_id": 6}


def test_order_updates_other_than_fills_are_ignored_by_reason() -> None:
    accepted, canceled = (parse(m) for m in messages("order_update_not_fills.json"))
    assert accepted.ignored == "ORDER_UPDATE NEW_ORDER_ACCEPTED: not a fill"
    assert accepted.extra["order"]["server_order_id"] == "1401"
    assert accepted.extra["order"]["client_order_id"] == "alpha-0001"
    assert canceled.ignored == "ORDER_UPDATE ORDER_CANCELED: not a fill"
    assert accepted.fills == canceled.fills == ()


def test_historical_fills_are_the_live_fills_of_the_same_executions() -> None:
    history = fills("historical_order_fills.json")
    live = fills("order_update_fill.json", "order_update_partial_fills.json")
    assert history == live == [ES_FILL, *CL_FILLS]
    extras = [parse(m).extra for m in messages("historical_order_fills.json")]
    assert extras == [
        {"request_id": 4},
        {"request_id": 4},
        {"request_id": 4, "fills_complete": "SC-SIM1"},
    ]


def test_a_fill_history_without_fills() -> None:
    [message] = messages("historical_order_fills_none.json")
    parsed = parse(message)
    assert parsed.fills == () and parsed.rejections == ()
    assert parsed.ignored == "HISTORICAL_ORDER_FILL_RESPONSE NoOrderFills: no fills"
    assert parsed.extra == {"request_id": 8, "fills_complete": "SC-LIVE"}


def test_positions_and_the_end_of_a_snapshot() -> None:
    first, last = (parse(m) for m in messages("position_updates.json"))
    assert first.positions == (
        {
            "type": "broker_position",
            "account": "SC-SIM1",
            "instrument": "ES",
            "quantity": "2",
            "avg_price": "6850.25",
        },
    )
    assert last.positions == (
        {
            "type": "broker_position",
            "account": "SC-SIM1",
            "instrument": "CL",
            "quantity": "-3",
            "avg_price": "71.25",
        },
    )
    assert first.extra == {"request_id": 10}
    assert last.extra == {"request_id": 10, "snapshot_complete": "SC-SIM1"}


def test_no_positions_is_a_whole_empty_snapshot() -> None:
    [message] = messages("position_updates_none.json")
    parsed = parse(message)
    assert parsed.positions == () and parsed.rejections == ()
    assert parsed.ignored == "POSITION_UPDATE NoPositions: no positions"
    assert parsed.extra == {"request_id": 11, "snapshot_complete": "SC-LIVE"}


def test_an_unsolicited_position_update_ends_no_snapshot() -> None:
    [message] = messages("position_update_unsolicited.json")
    parsed = parse(message)
    assert parsed.positions == (
        {"type": "broker_position", "account": "SC-SIM1", "instrument": "ES", "quantity": "0"},
    )
    assert parsed.extra == {"request_id": 0}


def test_logon_responses() -> None:
    success, error = (parse(m) for m in messages("logon_responses.json"))
    assert success.ignored == "LOGON_RESPONSE LOGON_SUCCESS: Connected"
    assert success.extra == {
        "logon": {
            "ok": True,
            "result": "LOGON_SUCCESS",
            "text": "Connected",
            "server_name": "SC DTC Server",
            "trading_supported": True,
            "multiple_positions_per_symbol": False,
        }
    }
    assert error.ignored == "LOGON_RESPONSE LOGON_ERROR: Invalid username or password"
    assert error.extra["logon"]["ok"] is False
    assert error.extra["logon"]["trading_supported"] is False


def test_trade_accounts_and_heartbeats() -> None:
    sim, live = (parse(m) for m in messages("trade_account_responses.json"))
    assert sim.extra == {"request_id": 1, "trade_account": "Sim1", "account": "SC-SIM1"}
    assert sim.ignored == "TRADE_ACCOUNT_RESPONSE Sim1 (mapped to SC-SIM1)"
    assert live.extra["account"] == "SC-LIVE"
    unmapped = parse({"Type": 401, "TradeAccount": "Sim2", "RequestID": 1})
    assert unmapped.extra["account"] is None
    assert unmapped.ignored == "TRADE_ACCOUNT_RESPONSE Sim2 (not mapped)"
    [beat] = messages("heartbeat.json")
    assert parse(beat) == Parsed(ignored="HEARTBEAT")


def test_request_rejections_logoff_and_other_messages() -> None:
    rejected = parse({"Type": 307, "RequestID": 10, "RejectText": "Positions unavailable"})
    assert rejected.ignored == "CURRENT_POSITIONS_REJECT: Positions unavailable"
    assert rejected.extra == {
        "rejected": {
            "type": "CURRENT_POSITIONS_REJECT",
            "request_id": 10,
            "text": "Positions unavailable",
        }
    }
    assert parse({"Type": 308, "RequestID": 4}).extra["rejected"]["type"] == (
        "HISTORICAL_ORDER_FILLS_REJECT"
    )
    logoff = parse({"Type": 5, "Reason": "Server shutting down", "DoNotReconnect": 1})
    assert logoff.extra == {"logoff": {"reason": "Server shutting down", "do_not_reconnect": True}}
    assert logoff.ignored == "LOGOFF: Server shutting down"
    assert parse({"Type": 5}).ignored == "LOGOFF"
    assert parse({"Type": 600}).ignored == "ACCOUNT_BALANCE_UPDATE: nothing for the ledger"
    assert parse({"Type": 9999}).ignored == "DTC message type 9999: not read"


# -- numbers and times ---------------------------------------------------------------


def fill_with(**fields: Any) -> Parsed:
    [message] = messages("order_update_fill.json")
    return parse({**message, **fields}, whole_seconds=False)


def test_json_numbers_stay_exact() -> None:
    wire = encode({**messages("order_update_fill.json")[0], "LastFillPrice": 0.1})
    assert b'"LastFillPrice":0.1,' in wire
    [decoded] = Framer().feed(wire)
    assert isinstance(decoded, dict)
    assert parse(decoded).fills[0]["price"] == "0.1"
    # The same double written with all its digits, or decoded as Decimal, is still 0.1.
    long_form = wire.replace(b'"LastFillPrice":0.1,', b'"LastFillPrice":0.10000000000000001,')
    [decoded] = Framer().feed(long_form)
    assert isinstance(decoded, dict)
    assert parse(decoded).fills[0]["price"] == "0.1"
    assert fill_with(LastFillPrice=Decimal("0.1")).fills[0]["price"] == "0.1"
    assert fill_with(LastFillPrice=71.23, LastFillQuantity=0.3).fills[0]["price"] == "71.23"
    assert fill_with(LastFillQuantity=0.3).fills[0]["quantity"] == "0.3"
    assert fill_with(LastFillPrice=-1.5).fills[0]["price"] == "-1.5"
    assert fill_with(LastFillQuantity=12345678901234567).fills[0]["quantity"] == (
        "12345678901234567"
    )


@pytest.mark.parametrize(
    ("value", "ts"),
    [
        (1772462702, "2026-03-02T14:45:02Z"),
        (1772462702.117, "2026-03-02T14:45:02.117Z"),
        (1772462702117, "2026-03-02T14:45:02.117Z"),
        (1772462702000, "2026-03-02T14:45:02Z"),
        (1772462702.5, "2026-03-02T14:45:02.5Z"),
        (1772462702.000123, "2026-03-02T14:45:02.000123Z"),
        (Decimal("1772462702.117"), "2026-03-02T14:45:02.117Z"),
    ],
)
def test_times_in_seconds_or_milliseconds_are_converted_exactly(value: Any, ts: str) -> None:
    assert fill_with(LastFillDateTime=value).fills[0]["ts"] == ts
    whole = parse({**messages("order_update_fill.json")[0], "LastFillDateTime": value})
    assert whole.fills[0]["ts"] == ts.partition(".")[0].removesuffix("Z") + "Z"


# -- rejections ------------------------------------------------------------------------


def reason_of(parsed: Parsed) -> str:
    assert parsed.fills == () and parsed.positions == ()
    [rejection] = parsed.rejections
    return rejection.reason


def test_an_unmapped_trade_account_or_symbol_is_rejected_with_the_way_to_map_it() -> None:
    [message] = messages("order_update_fill.json")
    parsed = parse({**message, "TradeAccount": "Sim9"})
    assert reason_of(parsed) == (
        "DTC trade account Sim9 is not mapped to a posledger account: map it in the "
        "connector's accounts (Sim9 -> ACCOUNT) to an account registered with mode SIM for "
        "a simulated trade account, LIVE for a live one"
    )
    assert json.loads(parsed.rejections[0].raw)["TradeAccount"] == "Sim9"
    assert reason_of(parse({**message, "Symbol": "NQH26_FUT_CME"})) == (
        "dtc symbol NQH26_FUT_CME of account SC-SIM1 is not mapped to an instrument: "
        "posledger symbols add dtc SC-SIM1 NQH26_FUT_CME INSTRUMENT"
    )
    [history] = messages("historical_order_fills.json")[:1]
    assert "posledger symbols add dtc SC-SIM1 ESZ25" in reason_of(
        parse({**history, "Symbol": "ESZ25"})
    )
    [position] = messages("position_updates.json")[:1]
    assert reason_of(parse({**position, "TradeAccount": "B1"})).startswith(
        "DTC trade account B1 is not mapped"
    )


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"BuySell": 3}, "BuySell 3 is neither 1 (BUY) nor 2 (SELL)"),
        ({"LastFillExecutionID": ""}, "ORDER_UPDATE ORDER_FILLED has no LastFillExecutionID"),
        ({"LastFillQuantity": 0}, "LastFillQuantity must be positive, got 0"),
        ({"LastFillPrice": 1.7976931348623157e308}, "LastFillPrice is unset (DBL_MAX)"),
        ({"LastFillPrice": None}, "LastFillPrice is missing"),
        ({"LastFillPrice": "6850.25"}, "LastFillPrice must be a number, got string '6850.25'"),
        ({"LastFillPrice": float("inf")}, "LastFillPrice inf is not a finite number"),
        ({"LastFillDateTime": 0}, "LastFillDateTime number 0 is not a time (unset or before 1970)"),
        (
            {"LastFillDateTime": 10**16},
            "LastFillDateTime number 10000000000000000 is after 2261-12-31, the latest time taken",
        ),
        ({"OrderUpdateReason": "4"}, "OrderUpdateReason must be an integer, got string '4'"),
        ({"TradeAccount": ""}, "the message names no TradeAccount"),
        ({"Symbol": 5}, "Symbol must be a string, got number 5"),
        ({"Type": "301"}, "Type must be an integer, got string '301'"),
        ({"Type": None}, "no Type: not a DTC message"),
    ],
)
def test_malformed_fills_are_rejected_with_the_reason(fields: dict[str, Any], reason: str) -> None:
    [message] = messages("order_update_fill.json")
    assert reason_of(parse({**message, **fields})) == reason


JUNK: list[Any] = [None, "", "x", -1, 0, 1.5, True, [], {}, 1.7976931348623157e308, 10**30]


def test_no_field_value_makes_the_parser_raise() -> None:
    names = [name for name in sorted(FIXTURES.glob("*.json"))]
    for path in names:
        for message in messages(path.name):
            for field in message:
                for junk in JUNK:
                    parsed = parse({**message, field: junk})
                    assert isinstance(parsed, Parsed)
                    assert not (parsed.fills and parsed.rejections)


# -- in a real ledger ----------------------------------------------------------------


def register(ledger: Any) -> None:
    outcomes = [
        ledger.register_account(
            account="SC-SIM1", venue="SIERRA", mode="SIM", position_mode="netting"
        ),
        ledger.register_account(
            account="SC-LIVE", venue="SIERRA", mode="LIVE", position_mode="netting"
        ),
        ledger.register_instrument(
            instrument="ES",
            kind="future",
            multiplier="50",
            quote_currency="USD",
            settlement_currency="USD",
            tick_size="0.25",
        ),
        ledger.register_instrument(
            instrument="CL",
            kind="future",
            multiplier="1000",
            quote_currency="USD",
            settlement_currency="USD",
            tick_size="0.01",
        ),
        ledger.register_strategy(strategy="alpha"),
        ledger.register_strategy(strategy="beta"),
    ]
    assert all(outcome.status == "applied" for outcome in outcomes), outcomes


def lines(records: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(record) for record in records]


def test_the_fills_are_ledger_inputs_and_history_after_them_is_duplicates() -> None:
    live = fills("order_update_fill.json", "order_update_partial_fills.json")
    history = fills("historical_order_fills.json")
    with open_ledger("memory://dtc-test") as ledger:
        register(ledger)
        report = ledger.ingest(lines(live))
        assert (report.applied, report.duplicate, report.rejected) == (3, 0, 0), report
        held = {
            (p["strategy"], p["instrument"]): (p["signed_quantity"], p["avg_entry_price"])
            for p in ledger.positions()
        }
        assert held == {("alpha", "ES"): ("2", "6850.25"), ("beta", "CL"): ("-3", "71.25")}
        again = ledger.ingest(lines(live))
        assert (again.applied, again.duplicate, again.rejected) == (0, 3, 0), again
        caught_up = ledger.ingest(lines(history))
        assert (caught_up.applied, caught_up.duplicate, caught_up.rejected) == (0, 3, 0)
        snapshot = [
            record
            for name in ("position_updates.json", "position_updates_none.json")
            for message in messages(name)
            for record in parse(message).positions
        ]
        complete = [
            parse(message).extra["snapshot_complete"]
            for name in ("position_updates.json", "position_updates_none.json")
            for message in messages(name)
            if "snapshot_complete" in parse(message).extra
        ]
        assert complete == ["SC-SIM1", "SC-LIVE"]
        run = ledger.reconcile(lines(snapshot), fills=lines(history), accounts=complete)
        assert run.agreed, run.differences
        assert run.history.duplicate == 3


def test_fills_caught_up_from_history_after_a_disconnect_are_applied() -> None:
    with open_ledger("memory://dtc-catch-up") as ledger:
        register(ledger)
        report = ledger.ingest(lines(fills("order_update_fill.json")))
        assert report.applied == 1
        # The CL fills happened while disconnected: only the history has them.
        caught_up = ledger.ingest(lines(fills("historical_order_fills.json")))
        assert (caught_up.applied, caught_up.duplicate, caught_up.rejected) == (2, 1, 0)
        [cl] = ledger.positions(instrument="CL")
        assert (cl["strategy"], cl["signed_quantity"]) == ("beta", "-3")


def test_with_fractions_kept_live_fills_and_history_conflict() -> None:
    """Why fill times are cut to the second by default: the history has whole seconds."""
    live = fills("order_update_fill.json", whole_seconds=False)
    with open_ledger("memory://dtc-fractions") as ledger:
        register(ledger)
        assert ledger.ingest(lines(live)).applied == 1
        history = ledger.ingest(lines(fills("historical_order_fills.json", whole_seconds=False)))
        assert history.rejected == 1
        assert "conflict: exec_id SC-F-000101" in history.rejections[0][1]
