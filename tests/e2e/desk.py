"""The CME desk the ownership e2e tests trade on, and how they run the CLI.

Records are built as the JSONL a trader would send (times of the 2026-03-02 session given
as ``HH:MM:SS``); steps that change the books run as their own ``posledger`` process, and
read-only looks go through click's CliRunner in this process.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from .scenario import invoke, invoke_json, run, sql

ACCOUNT = "AMP-4417"
MES = "MESH6.CME"
ORB = "mes-orb-01"
SIMPLE = "mes-orb-simple-01"
EXTERNAL = "EXTERNAL"
DAY = "2026-03-02T"


def order(
    coid: str,
    strategy: str,
    side: str,
    quantity: str,
    intent: str,
    at: str,
    *,
    account: str = ACCOUNT,
    instrument: str = MES,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "type": "order",
        "client_order_id": coid,
        "account": account,
        "strategy": strategy,
        "instrument": instrument,
        "side": side,
        "quantity": quantity,
        "intent": intent,
        "ts": at if "T" in at else DAY + at + "Z",
        **extra,
    }


def fill(
    exec_id: str,
    side: str,
    quantity: str,
    price: str,
    at: str,
    commission: str,
    *,
    coid: str | None = None,
    account: str = ACCOUNT,
    instrument: str = MES,
    currency: str = "USD",
    **extra: Any,
) -> dict[str, Any]:
    record = {
        "type": "fill",
        "exec_id": exec_id,
        "account": account,
        "instrument": instrument,
        "side": side,
        "quantity": quantity,
        "price": price,
        "ts": at if "T" in at else DAY + at + "Z",
        "commission": commission,
        "commission_currency": currency,
        **extra,
    }
    if coid is not None:
        record["client_order_id"] = coid
    return record


def posledger(
    db: Path, *args: str, expect: int = 0, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """One ``posledger`` process on ``db``; its exit status must be ``expect``."""
    result = run(*args, db=db, input=input)
    assert result.returncode == expect, (args, result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def posledger_json(db: Path, *args: str, expect: int = 0, input: str | None = None) -> Any:
    return json.loads(posledger(db, *args, "--json", expect=expect, input=input).stdout)


def look(db: Path, *args: str) -> Any:
    """A read-only listing, in this process."""
    return invoke_json(*args, db=db)


def journal_count(db: Path) -> int:
    return sql(db, "SELECT count(*) FROM journal")[0][0]


def check_order(
    db: Path, record: dict[str, Any], expect: int, *, process: bool = False
) -> dict[str, Any]:
    """``posledger check-order - --json`` with the order on stdin (0 allowed, 1 refused): in
    its own process when that is the point of the step, else in this one (it registers
    nothing)."""
    if process:
        return posledger_json(db, "check-order", "-", expect=expect, input=json.dumps(record))
    result = invoke("check-order", "-", "--json", db=db, input=json.dumps(record))
    assert result.exit_code == expect, result.output
    return json.loads(result.stdout)


def copy_db(source: Path, target: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{source}{suffix}").exists():
            shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")
    return target


def pick(row: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: row[name] for name in names}
