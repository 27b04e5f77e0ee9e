"""Every route refuses a body over the cap with a 413 problem, before reading it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from vault.api.body_limit import DEFAULT_MAX_BODY_BYTES, BodyLimit
from vault.api.oauth_routes import MAX_FORM_BYTES

CAP = DEFAULT_MAX_BODY_BYTES
CHUNK = 64 * 1024


def _assert_too_large(r: object) -> None:
    assert r.status_code == 413  # type: ignore[attr-defined]
    assert r.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    doc = r.json()  # type: ignore[attr-defined]
    assert doc["status"] == 413 and doc["type"] == "urn:citizen-vault:problem:body-too-large"
    assert str(CAP) in doc["detail"]


def _chunks(total: int) -> Iterator[bytes]:
    """A body of unknown length: httpx sends it chunked, with no Content-Length."""
    sent = 0
    while sent < total:
        n = min(CHUNK, total - sent)
        sent += n
        yield b"x" * n


@pytest.mark.parametrize("path", ["/wallet/signin", "/wallet/signup", "/oauth/par",
                                  "/oauth/token", "/healthz"])
def test_content_length_over_the_cap_is_refused(client: TestClient, path: str) -> None:
    r = client.post(path, content=b"{" + b" " * CAP + b"}",
                    headers={"content-type": "application/json", "accept": "application/json"})
    _assert_too_large(r)
    assert r.headers["connection"] == "close"


@pytest.mark.parametrize("path", ["/wallet/signin", "/wallet/signup"])
def test_chunked_over_the_cap_is_refused(client: TestClient, path: str) -> None:
    r = client.post(path, content=_chunks(CAP + 1),
                    headers={"content-type": "application/json"})
    _assert_too_large(r)


def test_a_wallet_json_body_under_the_cap_is_read(client: TestClient) -> None:
    body = json.dumps({"ceremony": "nope", "credential": {"pad": "x" * (CAP // 2)}})
    r = client.post("/wallet/signin", content=body,
                    headers={"content-type": "application/json", "accept": "application/json"})
    # Read and answered by the route: a refusal of the passkey or its CSRF token, not 413.
    assert r.status_code in (400, 403) and r.json()["type"] != \
        "urn:citizen-vault:problem:body-too-large"


def test_oauth_keeps_its_smaller_cap(client: TestClient) -> None:
    r = client.post("/oauth/par", content=b"a=" + b"b" * MAX_FORM_BYTES,
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    assert "over" in r.json()["error_description"]


# -- the middleware alone: what it reads ------------------------------------------------


class _Sender:
    def __init__(self, *, declared: int | None, chunks: int, size: int = CHUNK) -> None:
        self.headers = [] if declared is None else [(b"content-length", str(declared).encode())]
        self.left = chunks
        self.size = size
        self.reads = 0
        self.sent: list[Message] = []

    def scope(self) -> Scope:
        return {"type": "http", "method": "POST", "path": "/x", "headers": self.headers}

    async def receive(self) -> Message:
        self.reads += 1
        self.left -= 1
        return {"type": "http.request", "body": b"x" * self.size, "more_body": self.left > 0}

    async def send(self, message: Message) -> None:
        self.sent.append(message)


async def _reading_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the whole body, then answers 200 (or 400 if the client went away)."""
    status = 200
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            status = 400
            break
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"read"})


def _status(sender: _Sender) -> int:
    return int(next(m["status"] for m in sender.sent if m["type"] == "http.response.start"))


def test_a_declared_length_over_the_cap_is_refused_without_reading() -> None:
    sender = _Sender(declared=20 * CAP, chunks=320)
    asyncio.run(BodyLimit(_reading_app, max_bytes=CAP)(sender.scope(), sender.receive,
                                                        sender.send))
    assert _status(sender) == 413 and sender.reads == 0


def test_an_unknown_length_is_cut_off_once_over_the_cap() -> None:
    sender = _Sender(declared=None, chunks=320)  # 20 MiB in 64 KiB chunks
    asyncio.run(BodyLimit(_reading_app, max_bytes=CAP)(sender.scope(), sender.receive,
                                                        sender.send))
    # The app's own answer (400) is replaced, and nothing past the cap was pulled.
    assert _status(sender) == 413
    assert [m["status"] for m in sender.sent if m["type"] == "http.response.start"] == [413]
    assert sender.reads == CAP // CHUNK + 1


def test_an_app_that_fails_on_the_cut_off_body_still_gets_413() -> None:
    async def failing_app(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        raise RuntimeError("the body ended early")

    sender = _Sender(declared=None, chunks=40)
    asyncio.run(BodyLimit(failing_app, max_bytes=CAP)(sender.scope(), sender.receive,
                                                       sender.send))
    assert _status(sender) == 413


def test_a_body_at_the_cap_reaches_the_app() -> None:
    sender = _Sender(declared=CAP, chunks=CAP // CHUNK)
    asyncio.run(BodyLimit(_reading_app, max_bytes=CAP)(sender.scope(), sender.receive,
                                                        sender.send))
    assert _status(sender) == 200 and sender.reads == CAP // CHUNK


def test_the_cap_is_a_setting(tmp_path: object) -> None:
    from pathlib import Path

    from vault.app import create_app
    from vault.config import Settings

    s = Settings(data_dir=Path(str(tmp_path)), max_body_bytes=4096)
    with TestClient(create_app(s)) as c:
        assert c.post("/wallet/signin", content=b"x" * 4097).status_code == 413
        r = c.post("/wallet/signin", content=b"x" * 4096,
                   headers={"accept": "application/json"})
        assert r.status_code != 413
