"""bench/ingest.py runs in its quick mode and writes every section of the report.

Only that it completes: speed is measured by the benchmark itself, never asserted here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
]


def test_quick_benchmark_writes_its_report(tmp_path: Path) -> None:
    output = tmp_path / "benchmarks.md"
    work = tmp_path / "work"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--output", str(output), "--dir", str(work)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    text = output.read_text(encoding="utf-8")
    lines = text.splitlines()
    for heading in HEADINGS:
        assert heading in lines, f"missing heading {heading!r}"
    assert "## Summary" in result.stdout
