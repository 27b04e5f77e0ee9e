"""A bounded HTTP/1.1 load generator, run in its own process(es): `python -m bench.loadgen`.

Closed loop: a fixed number of keep-alive connections, each sending its next request
as soon as the previous answer has been read, so the load never exceeds that many
requests in flight (no open-ended queue to inflate latencies). Each connection warms
up until a shared start time, then the timed window runs for `duration` seconds (or
until `max_requests` answers, whichever comes first). A request counts, and its
latency (request written to last body byte read) is recorded, when its answer
arrives inside the window.

Plain asyncio streams (uvloop when installed), with the request bytes built once and
answers read by Content-Length: an HTTP client library costs several times more CPU
per request, and on a 2-core machine the generator's CPU is taken from the server.
Each process reports the CPU it used during the window, so a saturated generator
shows up. `run_load` splits the connections over `processes` child processes and
merges their results.

A spec either repeats ONE request (`path`, `headers`: a GET), or sends requests that
differ (`requests_file`: raw requests prepared ahead, `write_requests`), each sent once:
the connections of a process take the next one from a shared cursor, and each process
its own share of the file, so no request is ever sent twice (a write with a fresh jti
each time, never an idempotent repeat). Nothing is built per request in the window;
when the file runs out, the connections stop and the window ends at the last answer
(`LoadResult.ran_out`). `ok_status` is the answer that counts (201 for a write).

The child reads its `LoadSpec` as JSON on stdin (headers may carry a bearer token:
never on the command line) and writes its `LoadResult` as JSON on stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

__all__ = ["LoadError", "LoadResult", "LoadSpec", "percentile", "raw_request", "read_requests",
           "run_load", "write_requests"]


class LoadError(Exception):
    """A generator process failed, or could not read an answer it understood."""


@dataclass(frozen=True, slots=True)
class LoadSpec:
    host: str
    port: int
    path: str
    connections: int
    warmup: float  # seconds before the window (connections are open and busy)
    duration: float  # seconds of the timed window, at most
    host_header: str = ""  # default host:port
    headers: dict[str, str] = field(default_factory=dict)
    max_requests: int | None = None  # end the window early after this many answers
    start_at: float = 0.0  # epoch seconds when the window opens (0: now + warmup)
    ok_status: int = 200  # the answer that counts as a success (201 for writes)
    requests_file: str = ""  # prepared requests (`write_requests`); "" repeats one GET
    share: int = 0  # this process's share of requests_file: every `shares`-th from `share`
    shares: int = 1


@dataclass(slots=True)
class LoadResult:
    """What the window saw. Latencies in microseconds, answers by status code."""

    ok: int  # `ok_status` answers inside the window
    seconds: float  # the window's length
    latencies_us: list[int]
    statuses: dict[int, int]  # every answer by status, warm-up included
    cpu_seconds: float  # the generator's own CPU during the window, all processes
    processes: int
    connections: int
    refused: str = ""  # the first answer that was not `ok_status` (head and body), if any
    ok_status: int = 200
    ran_out: bool = False  # the prepared requests ran out before the window's end

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    @property
    def failed(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != self.ok_status)

    def latency_ms(self, q: float) -> float:
        return percentile(self.latencies_us, q) / 1000

    @property
    def generator_cpu(self) -> float:
        """Mean CPU use of one generator process during the window (1.0 = one core)."""
        return self.cpu_seconds / self.seconds / self.processes if self.seconds > 0 else 0.0


def percentile(samples: list[int], q: float) -> float:
    """The nearest-rank `q`-th percentile (0 < q <= 100); nan for no samples."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


# -- the child process --------------------------------------------------------------------


def raw_request(method: str, path: str, *, host: str, headers: Mapping[str, str],
                body: bytes = b"") -> bytes:
    """One HTTP/1.1 request as sent on the wire (a body gets its Content-Length)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}",
             *(f"{k}: {v}" for k, v in headers.items())]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join([*lines, "", ""]).encode("ascii") + body


def _request_bytes(spec: LoadSpec) -> bytes:
    return raw_request("GET", spec.path, host=spec.host_header or f"{spec.host}:{spec.port}",
                       headers=spec.headers)


_LENGTH = struct.Struct(">I")


def write_requests(path: Path, requests: Iterable[bytes]) -> int:
    """Keep prepared raw requests (`raw_request`) in `path` for `LoadSpec.requests_file`,
    each after its length; how many were written."""
    n = 0
    with path.open("wb") as f:
        for request in requests:
            f.write(_LENGTH.pack(len(request)))
            f.write(request)
            n += 1
    return n


def read_requests(path: Path, *, share: int = 0, shares: int = 1) -> list[bytes]:
    """The requests `write_requests` kept: every `shares`-th one, from the `share`-th."""
    data = path.read_bytes()
    out: list[bytes] = []
    at = i = 0
    while at < len(data):
        (n,) = _LENGTH.unpack_from(data, at)
        if i % shares == share:
            out.append(data[at + _LENGTH.size:at + _LENGTH.size + n])
        at += _LENGTH.size + n
        i += 1
    return out


def _content_length(head: bytes) -> int:
    lowered = head.lower()
    at = lowered.find(b"\r\ncontent-length:")
    if at < 0:
        raise LoadError("an answer without Content-Length (chunked answers are not read)")
    end = lowered.index(b"\r\n", at + 2)
    return int(lowered[at + len(b"\r\ncontent-length:"):end])


@dataclass(slots=True)
class _Window:
    start: float  # perf_counter times
    end: float
    max_requests: int | None
    ok: int = 0
    latencies: list[int] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    ok_status: int = 200
    closed_at: float | None = None  # when max_requests ended it early
    refused: str = ""  # the first answer that was not `ok_status`, to say why
    last_answer: float = 0.0  # when the last answer arrived (a file of requests ran out)

    def record(self, status: int, t0: float, t1: float, answer: bytes) -> bool:
        """Count one answer; False once the window is over."""
        self.statuses[status] += 1
        self.last_answer = max(self.last_answer, t1)
        if status != self.ok_status and not self.refused:
            self.refused = answer[:600].decode("latin-1")
        if t1 < self.start:
            return True
        if t1 >= self.end or self.closed_at is not None:
            return False
        if status == self.ok_status:
            self.ok += 1
            self.latencies.append(round((t1 - t0) * 1e6))
            if self.max_requests is not None and self.ok >= self.max_requests:
                self.closed_at = t1
                return False
        return True


class _Requests:
    """What the connections of one process send: one request again and again, or each of
    a list once, taken in turn from one cursor (asyncio: no lock needed)."""

    def __init__(self, *, repeat: bytes | None = None, each: list[bytes] | None = None) -> None:
        self._repeat, self._each, self._next = repeat, each or [], 0

    def take(self) -> bytes | None:
        """The next request to send; None when a list has run out."""
        if self._repeat is not None:
            return self._repeat
        if self._next >= len(self._each):
            return None
        self._next += 1
        return self._each[self._next - 1]

    @property
    def ran_out(self) -> bool:
        return self._repeat is None and self._next >= len(self._each)


async def _connection(spec: LoadSpec, requests: _Requests, window: _Window) -> None:
    reader, writer = await asyncio.open_connection(spec.host, spec.port)
    try:
        going = True
        while going:
            request = requests.take()
            if request is None:
                return
            t0 = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            body = await reader.readexactly(_content_length(head))
            t1 = time.perf_counter()
            going = window.record(int(head[9:12]), t0, t1, head + body)
            if b"\r\nconnection: close" in head.lower():
                raise LoadError("the server closed a keep-alive connection")
    finally:
        writer.close()


async def _generate(spec: LoadSpec) -> dict[str, Any]:
    now_epoch, now = time.time(), time.perf_counter()
    start_at = spec.start_at or now_epoch + spec.warmup
    start = now + (start_at - now_epoch)
    window = _Window(start, start + spec.duration, spec.max_requests, ok_status=spec.ok_status)
    requests = (_Requests(each=read_requests(Path(spec.requests_file), share=spec.share,
                                             shares=spec.shares))
                if spec.requests_file else _Requests(repeat=_request_bytes(spec)))
    tasks = [asyncio.create_task(_connection(spec, requests, window))
             for _ in range(spec.connections)]
    await asyncio.sleep(max(0.0, start - time.perf_counter()))
    cpu0 = time.process_time()
    await asyncio.gather(*tasks)
    cpu = time.process_time() - cpu0
    end = window.closed_at if window.closed_at is not None else window.end
    ran_out = requests.ran_out and window.closed_at is None and window.last_answer < window.end
    if ran_out:  # the window ended when the last prepared request was answered
        end = max(window.start, window.last_answer)
    return {"ok": window.ok, "seconds": end - window.start, "latencies_us": window.latencies,
            "statuses": dict(window.statuses), "cpu_seconds": cpu, "processes": 1,
            "connections": spec.connections, "refused": window.refused,
            "ok_status": spec.ok_status, "ran_out": ran_out}


def _child() -> None:
    spec = LoadSpec(**json.loads(sys.stdin.read()))
    try:
        import uvloop
    except ImportError:
        out = asyncio.run(_generate(spec))
    else:
        out = uvloop.run(_generate(spec))
    json.dump(out, sys.stdout)


# -- the parent ---------------------------------------------------------------------------


def _end(proc: subprocess.Popen[bytes]) -> None:
    """Kill a generator that is still running (only when something else went wrong)."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _answer(proc: subprocess.Popen[bytes], out: IO[bytes], err: IO[bytes],
            limit: float) -> dict[str, Any]:
    try:
        proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        raise LoadError(f"a generator process ran past {limit:.0f} s") from None
    out.seek(0)
    err.seek(0)
    if proc.returncode != 0:
        text = err.read().decode(errors="replace").strip()[-1500:]
        raise LoadError(f"a generator process failed: {text}")
    answer: dict[str, Any] = json.loads(out.read())
    return answer


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def run_load(spec: LoadSpec, *, processes: int = 1, spawn_allowance: float = 0.5) -> LoadResult:
    """Run `spec` from `processes` generator processes (connections split between them)
    that open their windows at the same moment; their results merged."""
    if processes < 1 or spec.connections < processes:
        raise ValueError("need at least one process and one connection per process")
    start_at = time.time() + spawn_allowance + spec.warmup
    each_max = (None if spec.max_requests is None
                else max(1, math.ceil(spec.max_requests / processes)))
    limit = spawn_allowance + spec.warmup + spec.duration + 30
    with contextlib.ExitStack() as stack:
        children: list[tuple[subprocess.Popen[bytes], IO[bytes], IO[bytes]]] = []
        for share, n in enumerate(_split(spec.connections, processes)):
            child_spec = {**asdict(spec), "connections": n, "start_at": start_at,
                          "max_requests": each_max, "share": share, "shares": processes}
            # Files, not pipes: a child's answer (every latency) is more than a pipe holds.
            out = stack.enter_context(tempfile.TemporaryFile())
            err = stack.enter_context(tempfile.TemporaryFile())
            proc = stack.enter_context(subprocess.Popen(
                [sys.executable, "-m", "bench.loadgen"], stdin=subprocess.PIPE, stdout=out,
                stderr=err))
            stack.callback(_end, proc)
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(child_spec).encode())
            proc.stdin.close()
            children.append((proc, out, err))
        outs = [_answer(proc, out, err, limit) for proc, out, err in children]
    statuses: Counter[int] = Counter()
    for o in outs:
        statuses.update({int(k): v for k, v in o["statuses"].items()})
    return LoadResult(
        ok=sum(o["ok"] for o in outs),
        seconds=max(o["seconds"] for o in outs),
        latencies_us=[x for o in outs for x in o["latencies_us"]],
        statuses=dict(statuses),
        cpu_seconds=sum(o["cpu_seconds"] for o in outs),
        processes=processes,
        connections=spec.connections,
        refused=next((o["refused"] for o in outs if o["refused"]), ""),
        ok_status=spec.ok_status,
        ran_out=any(o["ran_out"] for o in outs),
    )


if __name__ == "__main__":
    _child()
