"""Per-client rate limits: one token bucket per client, in process.

Two limiters use this: the resource API's reads, and the OAuth endpoints where a service
asks citizens (PAR and CIBA: far fewer, since each may put a request in a wallet).

Each client (a service's `client_id`, from an access token or client assertion that has
already been verified, so nobody can spend another client's allowance) has a bucket of `burst`
tokens that refills at `rate` tokens per second. A request takes one token. A request
that finds the bucket empty is refused with `RateLimited`, which says how long until the
next token (HTTP 429 with Retry-After, RFC 6585 §4).

In-process: each worker process keeps its own buckets, so with N workers a client may
make up to N times `rate` requests per second. That is enough to stop one service from
crowding out the others on a worker. A limit shared by every worker would need a shared
store, and this vault does not have one.

Memory is bounded: at most `max_clients` buckets are kept. When a new client arrives and
the table is full, the bucket unused for longest is dropped. A dropped bucket comes back
full, which only helps the client that was idle longest.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from vault.errors import VaultError

__all__ = ["DEFAULT_BURST", "DEFAULT_RATE", "DEFAULT_REQUEST_BURST", "DEFAULT_REQUEST_RATE",
           "ClientRateLimiter", "RateLimited"]

#: Reads per second each client may make on average, and how many at once.
DEFAULT_RATE = 50.0
DEFAULT_BURST = 100
#: Requests that ask citizens (PAR, CIBA) per second each client may make, and at once.
DEFAULT_REQUEST_RATE = 2.0
DEFAULT_REQUEST_BURST = 10


class RateLimited(VaultError):
    """A client made requests faster than its limit allows; `retry_after` is whole seconds
    (at least 1) until it may make the next one. Nothing was done."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"too many requests from this client; try again in {retry_after} s")


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class ClientRateLimiter:
    """Token buckets by client id. Thread-safe. `clock` is seconds, monotonic."""

    def __init__(self, rate: float = DEFAULT_RATE, burst: int = DEFAULT_BURST, *,
                 max_clients: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not (math.isfinite(rate) and rate > 0) or burst < 1 or max_clients < 1:
            raise ValueError("rate must be > 0, burst >= 1 and max_clients >= 1")
        self.rate = float(rate)
        self.burst = int(burst)
        self._max_clients = max_clients
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def wait(self, client_id: str) -> float:
        """Take one token for `client_id`: 0.0 if it had one, else the seconds until the
        next one arrives (and nothing is taken)."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(client_id)
            if bucket is None:
                if len(self._buckets) >= self._max_clients:
                    self._buckets.popitem(last=False)
                bucket = self._buckets[client_id] = _Bucket(float(self.burst), now)
            else:
                self._buckets.move_to_end(client_id)
                elapsed = max(0.0, now - bucket.updated)  # a clock never runs back here
                bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
                bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate

    def check(self, client_id: str) -> None:
        """Take one token for `client_id`, or raise RateLimited."""
        wait = self.wait(client_id)
        if wait > 0:
            raise RateLimited(max(1, math.ceil(wait)))

    def __len__(self) -> int:
        return len(self._buckets)
