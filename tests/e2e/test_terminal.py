"""Tables for people fit the terminal (80 columns) and never cut a number or an id short.

A realistic ledger (tests/e2e/generate.py: three accounts, netting and hedge, futures and a
perpetual with 3-decimal quantities, six strategies) plus a bracket (outbox commands), a
halt, a transfer, a reconciliation that differs and a rejected line. Every listing is
printed with COLUMNS=80 and output to a pipe, as a script or `watch` would see it; every
quantity, price and id its ``--json`` holds must appear whole in the table (as a token of
its own, not cut, not folded), and no line may be wider than 80 columns.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from posledger.entrypoints.render import human

from .generate import generate
from .scenario import clean_env, run

WIDTH = 80


@dataclass(frozen=True)
class Desk:
    db: Path
    tmp: Path


def _ok(*args: str, db: Path, **kw: Any) -> str:
    result = run(*args, db=db, **kw)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


def _json(*args: str, db: Path) -> Any:
    return json.loads(_ok(*args, "--json", db=db))


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Desk:
    tmp = tmp_path_factory.mktemp("terminal")
    session = generate(tmp / "session.jsonl", 200, seed=7)
    with session.path.open("a", encoding="utf-8") as out:
        out.write('{"type":"fill","exec_id":"no-price"}\n')  # one rejected line
        # orb holds 8 NQ.F on NET-B and exits 10: refused pre-trade (a second rejected
        # line), filled anyway, the 2 it did not hold booked to EXTERNAL (an anomaly).
        out.write(
            '{"type":"order","client_order_id":"orb-big-exit","account":"NET-B",'
            '"strategy":"orb","instrument":"NQ.F","side":"SELL","quantity":"10",'
            '"intent":"exit"}\n'
            '{"type":"fill","exec_id":"orb-big-exit-1","account":"NET-B","instrument":"NQ.F",'
            '"side":"SELL","quantity":"10","price":"18010.25","ts":"2026-03-05T09:00:00Z",'
            '"client_order_id":"orb-big-exit"}\n'
        )
    db = tmp / "desk.db"
    assert run("ingest", str(session.path), db=db).returncode == 1  # the rejected line
    _ok(
        "bracket",
        "set",
        "--account",
        "NET-A",
        "--instrument",
        "ES.F",
        "--strategy",
        "pairs",
        "--take-profit",
        "5100.25",
        "--stop-loss",
        "4950.5",
        db=db,
    )
    _ok("halt", "--account", "NET-A", "--instrument", "NQ.F", "--reason", "books differ", db=db)
    _ok(
        "transfer",
        "--account",
        "NET-A",
        "--instrument",
        "ES.F",
        "--from",
        "pairs",
        "--to",
        "trend",
        "--quantity",
        "2",
        "--ts",
        "2026-03-03T10:00:00Z",
        db=db,
    )
    # The broker agrees on every key but one, where it holds one more.
    net: dict[tuple[str, str, str], float] = {}
    for row in _json("positions", db=db):
        key = (row["account"], row["instrument"], row["position_side"])
        net[key] = net.get(key, 0.0) + float(row["signed_quantity"])
    lines = []
    for (account, instrument, side), quantity in net.items():
        if (account, instrument) == ("NET-A", "ES.F"):
            quantity += 1
        text = f"{quantity:.3f}" if instrument == "BTC.P" else f"{quantity:.0f}"
        lines.append(
            json.dumps(
                {
                    "type": "broker_position",
                    "account": account,
                    "instrument": instrument,
                    "position_side": side,
                    "quantity": text,
                }
            )
        )
    snapshot = tmp / "broker.jsonl"
    snapshot.write_text("\n".join(lines) + "\n")
    result = run("reconcile", str(snapshot), "--run", "close-1", db=db)
    assert result.returncode == 1, result.stdout + result.stderr  # the books differ
    return Desk(db, tmp)


def table(*args: str, db: Path, columns: int = WIDTH) -> str:
    """A listing's table, output to a pipe with COLUMNS set; no line wider than that."""
    result = run(*args, db=db, env=clean_env(COLUMNS=str(columns)))
    assert result.returncode == 0, (args, result.stderr)
    assert "Traceback" not in result.stderr
    wide = [line for line in result.stdout.splitlines() if len(line.rstrip()) > columns]
    assert not wide, f"{args}: lines wider than {columns}:\n" + "\n".join(wide)
    return result.stdout


def missing(text: str, tokens: list[str]) -> list[str]:
    """The tokens that do not appear whole in ``text`` (a number cut short, or folded
    onto two lines, is not whole)."""
    absent = []
    for token in tokens:
        pattern = r"(?<![\w.\-])" + re.escape(token) + r"(?![\w.])"
        if re.search(pattern, text) is None:
            absent.append(token)
    return absent


def amounts(rows: list[dict[str, Any]], *fields: str) -> list[str]:
    return [human(row[f]) for row in rows for f in fields if row[f] is not None]


def test_positions_fit_80_columns_with_every_quantity_and_price(desk: Desk) -> None:
    rows = _json("positions", db=desk.db)
    assert len(rows) > 15  # a realistic number of slots
    text = table("positions", db=desk.db)
    tokens = [r["signed_quantity"] for r in rows] + amounts(
        rows, "avg_entry_price", "realized_pnl", "unrealized_pnl"
    )
    tokens += [str(r["trade_id"]) for r in rows]
    assert not missing(text, tokens), (missing(text, tokens), text)
    assert all(r["strategy"] in text for r in rows)


def test_trades_fit_80_columns_with_every_quantity_price_and_id(desk: Desk) -> None:
    rows = _json("trades", db=desk.db)
    assert len(rows) > 40
    text = table("trades", db=desk.db)
    tokens = [str(r["trade_id"]) for r in rows] + [r["quantity"] for r in rows]
    tokens += amounts(rows, "avg_entry_price", "avg_exit_price", "realized_pnl")
    assert not missing(text, tokens), (missing(text, tokens), text)
    # What is left out is said, and --wide shows it.
    assert "not shown:" in text and "--wide" in text


def test_wide_shows_every_column(desk: Desk) -> None:
    narrow = table("trades", db=desk.db)
    result = run("trades", "--wide", db=desk.db, env=clean_env(COLUMNS="80"))
    assert result.returncode == 0, result.stderr
    header = next(line for line in result.stdout.splitlines() if "strategy" in line)
    for name in (
        "id",
        "account",
        "instrument",
        "strategy",
        "side",
        "qty",
        "entry",
        "exit",
        "net p&l",
        "ccy",
        "peak",
        "reason",
        "return",
        "opened",
        "closed",
    ):
        assert f" {name} " in header, (name, header)
    assert "not shown" not in result.stdout and "not shown" in narrow
    rows = _json("trades", db=desk.db)
    assert not missing(result.stdout, [r["peak_quantity"] for r in rows])
    assert not missing(result.stdout, [r["opened_at"].replace("T", " ")[:19] for r in rows])


@pytest.mark.parametrize(
    ("args", "fields", "ids"),
    [
        (("anomalies",), ["quantity"], ["seq", "exec_id"]),
        (("transfers",), ["quantity", "price"], ["seq"]),
        (("halts",), [], ["seq"]),
        (("rejected",), [], ["id", "line"]),
        (("commands", "--status", "all"), [], ["command_id"]),
        (("reconciliations",), ["ledger_quantity", "broker_quantity"], []),
        (("exits", "--watched"), ["remaining"], ["client_order_id"]),
        (("exits",), ["quantity"], []),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else None,
)
def test_every_table_fits_and_keeps_numbers_and_ids_whole(
    desk: Desk, args: tuple[str, ...], fields: list[str], ids: list[str]
) -> None:
    rows = _json(*args, db=desk.db)
    assert rows, f"{args}: the dataset should give rows"
    text = table(*args, db=desk.db)
    tokens = [str(row[f]) for row in rows for f in fields + ids if row.get(f) is not None]
    assert not missing(text, tokens), (missing(text, tokens), text)


def test_bracket_list_fits_and_shows_the_leg_prices(desk: Desk) -> None:
    text = table("bracket", "list", db=desk.db)
    assert not missing(text, ["5100.25", "4950.5", "pairs"]), text


def test_without_columns_output_to_a_pipe_is_80_wide(desk: Desk) -> None:
    env = clean_env()
    env.pop("COLUMNS", None)
    result = run("trades", db=desk.db, env=env)
    assert result.returncode == 0
    assert max(len(line.rstrip()) for line in result.stdout.splitlines()) <= 80


def test_a_wider_terminal_shows_more_columns(desk: Desk) -> None:
    text = table("trades", db=desk.db, columns=200)
    assert "opened" in text and "not shown" not in text


def test_a_narrow_terminal_folds_rather_than_cuts(desk: Desk) -> None:
    """At 40 columns the numbers cannot stay on one line; they fold, digit for digit, and
    nothing is cut or replaced by an ellipsis."""
    text = table("trades", "--limit", "5", db=desk.db, columns=40)
    assert "…" not in text and "..." not in text.split("not shown")[0]
    rows = _json("trades", "--limit", "5", db=desk.db)
    cells = [str(r["trade_id"]) for r in rows] + [r["quantity"] for r in rows]
    cells += amounts(rows, "avg_entry_price", "avg_exit_price", "realized_pnl")
    # Every digit of every number is somewhere in the table: none was cut.
    shown = sum(ch.isdigit() for ch in text.split("not shown")[0])
    assert shown >= sum(ch.isdigit() for cell in cells for ch in cell), text


def test_tables_on_a_terminal_fit_its_width(desk: Desk) -> None:
    """On a real terminal (a pty 80 columns wide, no COLUMNS) the table fits it too."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import termios

    from .scenario import SCRIPT, url

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = clean_env()
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    proc = subprocess.Popen(
        [str(SCRIPT), "--db", url(desk.db), "trades"],
        stdout=follower,
        stderr=follower,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the terminal closed: the command ended
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait() == 0
    os.close(leader)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode())
    lines = text.replace("\r", "").splitlines()
    assert any("strategy" in line for line in lines), text
    assert max(len(line.rstrip()) for line in lines) <= 80, text
    rows = _json("trades", db=desk.db)
    assert not missing(text, amounts(rows, "avg_entry_price", "realized_pnl"))
