"""bench/ingest.py runs in its quick mode and writes every section of the report.

Only that it completes: speed is measured by the benchmark itself, never asserted here.
The server sections (6-9) are checked for each server that answers (see tests/databases.py);
a server that does not is skipped with the reason, or fails the test when ``CI=true``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.databases import SERVERS, require, server_url

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "ingest.py"

HEADINGS = [
    "# Benchmarks",
    "## Machine",
    "## Summary",
    "## 1. Pure domain, one slot",
    "## 2. Durable per-fill ingestion on SQLite",
    "## 3. Bare sqlite3 transaction on the same disk",
    "## 4. Batched JSONL ingestion through the CLI",
    "## 5. Memory and size",
    "## 6. Database servers",
    "## 7. Durable per-fill ingestion on the servers",
    "## 8. Batched ingestion on the servers",
    "## 9. Concurrent writers on the servers",
]
SERVER_SECTIONS = HEADINGS[-3:]
LABEL = {"postgresql": "PostgreSQL", "mariadb": "MariaDB"}
DRIVER = {"postgresql": "psycopg", "mariadb": "PyMySQL"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """One quick run for the whole module, on the servers the test suite uses: (report,
    stderr)."""
    tmp = tmp_path_factory.mktemp("bench")
    output = tmp / "benchmarks.md"
    urls = {kind: server_url(kind).render_as_string(hide_password=False) for kind in SERVERS}
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--quick",
            "--output",
            str(output),
            "--dir",
            str(tmp / "work"),
            "--postgres-url",
            urls["postgresql"],
            "--mariadb-url",
            urls["mariadb"],
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "## Summary" in result.stdout
    return output.read_text(encoding="utf-8"), result.stderr


def section(text: str, heading: str) -> str:
    """The text of one ``## `` section of the report."""
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : None if end < 0 else end]


def subsection(text: str, heading: str) -> str:
    """The text of one ``### `` subsection."""
    start = text.index(f"\n{heading}\n")
    end = text.find("\n### ", start + 1)
    return text[start : None if end < 0 else end]


def test_quick_benchmark_writes_its_report(quick_run: tuple[str, str]) -> None:
    text, _ = quick_run
    lines = text.splitlines()
    for heading in HEADINGS:
        assert heading in lines, f"missing heading {heading!r}"


@pytest.mark.parametrize("kind", SERVERS)
def test_quick_benchmark_measures_the_server(kind: str, quick_run: tuple[str, str]) -> None:
    require(kind)
    text, stderr = quick_run
    label = LABEL[kind]
    assert f"**{label}: not measured.**" not in text, stderr[-4000:]
    summary = section(text, "## Summary")
    ratio = f"| {label}: durable per-fill ingestion / bare {DRIVER[kind]} transaction | "
    assert re.search(re.escape(ratio) + r"\d+%", summary), summary
    assert re.search(rf"\| {label}: batched ingestion through the CLI \| [\d,]+ fills/s", summary)
    assert f"### {label} at " in section(text, "## 6. Database servers")
    for heading in SERVER_SECTIONS:
        assert f"### {label}\n" in section(text, heading), f"{label} missing from {heading}"
    writers = subsection(section(text, "## 9. Concurrent writers on the servers"), f"### {label}")
    for placement in ("one each", "one"):
        for batch in (1, 100):
            shape = rf"\| `--batch-size {batch}` \| \d+ \| {placement} \| [\d,]+ \|"
            assert re.search(shape, writers), writers
