"""Opening a database: what reads may not do (create one), what lasts (not memory), and
read-only SQLite files.

``create=False`` is what commands that only read pass: a typo in ``--db`` must not look
like an empty ledger, so nothing is created, on any database. ``persistent=True`` is what
the command line passes: a database that keeps nothing once the command ends is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy.engine import make_url

from posledger import DatabaseError, NotFound, SchemaError, UsageError, open_ledger
from posledger.bootstrap import open_store
from posledger.store import schema
from posledger.store.database import open_database, upgrade_database
from tests.databases import SERVERS, require, server_url

from .helpers import db_path, execute, fill, kind_of, setup
from .test_migrations import alembic, differences, stored_revision, tables

SIDE_FILES = ("-wal", "-shm", "-journal")


def _side_files(path: Path) -> list[str]:
    return [suffix for suffix in SIDE_FILES if Path(f"{path}{suffix}").exists()]


# -- reads create nothing --------------------------------------------------------------------


def test_a_read_of_a_database_that_does_not_exist_creates_nothing(db_url: str) -> None:
    kind = kind_of(db_url)
    with pytest.raises(SchemaError) as refused:
        open_ledger(db_url, create=False)
    message = str(refused.value)
    assert "posledger migrate" in message and "nothing was created" in message, message
    if kind == "sqlite":
        path = db_path(db_url)
        # a missing database is also a NotFound, and names the file
        assert isinstance(refused.value, NotFound)
        assert f"no database at {path}" in message and "ingest" in message, message
        assert not path.exists() and _side_files(path) == []
        with pytest.raises(SchemaError):
            open_database(db_url, create=False)
        assert not path.exists()
    else:
        name = make_url(db_url).render_as_string(hide_password=True)
        assert name in message and "no posledger schema" in message, message
        assert tables(db_url) == set()
    # a write creates it, as always; reads then work
    with open_ledger(db_url) as ledger:
        setup(ledger)
    with open_ledger(db_url, create=False) as ledger:
        assert len(ledger.positions(include_flat=True)) == 0
        assert ledger.verify().ok


def test_a_read_of_an_empty_sqlite_file_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    with pytest.raises(SchemaError, match="no posledger schema") as refused:
        open_ledger(f"sqlite:///{path}", create=False)
    assert "posledger migrate" in str(refused.value)
    assert path.stat().st_size == 0 and _side_files(path) == []


@pytest.mark.parametrize("kind", SERVERS)
def test_a_server_database_that_does_not_exist_is_named(kind: str) -> None:
    require(kind)
    name = f"pl_missing_{uuid.uuid4().hex[:8]}"
    url = server_url(kind).set(database=name).render_as_string(hide_password=False)
    for create in (False, True):
        with pytest.raises(DatabaseError) as refused:
            open_ledger(url, create=create)
        assert isinstance(refused.value, NotFound), refused.value
        assert f"no database {name}" in str(refused.value)


def _interrupted_creation(db_url: str) -> set[str]:
    """What a creation killed inside revision 0001 leaves on MariaDB: an empty version
    table and some of 0001's tables."""
    with alembic(db_url) as config:
        command.upgrade(config, "0001")
    execute(db_url, "DELETE FROM alembic_version")
    for table in ("trades", "trade_fills", "strategies"):
        execute(db_url, f"DROP TABLE {table}")
    return tables(db_url)


def test_an_interrupted_creation_is_refused_to_readers_and_finished_by_writers(
    db_url: str,
) -> None:
    left = _interrupted_creation(db_url)
    with pytest.raises(SchemaError, match="interrupted") as refused:
        open_ledger(db_url, create=False)
    assert "posledger migrate" in str(refused.value)
    assert tables(db_url) == left and stored_revision(db_url) == []
    # a first write finishes the creation (as `posledger migrate` would)
    with open_ledger(db_url) as ledger:
        setup(ledger)
        assert fill(ledger, "e1", "BUY", "1", "100").applied
        assert ledger.verify().ok
    assert stored_revision(db_url) == [(schema.SCHEMA_REVISION,)]
    assert differences(db_url) == []


def test_an_interrupted_creation_is_finished_by_migrate(db_url: str) -> None:
    _interrupted_creation(db_url)
    assert upgrade_database(db_url) == (None, schema.SCHEMA_REVISION)
    assert differences(db_url) == []


def test_a_version_table_beside_foreign_tables_is_still_foreign(db_url: str) -> None:
    execute(db_url, "CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR(20))")
    execute(
        db_url,
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)",
    )
    for opening in (
        lambda: open_ledger(db_url),
        lambda: open_ledger(db_url, create=False),
        lambda: upgrade_database(db_url),
    ):
        with pytest.raises(SchemaError, match="no posledger schema version"):
            opening()
    assert tables(db_url) == {"customers", "alembic_version"}


# -- in memory -------------------------------------------------------------------------------

IN_MEMORY = ["sqlite://", "sqlite:///:memory:", "sqlite:///file::memory:?uri=true"]


@pytest.mark.parametrize("url", [*IN_MEMORY, "memory://books", "memory://"])
def test_an_in_memory_url_is_refused_where_the_data_must_last(url: str) -> None:
    for opening in (
        lambda: open_ledger(url, persistent=True),
        lambda: open_ledger(url, create=False, persistent=True),
        lambda: open_store(url, persistent=True),
    ):
        with pytest.raises(UsageError, match="keeps nothing once the command ends") as refused:
            opening()
        assert url in str(refused.value)
    if url.startswith("sqlite"):
        with pytest.raises(UsageError, match="keeps nothing"):
            open_database(url, persistent=True)
        with pytest.raises(UsageError, match="keeps nothing"):
            upgrade_database(url, persistent=True)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "memory://books"])
def test_an_in_memory_url_still_works_for_python_users(url: str) -> None:
    with open_ledger(url) as ledger:
        setup(ledger)
        assert fill(ledger, "e1", "BUY", "1", "100").applied
        assert len(ledger.positions()) == 1
        assert ledger.verify().ok


def test_a_file_database_is_persistent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with open_ledger(url, persistent=True) as ledger:
        setup(ledger)
    with open_ledger(url, create=False, persistent=True) as ledger:
        assert ledger.verify().ok


# -- read-only SQLite files ------------------------------------------------------------------
#
# The reader runs in a child process; when the tests run as root it runs without the
# capabilities that let root read and write whatever the modes say (setpriv), so that
# file and directory modes bind it as they bind any user.

READER = r"""
import json, sys
from posledger import open_ledger
from posledger.store.database import upgrade_database

url, create, write = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
try:
    if write == "migrate":
        upgrade_database(url)
    with open_ledger(url, create=create) as ledger:
        if write == "write":
            ledger.register_strategy(strategy="written")
        result = {
            "positions": ledger.positions(include_flat=True),
            "trades": ledger.trades(),
            "verify": ledger.verify().ok,
            "read_only": ledger.store.database.read_only,
        }
except Exception as exc:
    result = {"error": [c.__name__ for c in type(exc).__mro__], "message": str(exc)}
print(json.dumps(result, default=str))
"""


def _bound_by_modes() -> list[str]:
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: file modes cannot be made to bind")
    return [
        setpriv,
        "--inh-caps=-all",
        "--bounding-set=-dac_override,-dac_read_search,-fowner",
    ]


def as_reader(path: Path, *, create: bool = False, then: str = "read") -> dict[str, Any]:
    """Open ``path`` (create or not) as the reader; ``then`` "read", "write" (register a
    strategy) or "migrate" (``upgrade_database`` first); what it read, or its error."""
    env = {k: v for k, v in os.environ.items() if k != "POSLEDGER_DB"}
    env.update(HOME=tempfile.gettempdir(), PYTHONDONTWRITEBYTECODE="1")
    done = subprocess.run(
        [
            *_bound_by_modes(),
            sys.executable,
            "-c",
            READER,
            f"sqlite:///{path}",
            str(int(create)),
            then,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tempfile.gettempdir(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.fixture
def shared_dir(tmp_path: Path) -> Iterator[Path]:
    """The directory of the ledger file (its modes are restored afterwards)."""
    directory = tmp_path / "books"
    directory.mkdir()
    try:
        yield directory
    finally:
        for entry in (directory, *directory.iterdir()):
            os.chmod(entry, 0o755 if entry.is_dir() else 0o644)


def _a_ledger(path: Path) -> dict[str, Any]:
    """A closed ledger at ``path`` (WAL mode, as posledger leaves it) and what it holds."""
    with open_ledger(f"sqlite:///{path}") as ledger:
        setup(ledger)
        assert fill(ledger, "e1", "BUY", "2", "100", minute=1).applied
        assert fill(ledger, "e2", "SELL", "1", "101", minute=2).applied
        hedge = {"account": "HDG", "instrument": "PERP", "position_side": "LONG"}
        assert fill(ledger, "p1", "BUY", "0.5", "60000", minute=3, **hedge).applied
        held = {"positions": ledger.positions(include_flat=True), "trades": ledger.trades()}
    assert _side_files(path) == [], "a closed ledger leaves no -wal or -shm"
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert _side_files(path) == []
    return json.loads(json.dumps(held, default=str))  # type: ignore[no-any-return]


def _fingerprint(directory: Path) -> dict[str, tuple[int, int, bytes]]:
    return {
        entry.name: (entry.stat().st_mtime_ns, stat.S_IMODE(entry.stat().st_mode), b"")
        if entry.name.endswith(("-wal", "-shm"))
        else (entry.stat().st_mtime_ns, stat.S_IMODE(entry.stat().st_mode), entry.read_bytes())
        for entry in directory.iterdir()
    }


def _refused(result: dict[str, Any], *words: str) -> str:
    assert "error" in result, result
    assert "DatabaseError" in result["error"], result
    message: str = result["message"]
    for word in words:
        assert word in message, (word, message)
    return message


def test_a_read_only_file_is_read_and_left_as_it_was(shared_dir: Path) -> None:
    path = shared_dir / "ledger.db"
    held = _a_ledger(path)
    os.chmod(path, 0o444)
    before = _fingerprint(shared_dir)

    result = as_reader(path)
    assert "error" not in result, result
    assert result["positions"] == held["positions"] and result["trades"] == held["trades"]
    assert result["verify"] is True
    assert "read-only" in result["read_only"]
    # no -wal or -shm left behind (owned by the reader), the file untouched
    assert _fingerprint(shared_dir) == before

    # a writer is refused before it writes anything, naming the file and the permission
    for create in (True, False):
        refused = as_reader(path, create=create, then="write")
        if create:
            _refused(refused, str(path), "permission denied", "read-only")
        else:  # a reader that writes anyway: the database says it is read-only
            _refused(refused, str(path), "readonly")
    assert _fingerprint(shared_dir) == before


def test_a_file_in_a_read_only_directory_is_read(shared_dir: Path) -> None:
    path = shared_dir / "ledger.db"
    held = _a_ledger(path)
    # even a writable file: SQLite cannot add its -shm file beside it
    os.chmod(shared_dir, 0o555)
    before = _fingerprint(shared_dir)

    result = as_reader(path)
    assert "error" not in result, result
    assert result["positions"] == held["positions"] and result["trades"] == held["trades"]
    assert result["verify"] is True

    message = _refused(as_reader(path, create=True, then="write"), str(path), "permission denied")
    assert f"directory {shared_dir} is not writable" in message, message
    assert _fingerprint(shared_dir) == before


def test_a_read_only_file_with_a_writer_at_work_reads_the_write_ahead_log(
    shared_dir: Path,
) -> None:
    """While a writer (its owner) has the ledger open, recent commits are in the -wal
    file, not yet in the database file: the reader must read them through the log
    (immutable=1 would not see them)."""
    path = shared_dir / "ledger.db"
    _a_ledger(path)
    with open_ledger(f"sqlite:///{path}") as writer:
        assert fill(writer, "e3", "SELL", "1", "103", minute=4).applied
        held = json.loads(
            json.dumps(
                {"positions": writer.positions(include_flat=True), "trades": writer.trades()},
                default=str,
            )
        )
        assert Path(f"{path}-wal").stat().st_size > 0
        for name in ("", "-wal", "-shm"):
            os.chmod(f"{path}{name}", 0o444 if name == "" else 0o644)
        os.chmod(shared_dir, 0o555)

        result = as_reader(path)
        assert "error" not in result, result
        assert result["positions"] == held["positions"] and result["trades"] == held["trades"]
        assert any(t["status"] == "closed" for t in result["trades"])  # e3 closed alpha's
        os.chmod(shared_dir, 0o755)
        os.chmod(path, 0o644)
        # the writer goes on
        assert fill(writer, "e4", "BUY", "1", "104", minute=5).applied


def test_an_unreadable_file_says_so(shared_dir: Path) -> None:
    path = shared_dir / "ledger.db"
    _a_ledger(path)
    os.chmod(path, 0o000)
    for create in (False, True):
        _refused(as_reader(path, create=create), f"cannot read {path}", "permission denied")


def test_a_writer_cannot_create_a_file_in_a_read_only_directory(shared_dir: Path) -> None:
    os.chmod(shared_dir, 0o555)
    path = shared_dir / "new.db"
    _refused(as_reader(path, create=True), f"cannot create {path}", "permission denied")
    refused = as_reader(path, create=False)
    assert "NotFound" in refused["error"], refused
    assert list(shared_dir.iterdir()) == []


def test_migrate_refuses_a_read_only_file(shared_dir: Path) -> None:
    path = shared_dir / "ledger.db"
    _a_ledger(path)
    os.chmod(path, 0o444)
    before = _fingerprint(shared_dir)
    _refused(as_reader(path, then="migrate"), f"cannot write to {path}", "permission denied")
    assert _fingerprint(shared_dir) == before
