"""How long `posledger trades --json` takes, and how much memory, on a large ledger.

    python bench/listing.py --trades 250000 --workdir /tmp/listing

Writes a session of round trips (one buy, one sell: two fills per trade) over eight
strategies and two instruments, ingests it once (kept in the work directory for the next
run), then runs each listing command once and prints its wall time and peak RSS (the
child's ru_maxrss). Not part of `make bench`: a check of the listings' bounded memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

STRATEGIES = [f"s{i}" for i in range(8)]
INSTRUMENTS = ["MESH6.CME", "MNQH6.CME"]
START = datetime(2026, 3, 2, 14, tzinfo=UTC)


def write_session(path: Path, trades: int) -> None:
    with path.open("w", encoding="utf-8") as out:

        def line(record: dict[str, object]) -> None:
            out.write(json.dumps(record, separators=(",", ":")) + "\n")

        line(
            {
                "type": "account",
                "account": "NET-1",
                "venue": "CME",
                "mode": "SIM",
                "position_mode": "netting",
            }
        )
        for instrument in INSTRUMENTS:
            line(
                {
                    "type": "instrument",
                    "instrument": instrument,
                    "kind": "future",
                    "multiplier": "5",
                    "quote_currency": "USD",
                    "settlement_currency": "USD",
                    "tick_size": "0.25",
                }
            )
        for strategy in STRATEGIES:
            line({"type": "strategy", "strategy": strategy})
        n = 0
        for i in range(trades):
            strategy = STRATEGIES[i % len(STRATEGIES)]
            instrument = INSTRUMENTS[i // len(STRATEGIES) % len(INSTRUMENTS)]
            price = 6850 + (i % 40) * 0.25
            for side, fill_price in (("BUY", price), ("SELL", price + 1.25)):
                n += 1
                ts = (START + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%SZ")
                line(
                    {
                        "type": "fill",
                        "exec_id": f"x-{n}",
                        "account": "NET-1",
                        "instrument": instrument,
                        "strategy": strategy,
                        "side": side,
                        "quantity": "1",
                        "price": f"{fill_price:.2f}",
                        "ts": ts,
                        "commission": "0.62",
                    }
                )


def measure(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one command (stdout discarded)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak <= before:
        print("  (peak RSS not above an earlier child's: run one command per process)")
    return elapsed, peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=250_000)
    parser.add_argument("--workdir", type=Path, default=Path("listing-bench"))
    parser.add_argument(
        "--command",
        default="trades --json",
        help="The listing to run (default: trades --json).",
    )
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    db = args.workdir / f"trades-{args.trades}.db"
    script = str(Path(sys.executable).with_name("posledger"))
    if not db.exists():
        session = args.workdir / f"trades-{args.trades}.jsonl"
        write_session(session, args.trades)
        print(f"ingesting {session} ...")
        subprocess.run(
            [
                script,
                "--db",
                f"sqlite:///{db}",
                "ingest",
                str(session),
                "--batch-size",
                "5000",
                "--quiet",
            ],
            stdout=subprocess.DEVNULL,
            check=True,
        )
    os.environ.pop("COLUMNS", None)
    elapsed, peak = measure([script, "--db", f"sqlite:///{db}", *args.command.split()])
    what = f"posledger {args.command}: {args.trades:,} trades"
    print(f"{what}: {elapsed:.1f} s, peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
