"""Structured (JSON) logs. Nothing personal is ever passed to a logger: ids and codes only.

Request logs name the method, the path (never the query string, which may carry OAuth
codes), the status and the duration.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["JsonFormatter", "configure_logging", "log_requests"]

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        doc.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("vault")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


_access = logging.getLogger("vault.http")


async def log_requests(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    start = time.perf_counter()
    response = await call_next(request)
    _access.info("request", extra={
        "method": request.method, "path": request.url.path, "status": response.status_code,
        "ms": round((time.perf_counter() - start) * 1000, 2)})
    return response
