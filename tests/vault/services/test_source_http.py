"""The lean HTTP/1.1 transport the vault asks sources with (vault.services._source_http):
keep-alive, bodies by length, chunks or close, and no reuse of a connection it cannot
trust, against a scripted server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from vault.services._source_http import SourceTransport

Answer = Callable[[bytes], bytes | None]  # request body -> raw answer (None: hang)


async def _serve(answer: Answer, conns: list[int], *,
                 close: bool = False) -> tuple[asyncio.Server, str]:
    """A server answering each request with `answer`; `close`: then closes."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conns.append(1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                raw = answer(await reader.readexactly(length))
                if raw is None:
                    await asyncio.sleep(10)
                    return
                writer.write(raw)
                await writer.drain()
                if close or b"connection: close" in raw.lower():
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the client went, or the test is over
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/source"


def _ok(body: bytes, extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" + extra +
            b"content-length: %d\r\n\r\n" % len(body) + body)


async def _post(client: httpx.AsyncClient, url: str) -> tuple[int, bytes]:
    async with asyncio.timeout(2), client.stream("POST", url, json={"request": "x"}) as r:
        return r.status_code, b"".join([c async for c in r.aiter_bytes()])


def test_a_kept_alive_connection_carries_every_request() -> None:
    async def run() -> tuple[list[tuple[int, bytes]], int]:
        conns: list[int] = []
        server, url = await _serve(_ok, conns)  # echoes the request
        async with server, httpx.AsyncClient(transport=SourceTransport()) as client:
            answers = [await _post(client, url) for _ in range(5)]
        return answers, len(conns)

    answers, conns = asyncio.run(run())
    assert answers == [(200, b'{"request":"x"}')] * 5
    assert conns == 1


def test_chunked_answers_and_connection_close() -> None:
    chunked = (b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n"
               b"4\r\n{\"a\"\r\n3;ext=1\r\n: 1\r\n1\r\n}\r\n0\r\n\r\n")
    script = [chunked, _ok(b"{}", b"connection: close\r\n"), _ok(b"[]")]

    async def run() -> tuple[list[tuple[int, bytes]], int]:
        conns: list[int] = []
        server, url = await _serve(lambda _: script.pop(0), conns)
        async with server, httpx.AsyncClient(transport=SourceTransport()) as client:
            answers = [await _post(client, url) for _ in range(3)]
        return answers, len(conns)

    answers, conns = asyncio.run(run())
    assert answers == [(404, b'{"a": 1}'), (200, b"{}"), (200, b"[]")]
    assert conns == 2  # the server said close: the third request needed a new connection


def test_an_idle_connection_the_source_closed_is_not_a_failure() -> None:
    async def run() -> tuple[list[tuple[int, bytes]], int]:
        conns: list[int] = []
        # Every answer closes its connection without saying so.
        server, url = await _serve(lambda _: _ok(b"{}"), conns)
        transport = SourceTransport()
        async with server, httpx.AsyncClient(transport=transport) as client:
            first = await _post(client, url)
            for idle in transport._idle.values():  # the server drops the kept connection
                for conn in idle:
                    conn.writer.transport.abort()
            await asyncio.sleep(0.05)
            second = await _post(client, url)
        return [first, second], len(conns)

    answers, conns = asyncio.run(run())
    assert answers == [(200, b"{}")] * 2
    assert conns == 2


@pytest.mark.parametrize(("raw", "error"), [
    (b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n{\"cut", httpx.ReadError),
    (b"SSH-2.0-OpenSSH\r\n\r\n", httpx.RemoteProtocolError),
    (b"HTTP/1.1 200 OK\r\ncontent-length: many\r\n\r\n", httpx.RemoteProtocolError),
    (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", httpx.ReadError),
])
def test_a_broken_answer_is_a_transport_error(raw: bytes, error: type[Exception]) -> None:
    async def run() -> None:
        server, url = await _serve(lambda _: raw, [], close=True)
        async with server, httpx.AsyncClient(transport=SourceTransport()) as client:
            with pytest.raises(error):
                await _post(client, url)

    asyncio.run(run())


def test_a_timeout_mid_answer_never_leaves_the_connection_for_reuse() -> None:
    script: list[bytes | None] = [None, _ok(b"{}")]

    async def run() -> tuple[int, bytes, int]:
        conns: list[int] = []
        server, url = await _serve(lambda _: script.pop(0), conns)
        async with server, httpx.AsyncClient(transport=SourceTransport()) as client:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await _post(client, url)
            status, body = await _post(client, url)
        return status, body, len(conns)

    assert asyncio.run(run()) == (200, b"{}", 2)
