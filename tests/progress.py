"""Waiting bounded by progress, not by the clock.

On a shared, busy machine a slow run is not a failure; a run that makes no progress at
all for a long time is (a deadlock, a child blocked for ever, a lost wake-up). So a test
waits for a *condition* (a number of acknowledgements, a child's exit) and fails only when
a measure of progress has not moved for ``STALL_SECONDS``: however slowly the work goes,
it may take as long as it needs, as long as it keeps going.

``POSLEDGER_TEST_STALL_SECONDS`` overrides the stall limit (default 180 s).
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import IO

STALL_SECONDS = float(os.environ.get("POSLEDGER_TEST_STALL_SECONDS") or 180)


class Stalled(AssertionError):
    """No progress at all for the stall limit."""


def wait_until(
    done: Callable[[], bool],
    progress: Callable[[], object],
    what: str,
    stall: float = STALL_SECONDS,
    poll: float = 0.005,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Return once ``done()``; raise :class:`Stalled` if ``progress()`` (any comparable
    value: a count, a tuple of counts) stays the same for ``stall`` seconds first."""
    started = since = clock()
    last = progress()
    while not done():
        sleep(poll)
        now = clock()
        current = progress()
        if current != last:
            last, since = current, now
        elif now - since > stall:
            raise Stalled(
                f"stalled: {what}: no progress for {now - since:.0f} s "
                f"({now - started:.0f} s in all; last progress: {last!r})"
            )


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a running process has used, from ``/proc`` (Linux); None
    once it has been reaped, or where there is no ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # after the command name: state(0) ... utime(11) stime(12), in clock ticks
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Child:
    """A command run to its end, its output kept in files (a pipe nobody reads could
    block it); its progress is its output growing and the CPU time it uses."""

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.argv = list(argv)
        self._out: IO[str] = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in result)
        self._err: IO[str] = tempfile.TemporaryFile("w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.argv,
            stdout=self._out,
            stderr=self._err,
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
        )

    def done(self) -> bool:
        return self.proc.poll() is not None

    def progress(self) -> tuple[int, int, float | None]:
        return (
            os.fstat(self._out.fileno()).st_size,
            os.fstat(self._err.fileno()).st_size,
            None if self.done() else cpu_seconds(self.proc.pid),
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def result(self) -> subprocess.CompletedProcess[str]:
        """Its exit status and output (it must have ended)."""
        assert self.proc.returncode is not None
        self._out.seek(0)
        self._err.seek(0)
        out, err = self._out.read(), self._err.read()
        self._out.close()
        self._err.close()
        return subprocess.CompletedProcess(self.argv, self.proc.returncode, out, err)


def finish(children: Sequence[Child], what: str, stall: float = STALL_SECONDS) -> None:
    """Wait until every child has ended, as long as one of them makes progress; a stall
    kills them all."""
    try:
        wait_until(
            lambda: all(child.done() for child in children),
            lambda: tuple(child.progress() for child in children),
            what,
            stall,
            poll=0.02,
        )
    except Stalled:
        for child in children:
            child.kill()
        raise


def run_to_end(
    argv: Sequence[str], env: dict[str, str] | None = None, stall: float = STALL_SECONDS
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run`` with a stall limit instead of a timeout."""
    child = Child(argv, env)
    finish([child], " ".join(argv), stall)
    return child.result()
