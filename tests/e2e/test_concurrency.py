"""Two ``posledger ingest`` processes on one database at the same time."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from .generate import generate
from .scenario import SCRIPT, clean_env, journal, run, run_json, sql, url


def test_two_processes_ingesting_the_same_file_apply_each_line_once(tmp_path: Path) -> None:
    seed = 7
    session = generate(tmp_path / "session.jsonl", 1_000, seed)
    shared, single = tmp_path / "shared.db", tmp_path / "single.db"
    argv = [str(SCRIPT), "--db", url(shared), "ingest", "--json", "--quiet", str(session.path)]
    # Create the schema first so that both processes start on a ready database.
    assert run("migrate", db=shared).returncode == 0
    procs = [
        subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(), text=True
        )
        for _ in range(2)
    ]
    summaries = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, out + err
        summaries.append(json.loads(out))

    alone = run("ingest", "--json", "--batch-size", "500", str(session.path), db=single)
    assert alone.returncode == 0, alone.stderr
    expected = json.loads(alone.stdout)

    print("applied by each process:", [s["applied"] for s in summaries])
    # Every line was applied by exactly one of the two; the other saw a duplicate.
    assert sum(s["applied"] for s in summaries) == expected["applied"]
    assert all(s["rejected"] == 0 for s in summaries)
    assert all(s["lines"] == session.lines for s in summaries)
    # Each process goes through the file in order, so the journal is the same as one run's.
    assert journal(shared) == journal(single)
    assert sql(shared, "SELECT count(*) FROM fills") == [(session.exec_ids,)]
    assert run_json("positions", "--all", db=shared) == run_json("positions", "--all", db=single)
    assert run_json("trades", db=shared) == run_json("trades", db=single)
    assert run("verify", db=shared).returncode == 0
