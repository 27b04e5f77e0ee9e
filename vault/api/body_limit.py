"""A cap on every request body, enforced before the app reads it.

FastAPI reads and parses a JSON body whole, on the event loop, before any dependency runs
(CSRF, rate limits, authentication): without a cap any visitor can stall every request
with a few big bodies. `BodyLimit` is plain ASGI and sits outside the app:

- a `Content-Length` over the cap is refused at once, without reading a byte of the body;
- a body of unknown length (chunked) is counted as the app receives it, never buffered:
  once over the cap the app is told the client went away (`http.disconnect`), so it stops
  reading, and whatever it would have answered is replaced by the 413.

The refusal is RFC 9457 problem details with `Connection: close`, so the server drops the
rest of the body instead of draining it. Routes may keep smaller caps of their own
(`/oauth/*` reads at most `MAX_FORM_BYTES`).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vault.api.errors import problem

__all__ = ["DEFAULT_MAX_BODY_BYTES", "BodyLimit"]

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


def _declared_length(scope: Scope) -> int | None:
    """The request's Content-Length, or None when it has none (or one we cannot read:
    the server refuses those before they reach us, and counting still applies)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimit:
    """ASGI middleware: answer 413 to any request whose body is over `max_bytes`."""

    def __init__(self, app: ASGIApp, *, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(413, f"the request body is over {self.max_bytes} bytes",
                           slug="body-too-large", headers={"Connection": "close"})
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return

        received = 0
        over = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Stop the app reading; it sees a client that went away.
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over and not started:
                return  # the app's answer to the "disconnect"; the 413 goes instead
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not over or started:
                raise
            # The app failed on the cut-off body (a parse error, ClientDisconnect): the
            # only thing to say is that the body was too large.
        if over and not started:
            await self._refuse(scope, receive, send)
