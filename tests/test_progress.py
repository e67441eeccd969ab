"""The stall limit of ``tests/progress.py``: slow work that keeps going is waited for as
long as it takes; work that stops is failed."""

from __future__ import annotations

import os
import sys
import time

import pytest

from tests.progress import Child, Stalled, cpu_seconds, finish, run_to_end, wait_until


class FakeClock:
    """Time that passes only when the waiter sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_progress_resets_the_stall_clock_however_long_the_wait() -> None:
    clock = FakeClock()
    polls = 0

    def progress() -> int:
        nonlocal polls
        polls += 1
        return polls // 50  # moves every 50 polls of 0.1 s: every 5 s

    wait_until(
        lambda: clock.now >= 1000,
        progress,
        "slow",
        stall=6,
        poll=0.1,
        clock=clock,
        sleep=clock.sleep,
    )
    assert clock.now >= 1000  # 1000 s of slow progress, with a stall limit of 6 s


def test_no_progress_for_the_stall_limit_fails() -> None:
    clock = FakeClock()
    with pytest.raises(
        Stalled, match=r"stuck: no progress for 7 s \(27 s in all; last progress: 4\)"
    ):
        wait_until(
            lambda: False,
            lambda: min(int(clock.now) // 5, 4),  # moves until 20 s, then never again
            "stuck",
            stall=6.5,
            poll=0.5,
            clock=clock,
            sleep=clock.sleep,
        )
    assert 26.5 <= clock.now <= 27.5


def test_a_child_that_keeps_printing_may_take_longer_than_the_stall_limit() -> None:
    started = time.monotonic()
    done = run_to_end(
        [
            sys.executable,
            "-c",
            "import time\nfor i in range(12): print(i, flush=True); time.sleep(0.25)",
        ],
        stall=2,
    )
    assert done.returncode == 0
    assert done.stdout.split() == [str(i) for i in range(12)]
    assert time.monotonic() - started > 2  # (it sleeps 3 s)


def test_a_child_that_computes_silently_is_making_progress() -> None:
    started = time.monotonic()
    done = run_to_end(
        [
            sys.executable,
            "-c",
            "import time\nend = time.monotonic() + 3\nwhile time.monotonic() < end: pass",
        ],
        stall=2,
    )
    assert done.returncode == 0
    assert time.monotonic() - started > 2  # (it computes for 3 s)


def test_a_child_that_does_nothing_is_a_stall_and_is_killed() -> None:
    child = Child([sys.executable, "-c", "import time; print('hi', flush=True); time.sleep(600)"])
    with pytest.raises(Stalled, match="a sleeping child: no progress for"):
        finish([child], "a sleeping child", stall=1)
    assert child.done()
    result = child.result()
    assert result.returncode < 0, result  # killed
    assert result.stdout == "hi\n"


def test_cpu_seconds_of_a_process_and_of_no_process() -> None:
    used = cpu_seconds(os.getpid())
    if used is None:
        pytest.skip("no /proc here")
    assert used > 0
    child = Child([sys.executable, "-c", "pass"])
    child.proc.wait()
    assert cpu_seconds(child.proc.pid) is None  # reaped
    assert child.result().returncode == 0
