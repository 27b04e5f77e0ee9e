"""Reading a vault's /ledger/* endpoints (ARCHITECTURE §2) over httpx."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from typing import Any

import httpx

__all__ = ["PAGE", "AuditorError", "LedgerClient"]

PAGE = 1000


class AuditorError(Exception):
    """The vault could not be read: network, HTTP or format errors."""


class LedgerClient:
    """A thin client of the ledger endpoints; `transport` lets tests use the app in-process."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        #: Whether requests carry an API key (only an auditor's may read openings).
        self.authorized = bool(api_key)
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers,
                                  transport=transport, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LedgerClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _get(self, path: str, **params: int) -> httpx.Response:
        try:
            r = self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise AuditorError(f"cannot reach {self._http.base_url}{path}: {exc}") from None
        if r.status_code != 200:
            detail = r.text[:300]
            if r.headers.get("content-type", "").startswith("application/problem+json"):
                detail = str(r.json().get("detail", detail))
            raise AuditorError(f"GET {path} answered {r.status_code}: {detail}")
        return r

    def key(self) -> str:
        return self._get("/ledger/key").text.strip()

    def checkpoint(self) -> str:
        return self._get("/ledger/checkpoint").text

    def entries(self, start: int, limit: int = PAGE) -> list[bytes]:
        body = self._get("/ledger/entries", start=start, limit=limit).content
        return body.split(b"\n")[:-1] if body else []

    def iter_entries(self, start: int, end: int) -> Iterator[bytes]:
        """Entries [start, end), page by page."""
        while start < end:
            page = self.entries(start, min(PAGE, end - start))
            if not page:
                raise AuditorError(f"the vault returned no entries from {start} (expected {end})")
            yield from page
            start += len(page)

    def openings(self, start: int, limit: int = PAGE) -> list[bytes]:
        """The openings of the sealed entries among [start, start + limit): NDJSON
        lines ``{"private","salt","seq"}`` (ARCHITECTURE §10; the auditor key only)."""
        body = self._get("/ledger/openings", start=start, limit=limit).content
        return body.split(b"\n")[:-1] if body else []

    def iter_openings(self, start: int, end: int) -> Iterator[bytes]:
        """The openings of the sealed entries among [start, end), page by page (a page
        of entries from before v2 has none)."""
        while start < end:
            limit = min(PAGE, end - start)
            yield from self.openings(start, limit)
            start += limit

    def inclusion_proof(self, index: int, tree_size: int) -> list[bytes]:
        r = self._get("/ledger/proofs/inclusion", index=index, tree_size=tree_size)
        return _hashes(r.json())

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        r = self._get("/ledger/proofs/consistency", **{"from": first, "to": second})
        return _hashes(r.json())


def _hashes(doc: Any) -> list[bytes]:
    try:
        return [base64.b64decode(h, validate=True) for h in doc["hashes"]]
    except (KeyError, TypeError, binascii.Error, ValueError):
        raise AuditorError("proof response is not {hashes: [base64, ...]}") from None
