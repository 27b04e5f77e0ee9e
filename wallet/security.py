"""The web app's protections: security headers, CSRF tokens, and attempt limits.

CSRF: every form and every passkey fetch carries a token that is an HMAC of the
visitor's own cookie (the session token, or before sign-in a random visitor token)
under the app secret. A page of another site can neither read the token nor forge it,
and SameSite=Strict cookies and an Origin check stand behind it.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wallet.errors import CsrfRejected, TooManyAttempts

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "AttemptLimiter",
    "CookieNames",
    "WalletHeaders",
    "check_csrf",
    "csrf_token",
]

#: No inline scripts or styles, nothing from other origins, no framing, forms post here.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)


class CookieNames:
    """`__Host-` cookies over HTTPS (Secure, Path=/, no Domain: bound to this host)."""

    def __init__(self, *, secure: bool) -> None:
        prefix = "__Host-" if secure else ""
        self.secure = secure
        self.session = f"{prefix}wallet-session"
        self.visitor = f"{prefix}wallet-visitor"

    def attributes(self) -> str:
        return "Path=/; HttpOnly; SameSite=Strict" + ("; Secure" if self.secure else "")


def csrf_token(secret: bytes, cookie_value: str) -> str:
    mac = hmac.new(secret, b"csrf\x00" + cookie_value.encode("utf-8"), hashlib.sha256)
    return mac.hexdigest()


def check_csrf(
    secret: bytes, cookie_value: str | None, *, sent: str | None, origin: str | None,
    allowed_origins: tuple[str, ...],
) -> None:
    """Refuse a state-changing request that did not come from the wallet's own page."""
    # "null" (sandboxed frames, opaque origins) is another site too: the wallet's pages
    # send Referrer-Policy same-origin, so browsers send our origin on our own posts.
    if origin is not None and origin not in allowed_origins:
        raise CsrfRejected("this request came from another site, so it was refused")
    if not cookie_value or not sent or not hmac.compare_digest(
        csrf_token(secret, cookie_value), sent
    ):
        raise CsrfRejected("this form has expired or did not come from the wallet; "
                           "reload the page and try again")


class AttemptLimiter:
    """At most `limit` attempts per key in any `window` seconds (a sliding log).

    In this process's memory: with several workers each counts on its own, so the
    effective limit is `limit` times the number of workers, still a hard cap for guessing.
    """

    def __init__(self, *, limit: int, window: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be at least 1 and window positive")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, deque[float]] = {}

    def hit(self, key: str, *, what: str) -> None:
        """Count one attempt; `TooManyAttempts` when over the limit."""
        now = self._clock()
        with self._lock:
            if len(self._seen) > 100_000:  # bounded memory: drop keys gone quiet
                self._seen = {k: v for k, v in self._seen.items()
                              if v and v[-1] > now - self.window}
            log = self._seen.setdefault(key, deque())
            while log and log[0] <= now - self.window:
                log.popleft()
            if len(log) >= self.limit:
                wait = max(1, math.ceil(log[0] + self.window - now))
                raise TooManyAttempts(
                    f"too many {what} attempts from here; wait {wait} seconds and try again",
                    retry_after=wait)
            log.append(now)


class WalletHeaders:
    """ASGI middleware for everything under /wallet: security headers, no caching of
    personal pages, and a random visitor cookie (the CSRF anchor before sign-in)."""

    def __init__(self, app: ASGIApp, *, cookies: CookieNames, hsts: bool,
                 prefix: str = "/wallet") -> None:
        self.app = app
        self.cookies = cookies
        self.hsts = hsts
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == self.prefix
                                           or path.startswith(self.prefix + "/")):
            await self.app(scope, receive, send)
            return
        new_visitor = None
        if self.cookies.visitor not in _cookies(scope):
            # As if the browser had sent it, so this very page's forms get a token.
            new_visitor = secrets.token_urlsafe(32)
            raw = dict(scope["headers"]).get(b"cookie", b"")
            extra = f"{self.cookies.visitor}={new_visitor}".encode()
            cookie = raw + b"; " + extra if raw else extra
            scope = dict(scope)
            scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"cookie"] + [
                (b"cookie", cookie)]
        static = path.startswith(self.prefix + "/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS.items():
                    headers.setdefault(name, value)
                if self.hsts:
                    headers.setdefault("Strict-Transport-Security",
                                       "max-age=31536000; includeSubDomains")
                if not static:
                    headers["Cache-Control"] = "no-store"
                if new_visitor is not None:
                    headers.append("Set-Cookie", f"{self.cookies.visitor}={new_visitor}; "
                                   f"{self.cookies.attributes()}")
            await send(message)

        await self.app(scope, receive, send_with_headers)


_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: with no-referrer Chromium sends "Origin: null" on the
    # wallet's own form posts; other sites (a privacy notice link) still learn nothing.
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}


def _cookies(scope: Scope) -> set[str]:
    names = set()
    for key, value in scope["headers"]:
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                name, _, _ = part.strip().partition("=")
                names.add(name)
    return names
