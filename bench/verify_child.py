"""Child process for the audit benchmark: verify one NDJSON export, print JSON.

Run as ``python -m bench.verify_child FILE --note NOTE_FILE --vkey KEY`` to open the
signed checkpoint and run `audit_log(read_ndjson(f), checkpoint=...)` over the whole
file, or with ``--floor`` to do only the irreducible work per line (JSON parse and
leaf hash, no checks). Prints one JSON object: entries, seconds, peak RSS in KiB and
the peak RSS right after imports.

Peak RSS is `VmHWM` from /proc/self/status, the high-water mark of this process's own
address space. `getrusage(RUSAGE_SELF).ru_maxrss` is printed too but is not used: on
Linux it survives exec, and `subprocess` starts children with vfork, so a child's
ru_maxrss starts at the parent's peak (a parent holding 300 MB makes a 10 MB child
report 311 MB).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import time
from pathlib import Path

import orjson

from ledger.audit import audit_log, read_ndjson
from ledger.checkpoint import open_checkpoint
from ledger.note import Verifier


def peak_rss_kib() -> int:
    """This process's own peak RSS (VmHWM; ru_maxrss would include a forking parent's)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return _ru_maxrss_kib()  # not Linux: no /proc, and no vfork inheritance to fear


def _ru_maxrss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _audit(path: Path, note: str, vkey: str) -> int:
    cp = open_checkpoint(note, expected_verifier=Verifier.parse(vkey))
    with path.open("rb") as f:
        return audit_log(read_ndjson(f), checkpoint=cp).head.size


def _floor(path: Path) -> int:
    n = 0
    loads, sha256 = orjson.loads, hashlib.sha256
    with path.open("rb") as f:
        for line in f:
            data = line[:-1]
            loads(data)
            sha256(b"\x00" + data).digest()
            n += 1
    return n


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.verify_child")
    parser.add_argument("file", type=Path)
    parser.add_argument("--note", type=Path)
    parser.add_argument("--vkey")
    parser.add_argument("--floor", action="store_true")
    args = parser.parse_args()
    base_rss = peak_rss_kib()
    t0 = time.perf_counter()
    n = _floor(args.file) if args.floor else _audit(args.file, args.note.read_text(), args.vkey)
    dt = time.perf_counter() - t0
    print(json.dumps({"entries": n, "seconds": dt, "peak_rss_kib": peak_rss_kib(),
                      "base_rss_kib": base_rss, "ru_maxrss_kib": _ru_maxrss_kib()}))


if __name__ == "__main__":
    main()
