"""Asking witnesses to cosign the vault's checkpoints (C2SP tlog-witness, ARCHITECTURE §10).

For each new checkpoint the publisher sends every witness in `VAULT_WITNESSES` the
checkpoint and a consistency proof from the size that witness last cosigned, all at once
and each with a timeout, and keeps the cosignatures that verify under that witness's key.

The size each witness holds is remembered in memory only: after a restart (or when another
worker moved it on) the first request says the wrong old size, the witness answers 409
with its size, and the request is sent again once with the right proof, as the spec means
clients to learn it. Witnesses failing never fail a write: the vault only logs it (names,
sizes and statuses, never anything about a citizen), and with a quorum the checkpoint
waits, unpublished, for the next attempt.

Failure modes (a quorum of k of the known witnesses, as a Sigsum policy states it; the
log pushes, as the sumdb witness feeder does): a witness that is down or slow only costs
its cosignature; one that answers 422 has seen a checkpoint of ours that
this one does not extend (a fork, or our own bug) and that is logged as an error, since an
honest log never sees it; a witness ahead of our tree (after a database restore) can never
cosign again until the log catches up, and is logged as such.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from ledger.cosignature import WitnessKey, check_cosignatures
from ledger.errors import KeyFormatError, NoteError
from vault.errors import VaultError

__all__ = [
    "NotWitnessed",
    "WitnessEndpoint",
    "Witnessing",
    "parse_witnesses",
]

log = logging.getLogger(__name__)

#: The 409 answer's content type, which carries the witness's size (tlog-witness).
TLOG_SIZE = "text/x.tlog.size"
_SIZE = re.compile(r"(0|[1-9][0-9]{0,19})\n")
#: A consistency proof between two sizes of our tree, read from the ledger.
ProofSource = Callable[[int, int], Sequence[bytes]]


class NotWitnessed(VaultError):
    """No checkpoint has its quorum of witness cosignatures yet."""


@dataclass(frozen=True, slots=True)
class WitnessEndpoint:
    key: WitnessKey
    #: The submission prefix: requests go to <url>/add-checkpoint.
    url: str


def parse_witnesses(text: str) -> list[WitnessEndpoint]:
    """`<verifier key> <URL>` pairs, one per line or separated by ';'."""
    endpoints: list[WitnessEndpoint] = []
    for item in re.split(r"[;\n]", text):
        if not item.strip():
            continue
        parts = item.split()
        if len(parts) != 2:
            raise ValueError(f"a witness is '<verifier key> <URL>', not {item.strip()[:60]!r}")
        try:
            key = WitnessKey.parse(parts[0])
        except KeyFormatError as e:
            raise ValueError(f"witness key {parts[0][:40]!r}: {e}") from None
        url = urlsplit(parts[1])
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"witness URL {parts[1]!r} must be an http(s) URL")
        if any(e.key == key for e in endpoints):
            raise ValueError(f"witness {key.name} is listed twice")
        endpoints.append(WitnessEndpoint(key, parts[1].rstrip("/")))
    return endpoints


def _body(old: int, proof: Sequence[bytes], note: str) -> bytes:
    lines = "".join(base64.b64encode(h).decode() + "\n" for h in proof)
    return f"old {old}\n{lines}\n{note}".encode()


class Witnessing:
    """The witnesses, the quorum, and what the vault knows of each witness's size."""

    def __init__(self, endpoints: Sequence[WitnessEndpoint], *, quorum: int,
                 timeout: float = 2.0, transport: httpx.BaseTransport | None = None) -> None:
        if not 0 <= quorum <= len(endpoints):
            raise ValueError(f"a quorum of {quorum} needs at least {quorum} witnesses")
        self.endpoints = tuple(endpoints)
        self.quorum = quorum
        self._sizes: dict[WitnessKey, int] = {}
        self._failing: dict[WitnessKey, str] = {}
        self._client = httpx.Client(timeout=timeout, transport=transport)
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(endpoints)),
                                        thread_name_prefix="witness")
        # One round at a time: the publisher and a receipt may both ask; the sizes each
        # round learns are the next one's starting points.
        self._lock = threading.Lock()

    def cosign(self, note: str, size: int, proofs: ProofSource) -> list[str]:
        """The valid cosignature lines the witnesses give `note` (of a tree of `size`)."""
        with self._lock:
            futures = [self._pool.submit(self._ask, e, note, size, proofs)
                       for e in self.endpoints]
            return [line for f in futures if (line := f.result()) is not None]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    def _ask(self, endpoint: WitnessEndpoint, note: str, size: int,
             proofs: ProofSource) -> str | None:
        try:
            return self._submit(endpoint, note, size, proofs)
        except Exception as e:  # a witness must never break publishing
            self._failed(endpoint, f"{type(e).__name__}: {e}")
            return None

    def _submit(self, endpoint: WitnessEndpoint, note: str, size: int,
                proofs: ProofSource) -> str | None:
        old = self._sizes.get(endpoint.key, 0)
        for _ in range(2):  # a 409 teaches the witness's size: one more try with it
            if old > size:
                self._failed(endpoint, f"it holds size {old}, above our tree's {size}")
                return None
            proof = proofs(old, size) if 0 < old < size else []
            r = self._client.post(f"{endpoint.url}/add-checkpoint",
                                  content=_body(old, proof, note))
            if r.status_code == 409 and (held := _held_size(r)) is not None:
                self._sizes[endpoint.key] = old = held
                continue
            if r.status_code != 200:
                level = logging.ERROR if r.status_code == 422 else logging.WARNING
                self._failed(endpoint, f"answered {r.status_code} at size {size}", level)
                return None
            line = _valid_line(endpoint.key, note, r.text)
            if line is None:
                self._failed(endpoint, f"its answer at size {size} holds no valid cosignature")
                return None
            self._sizes[endpoint.key] = size
            if self._failing.pop(endpoint.key, None) is not None:
                log.info("witness %s cosigns again (size %d)", endpoint.key.name, size)
            return line
        self._failed(endpoint, "answered 409 twice")
        return None

    def _failed(self, endpoint: WitnessEndpoint, why: str, level: int = logging.WARNING) -> None:
        # Once per change of reason: the publisher retries every tick while it waits.
        if self._failing.get(endpoint.key) != why.split(" at size")[0]:
            self._failing[endpoint.key] = why.split(" at size")[0]
            log.log(level, "witness %s did not cosign: %s", endpoint.key.name, why)


def _held_size(r: httpx.Response) -> int | None:
    if not r.headers.get("content-type", "").startswith(TLOG_SIZE):
        return None
    match = _SIZE.fullmatch(r.text)
    return int(match.group(1)) if match else None


def _valid_line(key: WitnessKey, note: str, answer: str) -> str | None:
    """The first line of the witness's answer that is its valid cosignature of `note`."""
    for line in answer.splitlines(keepends=True):
        if not line.endswith("\n"):
            continue
        try:
            if check_cosignatures(note + line, expected_witnesses=[key]).valid:
                return line
        except NoteError:
            continue
    return None
