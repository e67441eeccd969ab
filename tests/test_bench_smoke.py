"""bench/bench.py runs in its quick mode and writes a well-formed report.

Only that it runs: speed is measured by the benchmark itself, never asserted here. Each
server that answers (see tests/databases.py) must be measured; one that does not must be
reported as not measured (and fails the test under CI=true, like every server test).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.databases import SERVERS, require, server_url, unavailable

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "bench.py"
LABEL = {"postgresql": "PostgreSQL", "mariadb": "MariaDB"}
HEADINGS = [
    "# Benchmarks",
    "## Machine",
    "## Summary",
    "## 1. Pure domain, one slot",
    "## 2. SQLite durable per fill",
    "## 3. SQLite batched CLI ingest",
    "## 4. PostgreSQL",
    "## 5. MariaDB",
    "## 8. Brackets on every slot",
    "## 10. Marks on 1,000 open slots",
    "## 11. The HTTP API",
    "## 12. A venue: Binance through the connector",
]
NUMBER = r"[\d,.]+ ?(fills/s|marks/s|/s|s|ms|MiB|%)"
VERDICT = r"(met|\*\*not met\*\*) \(×[\d.]+\)"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One quick run for the module, on the servers the test suite uses."""
    tmp = tmp_path_factory.mktemp("bench")
    output = tmp / "benchmarks.md"
    urls = [server_url(kind).render_as_string(hide_password=False) for kind in SERVERS]
    command = [sys.executable, str(SCRIPT), "--quick", "--output", str(output)]
    command += ["--dir", str(tmp), "--postgres-url", urls[0], "--mariadb-url", urls[1]]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    text = output.read_text(encoding="utf-8")
    assert result.stdout.strip() == text.strip()
    assert not list(tmp.glob(".bench-tmp-*")), "the working directory was left behind"
    return text


def section(text: str, start: str) -> str:
    """The text from a heading to the next ``## `` heading."""
    begin = text.index(f"\n{start}")
    end = text.find("\n## ", begin + 1)
    return text[begin : None if end < 0 else end]


def summary(text: str) -> dict[str, list[str]]:
    """The summary table's rows, by measure."""
    lines = [line for line in section(text, "## Summary").splitlines() if line.startswith("| ")]
    rows = [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[1:]]
    return {cells[0]: cells[1:] for cells in rows}


def test_the_report_has_every_section(report: str) -> None:
    lines = report.splitlines()
    for heading in HEADINGS:
        assert heading in lines, heading
    assert any(line.startswith("## 6. Start-up and `positions` on the ") for line in lines)
    assert any(line.startswith("## 7. `verify` and `rebuild` of the ") for line in lines)
    assert any(
        line.startswith("## 9. `pnl`, `report` and `positions --as-of` on the ") for line in lines
    )
    assert "**Quick mode**" in report


def test_every_sqlite_measure_has_a_number_a_floor_and_a_verdict(report: str) -> None:
    rows = summary(report)
    assert len(rows) == 25, rows
    for measure, (median, floor, ratio, goal, met) in rows.items():
        if measure.startswith(("PostgreSQL", "MariaDB")):
            continue
        assert re.fullmatch(NUMBER, median), (measure, median)
        assert re.fullmatch(NUMBER, floor), (measure, floor)
        assert re.fullmatch(r"\d+%", ratio), (measure, ratio)
        if goal == "(no goal)":  # measured beside its floor, with no goal set
            assert met == "", (measure, met)
            continue
        assert goal.startswith(("≥ ", "≤ ")), (measure, goal)
        assert re.fullmatch(VERDICT, met), (measure, met)


@pytest.mark.parametrize("kind", SERVERS)
def test_a_server_is_measured_when_it_answers(kind: str, report: str) -> None:
    label = LABEL[kind]
    n = 4 if kind == "postgresql" else 5
    text = section(report, f"## {n}. {label}")
    rows = {m: cells for m, cells in summary(report).items() if m.startswith(label)}
    assert len(rows) == 2, rows
    if unavailable(kind) is not None:
        assert "**Not measured:**" in text
        assert all(cells[0] == "not measured" for cells in rows.values())
        require(kind)  # skips, or fails under CI=true
    assert "Not measured" not in text, text
    for measure, (median, floor, ratio, _, met) in rows.items():
        assert re.fullmatch(NUMBER, median) and re.fullmatch(NUMBER, floor), measure
        assert re.fullmatch(r"\d+%", ratio), measure
        assert kind == "mariadb" or re.fullmatch(VERDICT, met), measure
