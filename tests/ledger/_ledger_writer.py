"""A child process that appends to a ledger, for the concurrency and crash tests.

    python _ledger_writer.py race URL WRITER COUNT READY_FILE GO_FILE
        Wait for GO_FILE, append COUNT entries {"writer", "n"} in transactions of 1..4
        entries, then print a JSON list of [seq, leaf hash hex] of what was committed.

    python _ledger_writer.py crash URL TAG SEED
        Print "ready", then append batches of 1..200 entries {"batch", "i", "n"} (one
        transaction each) until killed.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

from ledger.sqlstore import SqlLedger
from vault.storage.database import make_engine


def race(url: str, writer: int, count: int, ready: Path, go: Path) -> None:
    engine = make_engine(url, pool_size=1)
    with engine.connect() as conn:  # connect (and import everything) before the start
        conn.exec_driver_sql("SELECT 1")
    rng = random.Random(writer)
    ready.touch()
    deadline = time.monotonic() + 30
    while not go.exists():
        if time.monotonic() > deadline:
            raise SystemExit("never got the go signal")
        time.sleep(0.001)
    done: list[list[object]] = []
    n = 0
    while n < count:
        k = min(count - n, rng.choice([1, 1, 2, 3, 4]))
        items = [("test.appended", {"writer": writer, "n": n + j}) for j in range(k)]
        with engine.begin() as conn:
            appended = SqlLedger(conn).append_many(items)
        done.extend([a.seq, a.leaf_hash.hex()] for a in appended)
        n += k
        # Pause between transactions as a real writer would: otherwise, on a busy machine,
        # one writer can finish before the others are scheduled and nothing contends.
        time.sleep(0.001)
    engine.dispose()
    print(json.dumps(done))


def crash(url: str, tag: str, seed: int) -> None:
    engine = make_engine(url, pool_size=1)
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    rng = random.Random(seed)
    print("ready", flush=True)
    batch = 0
    while True:
        size = rng.randint(1, 200)
        bid = f"{tag}-{batch}"
        items = [("test.batched", {"batch": bid, "i": i, "n": size}) for i in range(size)]
        with engine.begin() as conn:
            SqlLedger(conn).append_many(items)
        batch += 1


def main(argv: list[str]) -> None:
    mode, url, *rest = argv
    if mode == "race":
        race(url, int(rest[0]), int(rest[1]), Path(rest[2]), Path(rest[3]))
    elif mode == "crash":
        crash(url, rest[0], int(rest[1]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
