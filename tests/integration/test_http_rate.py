"""Rate limits (docs/service.md, Running it): a token bucket per key, and with several
worker processes one bucket per key that all of them share (a locked file each)."""

from __future__ import annotations

from pathlib import Path

import pytest

from posledger.entrypoints.http.app import Buckets, SharedBuckets


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_keys_rate_is_shared_by_every_worker(tmp_path: Path) -> None:
    clock = Clock()
    # Two workers' buckets (each opens its own file descriptions, as two processes do).
    first, second = (SharedBuckets(2.0, str(tmp_path), clock) for _ in range(2))
    try:
        # A burst of twice the rate (4), taken through both workers, then a wait.
        assert [b.wait("k1") for b in (first, second, first, second)] == [0, 0, 0, 0]
        assert first.wait("k1") == pytest.approx(0.5)
        assert second.wait("k1") == pytest.approx(0.5)
        assert first.wait("k2") == 0  # another key has its own bucket
        clock.now += 0.5  # one token back, for whichever worker asks first
        assert second.wait("k1") == 0
        assert first.wait("k1") == pytest.approx(0.5)
        clock.now += 10  # refilled, up to the burst only
        assert [b.wait("k1") for b in (first, second) * 2] == [0, 0, 0, 0]
        assert second.wait("k1") > 0
    finally:
        first.close()
        second.close()


def test_buckets_of_one_process_are_its_own() -> None:
    clock = Clock()
    workers = [Buckets(2.0, clock) for _ in range(2)]
    # Unshared, each worker would let the whole burst through: why several workers share.
    assert [b.wait("k1") for b in workers for _ in range(4)] == [0] * 8
    assert all(b.wait("k1") == pytest.approx(0.5) for b in workers)
