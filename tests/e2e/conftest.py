"""Fixtures for the end-to-end tests: the real console script against SQLite files."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .scenario import SCRIPT, SESSION, run, run_json, write


@dataclass(frozen=True)
class Ingested:
    """The hand-checked session ingested once by ``posledger ingest``; treat as read-only."""

    db: Path
    source: Path
    positions: list[dict[str, Any]]
    positions_all: list[dict[str, Any]]
    trades: list[dict[str, Any]]

    def copy(self, target: Path) -> Path:
        """A private copy of the database to modify."""
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{self.db}{suffix}")
            if src.exists():
                shutil.copyfile(src, f"{target}{suffix}")
        return target


@pytest.fixture(scope="session", autouse=True)
def _script_installed() -> None:
    assert SCRIPT.exists(), f"the posledger console script is not installed at {SCRIPT}"


@pytest.fixture(scope="session")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    base = tmp_path_factory.mktemp("ingested")
    source = write(base / "session.jsonl", SESSION)
    db = base / "session.db"
    result = run("ingest", str(source), db=db)
    assert result.returncode == 0, result.stdout + result.stderr
    return Ingested(
        db=db,
        source=source,
        positions=run_json("positions", db=db),
        positions_all=run_json("positions", "--all", db=db),
        trades=run_json("trades", db=db),
    )


@pytest.fixture
def servers() -> Iterator[list[Any]]:
    """``posledger serve`` processes a test starts (tests/e2e/test_serve.py ``Server``):
    any still running at the end is killed."""
    started: list[Any] = []
    yield started
    for server in started:
        if server.proc.poll() is None:
            server.kill()
