"""Concurrent writers for bench/ingest.py (section 9): a helper process, not run by hand.

It imports posledger's CLI once, then reads requests from stdin, one JSON line each:
``{"jobs": [{"argv": [...], "out": PATH, "err": PATH, "result": PATH}, ...]}``. For each
request it forks one fresh process per job; each child sends its stdout and stderr to
``out`` and ``err``, waits on a pipe shared by all, and once the helper closes the pipe
runs the CLI's ``main()`` with ``argv``: what the ``posledger`` console script runs, minus
interpreter start-up and imports. The child writes its exit status and monotonic start
and end times (ns) to ``result``. When every child has exited, the helper answers with one
JSON line ``{"go": NS}``, the monotonic time at which it released them.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import time
import traceback
from typing import Any

from posledger.entrypoints.cli import main as cli_main

# Import the drivers and SQLAlchemy's dialects for them once, here: what a writer does
# after the start signal is then only what the CLI does with an interpreter that is up.
for name in (
    "psycopg",
    "pymysql",
    "sqlalchemy.dialects.postgresql.psycopg",
    "sqlalchemy.dialects.mysql.pymysql",
):
    with contextlib.suppress(ImportError):
        importlib.import_module(name)

SETTLE_S = 0.1
"""Time the children get to reach the pipe before they are released."""


def writer(job: dict[str, Any], go: int) -> int:
    for fd, path in ((1, job["out"]), (2, job["err"])):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    os.read(go, 1)  # end of file once the helper closes its end: every writer starts now
    start = time.monotonic_ns()
    sys.argv = ["posledger", *job["argv"]]
    code = 0
    try:
        cli_main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 70
    end = time.monotonic_ns()
    sys.stdout.flush()
    sys.stderr.flush()
    with open(job["result"], "w", encoding="utf-8") as out:
        json.dump({"code": code, "start": start, "end": end}, out)
    return code


def serve() -> None:
    while line := sys.stdin.readline():
        jobs = json.loads(line)["jobs"]
        read_end, write_end = os.pipe()
        children = []
        for job in jobs:
            pid = os.fork()
            if pid == 0:  # the writer
                code = 70
                try:
                    os.close(write_end)
                    code = writer(job, read_end)
                finally:
                    os._exit(code)
            children.append(pid)
        os.close(read_end)
        time.sleep(SETTLE_S)
        go = time.monotonic_ns()
        os.close(write_end)
        for pid in children:
            os.waitpid(pid, 0)
        print(json.dumps({"go": go}), flush=True)


if __name__ == "__main__":
    serve()
