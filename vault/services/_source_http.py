"""A lean HTTP/1.1 transport for asking sources (held at source, ARCHITECTURE §8).

httpx's default transport (httpcore over anyio, h11) cost a read of a category held at
source about 1.7 ms of CPU per request (measured on loopback, against about 0.3 ms for
the request written and read on asyncio streams); the whole budget the vault may add to a
source's answer is 5 ms. This transport keeps httpx's client (its API, the test seam of
an injected transport) and does the wire itself: one request at a time per connection,
connections kept alive per origin, a response body of `Content-Length`, `chunked`, or
up to the connection's close.

It only ever sends what `SourceFetcher` asks (a small POST); redirects are not followed
(the client says so), TLS is the default context (certificates and host names checked).
Failures are httpx's own TransportErrors, so callers handle them as before. Timeouts are
the caller's (`asyncio.timeout` around the request): a connection left mid-answer is
closed, never reused.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import httpx

__all__ = ["SourceTransport"]

#: A response head (status line and headers) longer than this is refused.
_MAX_HEAD = 16_384
_CHUNK = 65_536

_Origin = tuple[str, str, int]


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def usable(self) -> bool:
        # A peer that closed an idle connection has fed EOF by now.
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()


class _Body(httpx.AsyncByteStream):
    """The response body, read as it is asked for; the connection goes back to the pool
    only once the body was read to its end and the server keeps it open."""

    def __init__(self, transport: SourceTransport, origin: _Origin, conn: _Conn,
                 length: int | None, chunked: bool, keep: bool) -> None:
        self._transport, self._origin, self._conn = transport, origin, conn
        self._length, self._chunked, self._keep = length, chunked, keep
        self._done = False
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        reader = self._conn.reader
        try:
            if self._chunked:
                while True:
                    line = await reader.readuntil(b"\r\n")
                    size = int(line.split(b";", 1)[0].strip(), 16)
                    if size == 0:
                        while await reader.readuntil(b"\r\n") != b"\r\n":
                            pass  # trailers: ignored
                        break
                    while size:
                        data = await reader.read(min(size, _CHUNK))
                        if not data:
                            raise asyncio.IncompleteReadError(b"", size)
                        size -= len(data)
                        yield data
                    if await reader.readexactly(2) != b"\r\n":
                        raise ValueError("bad chunk")
            elif self._length is not None:
                left = self._length
                while left:
                    data = await reader.read(min(left, _CHUNK))
                    if not data:
                        raise asyncio.IncompleteReadError(b"", left)
                    left -= len(data)
                    yield data
            else:  # to the connection's close
                self._keep = False
                while data := await reader.read(_CHUNK):
                    yield data
        except (OSError, ValueError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError) as exc:
            raise httpx.ReadError(f"the source's answer broke off: {exc!r}") from None
        self._done = True

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._done and self._keep:
            self._transport._release(self._origin, self._conn)
        else:
            self._conn.close()


class SourceTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 on asyncio streams, `max_idle` connections kept alive per origin."""

    def __init__(self, *, max_idle: int = 64, ssl_context: ssl.SSLContext | None = None) -> None:
        self._idle: dict[_Origin, list[_Conn]] = {}
        self._max_idle = max_idle
        self._ssl = ssl_context

    def _release(self, origin: _Origin, conn: _Conn) -> None:
        idle = self._idle.setdefault(origin, [])
        if len(idle) < self._max_idle and conn.usable():
            idle.append(conn)
        else:
            conn.close()

    async def _connect(self, origin: _Origin) -> _Conn:
        scheme, host, port = origin
        tls: ssl.SSLContext | None = None
        if scheme == "https":
            tls = self._ssl or ssl.create_default_context()
        try:
            reader, writer = await asyncio.open_connection(
                host, port, ssl=tls, server_hostname=host if tls else None, limit=_MAX_HEAD)
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(f"could not connect to the source: {exc!r}") from None
        return _Conn(reader, writer)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"a source is asked over http(s), not {url.scheme}")
        origin: _Origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https"
                                                              else 80))
        body = await request.aread()
        head = [f"{request.method} {url.raw_path.decode('ascii')} HTTP/1.1".encode("ascii")]
        head += [k + b": " + v for k, v in request.headers.raw]
        wire = b"\r\n".join(head) + b"\r\n\r\n" + body
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if conn.usable():
                response = await self._exchange(origin, conn, wire, reused=True)
                if response is not None:
                    return response
            else:
                conn.close()
        response = await self._exchange(origin, await self._connect(origin), wire, reused=False)
        assert response is not None  # a fresh connection's failure raises
        return response

    async def _exchange(self, origin: _Origin, conn: _Conn, wire: bytes, *,
                        reused: bool) -> httpx.Response | None:
        """The response head, its body left to stream. None when a kept-alive connection
        turned out closed before any byte of an answer (the caller takes another)."""
        try:
            conn.writer.write(wire)
            await conn.writer.drain()
            raw = await conn.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            conn.close()
            if reused and not exc.partial:
                return None
            raise httpx.ReadError("the source closed the connection") from None
        except (OSError, asyncio.LimitOverrunError) as exc:
            conn.close()
            if reused and isinstance(exc, ConnectionError):
                return None
            raise httpx.ReadError(f"the source's answer broke off: {exc!r}") from None
        except BaseException:  # cancelled (a timeout): never reuse a half-read connection
            conn.close()
            raise
        try:
            status_line, *lines = raw[:-4].split(b"\r\n")
            version, status, *_ = status_line.split(b" ", 2)
            if version not in (b"HTTP/1.1", b"HTTP/1.0"):
                raise ValueError(version)
            headers = [tuple(line.split(b":", 1)) for line in lines]
            pairs = [(k.strip(), v.strip()) for k, v in headers]
            code = int(status)
        except ValueError:
            conn.close()
            raise httpx.RemoteProtocolError("the source did not answer HTTP/1.1") from None
        named = {k.lower(): v.lower() for k, v in pairs}
        chunked = b"chunked" in named.get(b"transfer-encoding", b"")
        length: int | None = None
        if not chunked and b"content-length" in named:
            try:
                length = int(named[b"content-length"])
            except ValueError:
                conn.close()
                raise httpx.RemoteProtocolError("a bad Content-Length") from None
        if code < 200 or code in (204, 304):
            length, chunked = 0, False  # no body (RFC 9112 §6.3)
        keep = version == b"HTTP/1.1" and named.get(b"connection") != b"close"
        return httpx.Response(code, headers=pairs,
                              stream=_Body(self, origin, conn, length, chunked, keep))

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
