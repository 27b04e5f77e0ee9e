"""The log checks in a process of their own, beside the story checks.

The log checks (`ledger.audit.LogAuditor`: seq, prev links, canonical bytes, leaf
hashes, the root) and the story and personal-data checks each take about half of a
full verification, and share nothing but the entries' bytes. On a long ledger
`verify_entries` therefore streams the bytes, NDJSON, into ``python -m
clients.auditor._logworker`` on a second core, and checks the stories itself.

The passkey signatures, too, are checked there (the other checks of an assertion stay
with the stories): a line that starts with ``#`` is not an entry (entries start with
``{``) but a signature to check: ``#<index> <COSE key, base64url> <signed bytes,
base64> <signature, base64>``.

The worker needs nothing but the ledger's code, the checkpoint (already opened by the
caller: only its origin, size and root are passed) and the auditor's assertion check.
It answers with one JSON line: the first failure (index and reason) or the root, the
tree's right border at the checkpoint's size when asked (for `--state`), and every
signature that did not verify.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from clients.auditor.assertion import AssertionInvalid
from clients.auditor.fetch import AuditorError
from clients.auditor.story import check_signature_now
from ledger.audit import LogAuditor
from ledger.checkpoint import Checkpoint
from ledger.errors import LogInvalid
from ledger.tree import CompactRange

__all__ = ["LogChecks", "LogResult", "LogWorker", "read_lines"]


@dataclass(frozen=True, slots=True)
class LogResult:
    failure: tuple[int, str] | None  # the first entry that failed, and why
    root: bytes | None  # of every entry, when none failed
    border: tuple[bytes, ...] | None  # at the checkpoint's size, when asked
    #: Signatures that did not verify: (index, reason, message).
    signatures: tuple[tuple[int, str, str], ...] = ()
    #: The worker process's peak resident memory (KiB), when there was one.
    peak_rss_kib: int | None = None


def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


def read_lines(read: Callable[[int], bytes], chunk: int = 1 << 20) -> Iterator[bytes]:
    """NDJSON lines as `ledger.audit.read_ndjson` reads them (one entry a line, blank
    lines skipped), but split a block at a time: a third of the cost per line."""
    rest = b""
    while True:
        block = read(chunk)
        if not block:
            break
        lines = (rest + block).split(b"\n")
        rest = lines.pop()
        yield from filter(None, lines)
    if rest:
        yield rest


class LogChecks:
    """The log checks in this process: `feed` entries in order, then `finish`."""

    def __init__(self, checkpoint: Checkpoint | None, *, keep_border: bool) -> None:
        self._auditor = LogAuditor(checkpoint)
        self._upto = checkpoint.size if checkpoint is not None and keep_border else -1
        self._tree = CompactRange()
        self._failure: tuple[int, str] | None = None

    def feed(self, data: bytes) -> None:
        if self._failure is not None:
            return  # nothing after a broken link can be checked against the checkpoint
        try:
            leaf = self._auditor.feed(data)
        except LogInvalid as exc:
            self._failure = (exc.index, exc.reason)
            return
        if self._tree.size < self._upto:
            self._tree.push(leaf)

    def finish(self) -> LogResult:
        if self._failure is not None:
            return LogResult(self._failure, None, None)
        try:
            root = self._auditor.finish().head.root
        except LogInvalid as exc:
            return LogResult((exc.index, exc.reason), None, None)
        border = tuple(self._tree.hashes) if self._tree.size == self._upto else None
        return LogResult(None, root, border)


class LogWorker:
    """`LogChecks` in a worker process, with the same `feed` and `finish`."""

    def __init__(self, checkpoint: Checkpoint | None, *, keep_border: bool) -> None:
        args = [sys.executable, "-m", "clients.auditor._logworker"]
        if checkpoint is not None:
            args += ["--origin", checkpoint.origin, "--size", str(checkpoint.size),
                     "--root", _b64(checkpoint.root)]
        if keep_border:
            args.append("--keep-border")
        # Our own interpreter running our own module: no outside input in the command.
        # Small writes into a large pipe: neither side waits for the other to catch up.
        self._proc = subprocess.Popen(args, stdin=subprocess.PIPE,  # noqa: S603
                                      stdout=subprocess.PIPE, bufsize=1 << 16)
        assert self._proc.stdin is not None
        self._in = self._proc.stdin
        with contextlib.suppress(ImportError, OSError, AttributeError):  # Linux only: a hint
            import fcntl
            fcntl.fcntl(self._in.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)

    def feed(self, data: bytes) -> None:
        if data[:1] != b"{":  # not an entry, whatever it is: keep it one for the worker
            data = b"?" + data
        self._in.write(data + b"\n")

    def check_signature(self, index: int, public_key: str, signed: bytes, signature: bytes
                        ) -> AssertionInvalid | None:
        """A `SignatureCheck` that hands the signature to the worker (see `finish`)."""
        self._in.write(b"#%d %s %s %s\n" % (index, public_key.encode(), _b64(signed).encode(),
                                            _b64(signature).encode()))
        return None

    def finish(self) -> LogResult:
        out, _ = self._proc.communicate()  # closes the worker's stdin: the end of entries
        if self._proc.returncode != 0:
            raise AuditorError(f"the log worker failed (exit {self._proc.returncode})")
        doc = json.loads(out)
        failure = tuple(doc["failure"]) if doc["failure"] is not None else None
        return LogResult(
            (int(failure[0]), str(failure[1])) if failure else None,
            base64.b64decode(doc["root"]) if doc["root"] is not None else None,
            tuple(base64.b64decode(h) for h in doc["border"])
            if doc["border"] is not None else None,
            tuple((int(i), str(r), str(m)) for i, r, m in doc["signatures"]),
            doc.get("peak_rss_kib"))

    def kill(self) -> None:
        self._proc.kill()
        self._proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m clients.auditor._logworker")
    parser.add_argument("--origin")
    parser.add_argument("--size", type=int)
    parser.add_argument("--root")
    parser.add_argument("--keep-border", action="store_true")
    args = parser.parse_args()
    cp = (Checkpoint(args.origin, args.size, base64.b64decode(args.root))
          if args.origin is not None else None)
    checks = LogChecks(cp, keep_border=args.keep_border)
    bad: list[tuple[int, str, str]] = []
    # Whatever has arrived, a megabyte at most at a time: never wait for a full block.
    stdin = sys.stdin.buffer
    read = stdin.read1 if isinstance(stdin, io.BufferedReader) else stdin.read
    for data in read_lines(read):  # all of it: the writer never blocks
        if data[0] == 0x23:  # "#": a signature
            index, key, signed, signature = data[1:].split(b" ")
            failed = check_signature_now(int(index), key.decode(),
                                         base64.b64decode(signed), base64.b64decode(signature))
            if failed is not None:
                bad.append((int(index), failed.reason, str(failed)))
        else:
            checks.feed(data)
    result = checks.finish()
    print(json.dumps({
        "failure": list(result.failure) if result.failure else None,
        "root": _b64(result.root) if result.root is not None else None,
        "border": [_b64(h) for h in result.border] if result.border is not None else None,
        "signatures": bad, "peak_rss_kib": _peak_rss_kib(),
    }))


def _peak_rss_kib() -> int | None:
    """VmHWM: this process's own high-water mark (ru_maxrss would include the parent's
    at the time of the fork)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


if __name__ == "__main__":
    main()
