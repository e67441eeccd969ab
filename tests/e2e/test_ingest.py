"""``posledger ingest``: files and stdin, summaries, exit status, exactly-once on re-ingest."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .conftest import Ingested
from .scenario import (
    BAD_LINES,
    SESSION,
    invoke,
    invoke_json,
    journal,
    jsonl,
    run,
    run_json,
    sql,
    write,
)

N = len(SESSION)


def test_ingest_file_prints_summary_and_exits_0(tmp_path: Path, ingested: Ingested) -> None:
    source = write(tmp_path / "session.jsonl", SESSION)
    db = tmp_path / "ledger.db"
    result = run("ingest", str(source), db=db)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{source}: {N} lines: {N} applied, 0 duplicate, 0 rejected"
    assert db.exists()
    assert run_json("positions", "--all", db=db) == ingested.positions_all
    assert sql(db, "SELECT count(*) FROM journal") == [(N,)]
    assert sql(db, "SELECT count(*) FROM fills") == [(9,)]


def test_ingest_from_stdin(tmp_path: Path, ingested: Ingested) -> None:
    db = tmp_path / "stdin.db"
    result = run("ingest", "-", db=db, input=jsonl(SESSION))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"<stdin>: {N} lines: {N} applied, 0 duplicate, 0 rejected"
    assert run_json("positions", "--all", db=db) == ingested.positions_all
    assert run_json("trades", db=db) == ingested.trades


def test_ingest_json_summary(tmp_path: Path) -> None:
    source = write(tmp_path / "session.jsonl", SESSION)
    db = tmp_path / "ledger.db"
    result = run("ingest", "--json", str(source), db=db)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "source": str(source),
        "lines": N,
        "applied": N,
        "duplicate": 0,
        "rejected": 0,
        "rejections": [],
        "interrupted": False,
    }
    again = run("ingest", "--json", str(source), db=db)
    assert again.returncode == 0
    summary = json.loads(again.stdout)
    assert (summary["applied"], summary["duplicate"], summary["rejected"]) == (0, N, 0)


def _with_bad_lines(tmp_path: Path) -> tuple[Path, dict[int, list[str]]]:
    """The session with the bad lines spread through it; {line number: reason words}."""
    lines = [json.dumps(r) for r in SESSION]
    expected: dict[int, list[str]] = {}
    for offset, (raw, _) in zip((9, 15, 22), BAD_LINES, strict=True):
        lines.insert(offset, raw)
    for number, text in enumerate(lines, start=1):
        for raw, words in BAD_LINES:
            if text == raw:
                expected[number] = words
    path = tmp_path / "with-bad-lines.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, expected


def test_rejections_exit_1_others_still_applied(tmp_path: Path, ingested: Ingested) -> None:
    source, expected = _with_bad_lines(tmp_path)
    db = tmp_path / "ledger.db"
    result = run("ingest", str(source), db=db)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout.splitlines()
    total = N + len(BAD_LINES)
    assert out[0] == f"{source}: {total} lines: {N} applied, 0 duplicate, {len(BAD_LINES)} rejected"
    reported = {}
    for line in out[1:]:
        match = re.fullmatch(r"  rejected line (\d+): (.+)", line)
        assert match, f"unexpected summary line {line!r}"
        reported[int(match.group(1))] = match.group(2)
    assert set(reported) == set(expected)
    for number, words in expected.items():
        for word in words:
            assert word in reported[number], (number, reported[number])
    # Every good line was applied despite the bad ones around it.
    assert run_json("positions", "--all", db=db) == ingested.positions_all
    assert run_json("trades", db=db) == ingested.trades
    # Nothing of a bad line was applied.
    assert sql(db, "SELECT count(*) FROM fills WHERE exec_id LIKE 'bad-%'") == [(0,)]
    assert sql(db, "SELECT count(*) FROM journal") == [(N,)]


def test_rejections_json_summary_and_rejected_command(tmp_path: Path) -> None:
    source, expected = _with_bad_lines(tmp_path)
    db = tmp_path / "ledger.db"
    result = run("ingest", "--json", str(source), db=db)
    assert result.returncode == 1
    summary = json.loads(result.stdout)
    assert summary["rejected"] == len(BAD_LINES)
    assert summary["applied"] == N
    assert [r["line"] for r in summary["rejections"]] == sorted(expected)
    for item in summary["rejections"]:
        assert all(word in item["reason"] for word in expected[item["line"]])

    rows = run_json("rejected", db=db)
    raw_by_line = {
        n: text for n, text in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1)
    }
    assert [row["line"] for row in rows] == sorted(expected)
    for row in rows:
        assert row["raw"] == raw_by_line[row["line"]], "the raw line is kept exactly"
        assert row["source"] == str(source)
        assert all(word in row["reason"] for word in expected[row["line"]])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", row["received_at"])
    table = run("rejected", db=db)
    assert table.returncode == 0
    assert "unknown account" in table.stdout and "malformed JSON" in table.stdout

    # The same bad lines sent again are reported again but not stored twice.
    again = run("ingest", str(source), db=db)
    assert again.returncode == 1
    assert f"0 applied, {N} duplicate, {len(BAD_LINES)} rejected" in again.stdout
    assert len(run_json("rejected", db=db)) == len(BAD_LINES)


def test_second_ingest_reports_duplicates_and_changes_nothing(tmp_path: Path) -> None:
    source = write(tmp_path / "session.jsonl", SESSION)
    db = tmp_path / "ledger.db"
    assert run("ingest", str(source), db=db).returncode == 0
    before = (
        run_json("positions", "--all", db=db),
        run_json("trades", db=db),
        journal(db),
        sql(db, "SELECT * FROM fills ORDER BY account, exec_id"),
        sql(db, "SELECT * FROM slots ORDER BY account, instrument, strategy, position_side"),
        sql(db, "SELECT * FROM trades ORDER BY trade_id"),
    )
    result = run("ingest", str(source), db=db)
    assert result.returncode == 0
    assert result.stdout.strip() == f"{source}: {N} lines: 0 applied, {N} duplicate, 0 rejected"
    after = (
        run_json("positions", "--all", db=db),
        run_json("trades", db=db),
        journal(db),
        sql(db, "SELECT * FROM fills ORDER BY account, exec_id"),
        sql(db, "SELECT * FROM slots ORDER BY account, instrument, strategy, position_side"),
        sql(db, "SELECT * FROM trades ORDER BY trade_id"),
    )
    assert after == before
    assert len(after[2]) == N


def test_verbose_acknowledges_every_line_in_order(tmp_path: Path) -> None:
    source = write(tmp_path / "session.jsonl", SESSION)
    db = tmp_path / "ledger.db"
    result = run("ingest", "-v", "--quiet", str(source), db=db)
    assert result.returncode == 0
    acks = result.stdout.splitlines()[:N]
    for number, (line, record) in enumerate(zip(acks, SESSION, strict=True), start=1):
        assert line.startswith(f"line {number}: applied {record['type']} "), line
        assert re.search(r"\(seq \d+\)$", line), line
    assert acks[8] == "line 9: applied fill x-1 (seq 9)"
    seqs = [int(re.search(r"\(seq (\d+)\)$", line).group(1)) for line in acks]  # type: ignore[union-attr]
    assert seqs == list(range(1, N + 1))

    again = run("ingest", "-v", "--quiet", str(source), db=db)
    acks = again.stdout.splitlines()[:N]
    assert all(re.match(r"line \d+: duplicate ", line) for line in acks), acks
    assert "line 9: duplicate fill x-1" in acks[8]


def test_batch_size_gives_the_same_ledger(tmp_path: Path, ingested: Ingested) -> None:
    source = write(tmp_path / "session.jsonl", SESSION)
    db = tmp_path / "batched.db"
    result = run("ingest", "--batch-size", "7", str(source), db=db)
    assert result.returncode == 0, result.stderr
    assert f"{N} applied" in result.stdout
    assert run_json("positions", "--all", db=db) == ingested.positions_all
    assert run_json("trades", db=db) == ingested.trades
    assert journal(db) == journal(ingested.db)


def test_blank_lines_are_skipped_but_counted_in_numbering(tmp_path: Path) -> None:
    lines = [json.dumps(r) for r in SESSION[:3]]
    path = tmp_path / "blank.jsonl"
    path.write_text(lines[0] + "\n\n" + lines[1] + "\n   \n" + lines[2] + "\n{oops}\n")
    db = tmp_path / "ledger.db"
    result = run("ingest", "--json", str(path), db=db)
    assert result.returncode == 1
    summary = json.loads(result.stdout)
    assert (summary["lines"], summary["applied"], summary["rejected"]) == (4, 3, 1)
    assert summary["rejections"][0]["line"] == 6


def test_ingest_through_click_runner(tmp_path: Path, ingested: Ingested) -> None:
    db = tmp_path / "runner.db"
    source, expected = _with_bad_lines(tmp_path)
    result = invoke("ingest", "--json", "-", db=db, input=source.read_text(encoding="utf-8"))
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["source"] == "<stdin>"
    assert [r["line"] for r in summary["rejections"]] == sorted(expected)
    assert invoke_json("positions", "--all", db=db) == ingested.positions_all
    assert invoke_json("trades", db=db) == ingested.trades
    again = invoke("ingest", "-", db=db, input=jsonl(SESSION))
    assert again.exit_code == 0, again.output
    assert f"0 applied, {N} duplicate, 0 rejected" in again.stdout
    assert invoke("verify", db=db).exit_code == 0


def test_a_line_that_is_not_utf8_is_rejected_not_fatal(tmp_path: Path, ingested: Ingested) -> None:
    """Bad input is refused whole with a reason (docs/format.md, Limits); the lines after it
    still count."""
    lines = [json.dumps(r).encode() for r in SESSION]
    bad = b'{"type":"strategy","strategy":"caf\xe9"}'  # Latin-1, not UTF-8
    lines.insert(7, bad)
    source = tmp_path / "latin1.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    db = tmp_path / "ledger.db"
    result = run("ingest", "--json", str(source), db=db)
    assert "Traceback" not in result.stderr, result.stderr[-1500:]
    assert result.returncode == 1, result.stdout + result.stderr[-1500:]
    summary = json.loads(result.stdout)
    assert (summary["applied"], summary["rejected"]) == (N, 1)
    assert summary["rejections"][0]["line"] == 8
    assert run_json("positions", "--all", db=db) == ingested.positions_all
    (row,) = run_json("rejected", db=db)
    assert row["line"] == 8 and "caf" in row["raw"]


def test_batches_handle_duplicates_and_conflicts_inside_one_batch(tmp_path: Path) -> None:
    """A fill, its exact resend and a conflicting resend all in the same transaction."""
    lines = [json.dumps(r) for r in SESSION]
    original = next(line for line in lines if '"x-1"' in line)
    conflicting = json.dumps({**json.loads(original), "price": "100.5"})
    at = lines.index(original) + 1
    lines[at:at] = [original, conflicting]
    source = tmp_path / "resends.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    outputs = []
    for batch in ("1", "100"):
        db = tmp_path / f"batch-{batch}.db"
        result = run("ingest", "--json", "--batch-size", batch, str(source), db=db)
        assert result.returncode == 1, result.stdout + result.stderr
        summary = json.loads(result.stdout)
        assert (summary["applied"], summary["duplicate"], summary["rejected"]) == (N, 1, 1)
        ((rejection),) = summary["rejections"]
        assert rejection["line"] == at + 2
        assert "conflict" in rejection["reason"] and "x-1" in rejection["reason"]
        assert "price" in rejection["reason"]
        assert run("verify", db=db).returncode == 0
        outputs.append((run_json("positions", "--all", db=db), run_json("trades", db=db)))
    assert outputs[0] == outputs[1]
