"""Helpers shared by the benchmark's modules: measurements, the CLI launcher, formatting."""

from __future__ import annotations

import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# -- small helpers ------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass
class Latency:
    rate: float
    p50_ms: float
    p99_ms: float
    max_ms: float


def latency_of(count: int, total_s: float, samples_ns: list[int]) -> Latency:
    ordered = sorted(samples_ns)
    return Latency(
        count / total_s,
        percentile(ordered, 50) / 1e6,
        percentile(ordered, 99) / 1e6,
        ordered[-1] / 1e6 if ordered else math.nan,
    )


def timed_durable_ingest(ledger: Any, lines: list[str], what: str) -> Latency:
    """``ledger.ingest(lines, batch_size=1)``, each fill its own transaction, then the ledger
    closed. A fill's latency is the time from the previous commit (or the start) to its own
    commit, as the ``on_commit`` callback sees it. Every line must be applied."""
    samples: list[int] = []
    clock = time.perf_counter_ns
    last = 0

    def on_commit(_batch: object) -> None:
        nonlocal last
        now = clock()
        samples.append(now - last)
        last = now

    try:
        start = time.perf_counter()
        last = clock()
        report = ledger.ingest(lines, batch_size=1, on_commit=on_commit)
        elapsed = time.perf_counter() - start
    finally:
        ledger.close()
    if report.applied != len(lines):
        raise SystemExit(f"{what}: {report.rejected} rejected: {report.rejections[:3]}")
    return latency_of(len(lines), elapsed, samples)


def console_script() -> list[str]:
    script = Path(sys.executable).parent / "posledger"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from posledger.entrypoints.cli import main; main()"]


@dataclass
class CliRun:
    seconds: float
    max_rss_bytes: int
    db_bytes: int
    summary: dict[str, Any]


# Spawns the CLI and reports its wall time and peak RSS. It runs as a separate small process
# because a forked child's ru_maxrss starts from its parent's RSS at fork time (Linux keeps
# the pre-exec high-water mark): spawned straight from this benchmark, which holds the
# workloads in memory, the CLI would be charged for them.
LAUNCHER = """
import json, os, subprocess, sys, time
a = json.loads(sys.argv[1])
with open(a["out"], "wb") as out, open(a["err"], "wb") as err:
    start = time.perf_counter()
    proc = subprocess.Popen(a["cmd"], stdout=out, stderr=err, env=a["env"], cwd=a["cwd"])
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
proc.returncode = code = os.waitstatus_to_exitcode(status)
print(json.dumps({"seconds": seconds, "code": code, "maxrss": usage.ru_maxrss}))
"""


def run_child(args: list[str], workdir: Path) -> tuple[float, int, str]:
    """Run the posledger CLI with ``args``: (seconds from spawn to exit, peak RSS in bytes
    from os.wait4's rusage of that very child, stdout). Exits on a non-zero status."""
    cmd = [*console_script(), *args]
    env = {k: v for k, v in os.environ.items() if k != "POSLEDGER_DB"}
    out_path, err_path = workdir / "cli.out", workdir / "cli.err"
    spec = {"cmd": cmd, "env": env, "cwd": str(workdir), "out": str(out_path)}
    spec["err"] = str(err_path)
    launched = subprocess.run(
        [sys.executable, "-I", "-S", "-c", LAUNCHER, json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    if launched.returncode != 0:
        raise SystemExit(f"launcher failed: {launched.stderr[-4000:]}")
    result = json.loads(launched.stdout)
    output = out_path.read_text()
    if result["code"] != 0:
        errors = err_path.read_text()
        raise SystemExit(f"{shlex.join(cmd)} exited {result['code']}: {output}{errors}"[-4000:])
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return float(result["seconds"]), int(result["maxrss"]) * scale, output


def filesystem(path: Path) -> str:
    """The file system type and device of the mount holding ``path`` (Linux)."""
    real = str(path.resolve())
    best = ("", "unknown", "unknown")
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            device, mount, fstype, *_ = line.split()
            inside = real == mount or real.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) > len(best[0]):
                best = (mount, fstype, device)
    except OSError:
        return "unknown"
    return f"{best[1]} on {best[2]} (mounted at {best[0]})"


def n0(value: float) -> str:
    return f"{value:,.0f}"


def ms(value: float) -> str:
    return f"{value:.3f} ms"


def mib(value: float) -> str:
    return f"{value / 1024 / 1024:,.1f} MiB"


def secs(value: float) -> str:
    return f"{value:.2f} s"


def pct(value: float) -> str:
    return f"{value:.0%}"


def met(ok: bool) -> str:
    return "yes" if ok else "**no**"


@dataclass
class Stat:
    """The values of the repetitions; ``high`` says whether bigger is better."""

    values: list[float]
    high: bool = True

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def best(self) -> float:
        return max(self.values) if self.high else min(self.values)


def stat(values: Iterator[float] | list[float], high: bool = True) -> Stat:
    return Stat(list(values), high)


def row(
    label: str, s: Stat, show: Callable[[float], str], goal: str = "", ok: bool | None = None
) -> list[str]:
    """A table row: label, median, best, every run, goal, whether the median meets it."""
    each = " / ".join(show(v) for v in s.values)
    return [label, show(s.median), show(s.best), each, goal, "" if ok is None else met(ok)]


def table(rows: list[list[str]], header: list[str]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(cells) + " |" for cells in rows]
    return out


# -- sizes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    domain: int
    durable: int
    bare: int
    batched: int
    repeat: int
    server_durable: int
    """Fills of durable per-fill ingestion on each server (and bare transactions)."""
    writer_single: int
    """Fills per concurrent writer with ``--batch-size 1``."""
    writer_batched: int
    """Fills per concurrent writer with ``--batch-size 100``."""
    writers: tuple[int, ...]
    """How many concurrent writers, in turn."""
    counted_batches: int
    """Batches of the session whose requests the untimed pass counts on each server."""
    server_startup: bool
    """Whether to time the CLI's start-up (schema creation included) on each server."""


FULL = Sizes(
    domain=200_000,
    durable=5_000,
    bare=5_000,
    batched=50_000,
    repeat=3,
    server_durable=3_000,
    writer_single=300,
    writer_batched=2_000,
    writers=(1, 2, 8),
    counted_batches=5,
    server_startup=True,
)
QUICK = Sizes(
    domain=5_000,
    durable=200,
    bare=200,
    batched=1_000,
    repeat=1,
    server_durable=100,
    writer_single=10,
    writer_batched=100,
    writers=(2,),
    counted_batches=1,
    server_startup=False,
)
