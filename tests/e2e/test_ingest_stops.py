"""``ingest`` stopped by Ctrl-C, refusing a file that is not JSON Lines, a capped list of
rejections, and a progress bar only on a terminal.

Ctrl-C is a real SIGINT sent to a real ``posledger ingest`` once the journal shows it has
applied lines (polled, never a fixed sleep): it says what it applied so far and exits 130,
and what it applied is exactly the whole transactions in the database.
"""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
from pathlib import Path

from tests.progress import wait_until

from .scenario import SCRIPT, clean_env, run, sql, url

ACCOUNT = {
    "type": "account",
    "account": "NET-1",
    "venue": "CME",
    "mode": "SIM",
    "position_mode": "netting",
}
INSTRUMENT = {
    "type": "instrument",
    "instrument": "MESH6.CME",
    "kind": "future",
    "multiplier": "5",
    "quote_currency": "USD",
    "settlement_currency": "USD",
}


def fill(n: int) -> str:
    return json.dumps(
        {
            "type": "fill",
            "exec_id": f"x-{n}",
            "account": "NET-1",
            "instrument": "MESH6.CME",
            "strategy": "orb",
            "side": "BUY" if n % 2 else "SELL",
            "quantity": "1",
            "price": f"{6850 + n % 40 * 0.25:.2f}",
            "ts": f"2026-03-02T{14 + n // 3600 % 8:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z",
        }
    )


def header() -> list[str]:
    return [json.dumps(ACCOUNT), json.dumps(INSTRUMENT), '{"type":"strategy","strategy":"orb"}']


def journal_count(db: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
        try:
            return int(conn.execute("SELECT count(*) FROM journal").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:  # not made yet
        return 0


SUMMARY = re.compile(
    r"interrupted after (\d+) lines: (\d+) applied, (\d+) duplicate, (\d+) rejected"
)


def test_ctrl_c_during_a_file_keeps_whole_transactions_and_says_so(tmp_path: Path) -> None:
    source = tmp_path / "big.jsonl"
    source.write_text("\n".join(header() + [fill(n) for n in range(1, 60_001)]) + "\n")
    db = tmp_path / "ledger.db"
    proc = subprocess.Popen(
        [str(SCRIPT), "--db", url(db), "ingest", str(source), "--batch-size", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    wait_until(lambda: journal_count(db) >= 500, lambda: journal_count(db), "ingest under way")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err
    found = SUMMARY.search(out)
    assert found is not None, out
    lines, applied, duplicate, rejected = map(int, found.groups())
    assert applied == journal_count(db) == lines  # what it says is what the books hold
    assert applied < 60_003 and applied % 50 == 0  # whole batches, and it stopped early
    assert (duplicate, rejected) == (0, 0)
    # The rest applies as usual later: nothing is lost or counted twice.
    again = run("ingest", str(source), "--batch-size", "1000", db=db, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"{60_003 - applied} applied, {applied} duplicate, 0 rejected" in again.stdout
    assert run("verify", db=db, timeout=600).returncode == 0


def test_ctrl_c_while_waiting_on_a_pipe_stops_at_once(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    proc = subprocess.Popen(
        [str(SCRIPT), "--db", url(db), "ingest", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    assert proc.stdin is not None
    lines = header() + [fill(n) for n in range(1, 98)]
    proc.stdin.write("\n".join(lines) + "\n")
    proc.stdin.flush()
    # Every line sent is applied; then it waits for more, and is interrupted there.
    wait_until(lambda: journal_count(db) == 100, lambda: journal_count(db), "lines applied")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "<stdin>: interrupted after 100 lines: 100 applied, 0 duplicate, 0 rejected" in out
    assert "Traceback" not in err
    assert journal_count(db) == 100


def test_ctrl_c_summary_as_json(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    proc = subprocess.Popen(
        [str(SCRIPT), "--db", url(db), "ingest", "-", "--json"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    assert proc.stdin is not None
    proc.stdin.write("\n".join([*header(), "not json", fill(1)]) + "\n")
    proc.stdin.flush()
    wait_until(lambda: journal_count(db) == 4, lambda: journal_count(db), "lines applied")
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130
    report = json.loads(out)
    assert report["interrupted"] is True
    assert (report["applied"], report["rejected"]) == (4, 1)
    assert report["rejections"][0]["line"] == 4


# -- not JSON Lines ----------------------------------------------------------------------------


def test_a_csv_file_is_refused_before_anything_is_applied(tmp_path: Path) -> None:
    source = tmp_path / "fills.csv"
    rows = ["exec_id,side,quantity,price,ts"] + [
        f"x-{n},BUY,1,6850.25,2026-03-02T14:45:0{n}Z" for n in range(1, 9)
    ]
    source.write_text("\n".join(rows) + "\n")
    db = tmp_path / "ledger.db"
    result = run("ingest", str(source), db=db)
    assert result.returncode == 2, result.stdout
    assert "this looks like CSV (header: exec_id,side,quantity,price,ts)" in result.stderr
    assert "one JSON object per line" in result.stderr and "docs/format.md" in result.stderr
    assert not db.exists()  # nothing made, nothing kept


def test_a_json_document_over_several_lines_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "fills.json"
    source.write_text(json.dumps([ACCOUNT, INSTRUMENT], indent=2))
    db = tmp_path / "ledger.db"
    result = run("ingest", str(source), db=db)
    assert result.returncode == 2
    assert "one JSON document spread over several lines" in result.stderr
    assert not db.exists()


def test_bad_lines_among_json_lines_are_rejected_one_by_one(tmp_path: Path) -> None:
    """Any of the first five lines being JSON is enough: the file is read as JSON Lines."""
    source = tmp_path / "mixed.jsonl"
    source.write_text("\n".join(["oops", "a,b,c", "x;y;z", "%%", header()[0], "tail"]) + "\n")
    db = tmp_path / "ledger.db"
    result = run("ingest", str(source), db=db)
    assert result.returncode == 1
    assert "6 lines: 1 applied, 0 duplicate, 5 rejected" in result.stdout


def test_the_rejections_shown_are_capped(tmp_path: Path) -> None:
    source = tmp_path / "bad.jsonl"
    bad = [json.dumps({"type": "fill", "exec_id": f"x-{n}"}) for n in range(1, 1_251)]
    source.write_text("\n".join([header()[0], *bad]) + "\n")
    db = tmp_path / "ledger.db"
    result = run("ingest", str(source), "--batch-size", "500", db=db)
    assert result.returncode == 1
    shown = [line for line in result.stdout.splitlines() if "rejected line" in line]
    assert len(shown) == 20
    assert shown[0].startswith("  rejected line 2: ") and "line 21:" in shown[-1]
    assert "  ... and 1,230 more: posledger rejected lists them all" in result.stdout
    assert sql(db, "SELECT count(*) FROM rejected_inputs") == [(1_250,)]
    every = json.loads(run("ingest", str(source), "--json", db=db).stdout)
    assert len(every["rejections"]) == 1_250  # JSON holds them all


# -- progress ----------------------------------------------------------------------------------


def _on_a_terminal(argv: list[str]) -> tuple[int, str]:
    """Run with stdout and stderr on a pty 80 columns wide; its exit status and output."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = clean_env()
    env.pop("COLUMNS", None)
    proc = subprocess.Popen(
        argv, stdout=follower, stderr=follower, stdin=subprocess.DEVNULL, env=env
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    status = proc.wait()
    os.close(leader)
    return status, b"".join(chunks).decode(errors="replace")


def test_a_progress_bar_on_a_terminal_and_none_on_a_pipe(tmp_path: Path) -> None:
    source = tmp_path / "big.jsonl"
    source.write_text("\n".join(header() + [fill(n) for n in range(1, 8_001)]) + "\n")
    db = tmp_path / "ledger.db"
    status, text = _on_a_terminal(
        [str(SCRIPT), "--db", url(db), "ingest", str(source), "--batch-size", "500"]
    )
    assert status == 0, text
    assert "ingesting" in text and "lines" in text and "━" in text, text
    assert "8003 lines: 8003 applied" in text
    piped = run("ingest", str(source), "--batch-size", "500", db=db)
    assert piped.stderr == ""  # no progress when stderr is not a terminal
    status, text = _on_a_terminal([str(SCRIPT), "--db", url(db), "verify"])
    assert status == 0 and "replaying" in text and "ok:" in text, text
    quiet_status, quiet = _on_a_terminal(
        [str(SCRIPT), "--db", url(db), "ingest", str(source), "--quiet"]
    )
    assert quiet_status == 0 and "ingesting" not in quiet


def test_no_progress_bar_for_a_small_file_on_a_terminal(tmp_path: Path) -> None:
    source = tmp_path / "small.jsonl"
    source.write_text("\n".join(header() + [fill(n) for n in range(1, 50)]) + "\n")
    status, text = _on_a_terminal(
        [str(SCRIPT), "--db", url(tmp_path / "ledger.db"), "ingest", str(source)]
    )
    assert status == 0 and "ingesting" not in text, text
