"""The load generator sends prepared requests that differ, each exactly once, and counts
the answer its spec names (a write's 201) as the success."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench.loadgen import LoadSpec, raw_request, read_requests, run_load, write_requests


class _Recorder(BaseHTTPRequestHandler):
    """Answers every PUT with `status` and keeps the bodies it was sent."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the generator expects
    bodies: Counter[bytes]
    status = 201
    lock = threading.Lock()

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.lock:
            type(self).bodies[body] += 1
        answer = b'{"ok":true}'
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[int, type[_Recorder]]]:
    handler = type("Handler", (_Recorder,), {"bodies": Counter(), "status": 201})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1], handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def _prepared(tmp_path: Path, port: int, n: int) -> tuple[Path, list[bytes]]:
    bodies = [b'{"record":"jws-%d"}' % i for i in range(n)]
    path = tmp_path / "requests"
    written = write_requests(path, (
        raw_request("PUT", "/v1/records/x", host=f"127.0.0.1:{port}",
                    headers={"Content-Type": "application/json"}, body=b)
        for b in bodies))
    assert written == n
    return path, bodies


def test_the_file_keeps_the_requests_and_shares_them_out(tmp_path: Path) -> None:
    path, _ = _prepared(tmp_path, 1, 7)
    every = read_requests(path)
    assert len(every) == 7 and every[3].endswith(b'{"record":"jws-3"}')
    assert every[3].startswith(b"PUT /v1/records/x HTTP/1.1\r\nHost: 127.0.0.1:1\r\n")
    assert b"\r\nContent-Length: 18\r\n\r\n" in every[3]
    shares = [read_requests(path, share=k, shares=3) for k in range(3)]
    assert sorted(r for share in shares for r in share) == sorted(every)
    assert [len(s) for s in shares] == [3, 2, 2]


def test_each_prepared_request_is_sent_once_and_201_counts(
        tmp_path: Path, server: tuple[int, type[_Recorder]]) -> None:
    port, handler = server
    path, bodies = _prepared(tmp_path, port, 60)
    spec = LoadSpec(host="127.0.0.1", port=port, path="", connections=4, warmup=0.0,
                    duration=30.0, ok_status=201, requests_file=str(path))
    result = run_load(spec, processes=2)
    # Every request went once, none twice, and the window ended when they ran out
    # (not after its 30 s).
    assert handler.bodies == Counter(bodies)
    assert result.ran_out and result.seconds < 20
    assert result.statuses == {201: 60} and result.failed == 0
    assert result.ok == len(result.latencies_us) and 0 < result.ok <= 60


def test_another_status_than_the_specs_is_a_failure(
        tmp_path: Path, server: tuple[int, type[_Recorder]]) -> None:
    port, handler = server
    handler.status = 200
    path, _ = _prepared(tmp_path, port, 10)
    spec = LoadSpec(host="127.0.0.1", port=port, path="", connections=2, warmup=0.0,
                    duration=30.0, ok_status=201, requests_file=str(path))
    result = run_load(spec)
    assert result.ok == 0 and result.failed == 10
    assert result.refused.startswith("HTTP/1.0 200") or result.refused.startswith("HTTP/1.1 200")
