"""A load test of ``posledger serve`` on loopback, bounded in count (every client sends a
fixed number of one-fill requests) and in time (the stall limit of ``tests/progress.py``,
never a timed assertion): every request is answered, every fill is applied once, and the
throughput and p99 latency are reported (printed, and written to
``test-artifacts/serve-load.txt``). The benchmark (bench/bench.py, section 11) measures
them for real; this keeps the path working under concurrency."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from tests.progress import wait_until

from .test_serve import Server, _fill
from .test_serve import started as serving

CLIENTS = 8
REQUESTS = 40
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_concurrent_clients_are_all_answered_once(tmp_path: Path, servers: list[Server]) -> None:
    server, _, key = serving(tmp_path, servers)

    latencies: list[float] = []
    answered: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.base, headers=headers, timeout=120) as session:
            for k in range(REQUESTS):
                strategy = "alpha" if n % 2 else "beta"
                started = time.perf_counter()
                answer = session.post("/v1/ingest", content=_fill(f"l{n}-{k}", strategy, k))
                elapsed = time.perf_counter() - started
                with lock:
                    if answer.status_code != 200 or answer.json()["applied"] != 1:
                        errors.append(answer.text[:200])
                        return
                    latencies.append(elapsed)
                    answered.append(f"l{n}-{k}")

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    wait_until(
        lambda: not any(t.is_alive() for t in threads),
        lambda: len(answered) + len(errors),
        "every client's requests answered",
    )
    wall = time.perf_counter() - started
    assert errors == []
    assert sorted(answered) == sorted(f"l{n}-{k}" for n in range(CLIENTS) for k in range(REQUESTS))
    positions = httpx.get(
        f"{server.base}/v1/positions", headers={"Authorization": f"Bearer {key}"}, timeout=60
    ).json()
    per_strategy = {p["strategy"]: p["quantity"] for p in positions}
    half = str(CLIENTS // 2 * REQUESTS)
    assert per_strategy == {"alpha": half, "beta": half}
    server.stop()

    ordered = sorted(latencies)
    p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)]
    line = (
        f"posledger serve, SQLite, {CLIENTS} clients x {REQUESTS} one-fill requests: "
        f"{len(answered) / wall:.0f} fills/s, p50 {ordered[len(ordered) // 2] * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms (a shared test machine: see docs/benchmarks.md)"
    )
    print(line)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "serve-load.txt").write_text(line + "\n")
