"""What the SDK hands back: typed values, each with a JSON form where an app keeps it.

All are frozen except `Grant`: its tokens rotate, and the client updates the one object
the app holds, so `grant.to_json()` after any call is what to store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from clients.service.qr import qr_png, qr_svg

__all__ = [
    "BackchannelRequest",
    "BatchProvenance",
    "Grant",
    "GrantStatus",
    "Introspection",
    "PendingAuthorization",
    "Provenance",
    "RecordWritten",
    "Release",
    "SeriesBatch",
    "SeriesPage",
    "from_timestamp",
    "parse_time",
]


def from_timestamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def parse_time(value: Any, name: str) -> datetime:
    """An aware UTC datetime from RFC 3339 text; ValueError naming `name` if it is not."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be RFC 3339 text")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} is not RFC 3339 text") from None
    if parsed.utcoffset() is None:
        raise ValueError(f"{name} has no time zone")
    return parsed.astimezone(UTC)


def _time_text(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _str(doc: Mapping[str, Any], name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"'{name}' must be non-empty text")
    return value


def _optional_str(doc: Mapping[str, Any], name: str) -> str | None:
    return None if doc.get(name) is None else _str(doc, name)


def _int(doc: Mapping[str, Any], name: str) -> int:
    value = doc.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"'{name}' must be a whole number")
    return value


def _items(batch: Mapping[str, Any]) -> list[Any]:
    items = batch.get("items")
    if not isinstance(items, list):
        raise ValueError("a batch's items must be a list")
    return items


def _obj(doc: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(doc, Mapping):
        raise ValueError(f"{what} must be a JSON object")
    return doc


@dataclass(frozen=True, slots=True)
class PendingAuthorization:
    """A pushed authorization request waiting for the citizen: send the browser to `url`
    (or show `qr_svg()`), keep this (`to_json()`) in the user's session, and give it
    back to `finish_authorization` with the callback URL. `code_verifier` and `state`
    are secrets of this one request: keep them server-side."""

    url: str
    state: str = field(repr=False)
    code_verifier: str = field(repr=False)
    redirect_uri: str
    request_uri: str
    issuer: str
    expires_at: datetime

    def qr_svg(self, *, scale: int = 4, border: int = 4) -> str:
        """The authorization URL as an SVG QR code (for a phone to scan)."""
        return qr_svg(self.url, scale=scale, border=border)

    def qr_png(self, *, scale: int = 4, border: int = 4) -> bytes:
        """The authorization URL as a PNG QR code; `scale` pixels per module."""
        return qr_png(self.url, scale=scale, border=border)

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "state": self.state, "code_verifier": self.code_verifier,
                "redirect_uri": self.redirect_uri, "request_uri": self.request_uri,
                "issuer": self.issuer, "expires_at": _time_text(self.expires_at)}

    @classmethod
    def from_json(cls, doc: Any) -> PendingAuthorization:
        d = _obj(doc, "a pending authorization")
        return cls(url=_str(d, "url"), state=_str(d, "state"),
                   code_verifier=_str(d, "code_verifier"), redirect_uri=_str(d, "redirect_uri"),
                   request_uri=_str(d, "request_uri"), issuer=_str(d, "issuer"),
                   expires_at=parse_time(d.get("expires_at"), "expires_at"))


@dataclass(frozen=True, slots=True)
class BackchannelRequest:
    """A CIBA request waiting in the citizen's wallet: give it to `wait`. Poll no sooner
    than `interval` seconds apart; it is void after `expires_at`."""

    auth_req_id: str = field(repr=False)
    sub: str
    issued_at: datetime
    expires_at: datetime
    interval: int

    def to_json(self) -> dict[str, Any]:
        return {"auth_req_id": self.auth_req_id, "sub": self.sub,
                "issued_at": _time_text(self.issued_at),
                "expires_at": _time_text(self.expires_at), "interval": self.interval}

    @classmethod
    def from_json(cls, doc: Any) -> BackchannelRequest:
        d = _obj(doc, "a backchannel request")
        return cls(auth_req_id=_str(d, "auth_req_id"), sub=_str(d, "sub"),
                   issued_at=parse_time(d.get("issued_at"), "issued_at"),
                   expires_at=parse_time(d.get("expires_at"), "expires_at"),
                   interval=_int(d, "interval"))


@dataclass(slots=True)
class Grant:
    """A grant the citizen approved, and the tokens to use it.

    `expires_at` is when the access token expires (the grant's own end is in its terms,
    `authorization_details`). The client refreshes the tokens and updates this object in
    place; store `to_json()` after each call (the old refresh token no longer works, and
    using it again revokes every token of the grant)."""

    grant_id: str
    sub: str
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: datetime
    authorization_details: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"grant_id": self.grant_id, "sub": self.sub, "access_token": self.access_token,
                "refresh_token": self.refresh_token, "expires_at": _time_text(self.expires_at),
                "authorization_details": [dict(d) for d in self.authorization_details]}

    @classmethod
    def from_json(cls, doc: Any) -> Grant:
        d = _obj(doc, "a grant")
        details = d.get("authorization_details", [])
        if not isinstance(details, list) or not all(isinstance(x, dict) for x in details):
            raise ValueError("'authorization_details' must be a list of objects")
        return cls(grant_id=_str(d, "grant_id"), sub=_str(d, "sub"),
                   access_token=_str(d, "access_token"),
                   refresh_token=_optional_str(d, "refresh_token"),
                   expires_at=parse_time(d.get("expires_at"), "expires_at"),
                   authorization_details=[dict(x) for x in details])


@dataclass(frozen=True, slots=True)
class BatchProvenance:
    """One batch of a series as released (ARCHITECTURE §8 "Series"): its version, who
    wrote it ("citizen" or "issuer"), the issuer's JWS over exactly its items, how many
    items; `verified_issuer` as for `Provenance`, checked batch by batch."""

    version: int
    source: str
    issuer: str | None
    record: str | None
    items: int
    verified_issuer: str | None = None

    @classmethod
    def from_json(cls, doc: Any) -> BatchProvenance:
        d = _obj(doc, "a batch's provenance")
        source = _str(d, "source")
        if source not in ("citizen", "issuer"):
            raise ValueError("a batch's source must be citizen or issuer")
        return cls(version=_int(d, "version"), source=source,
                   issuer=_optional_str(d, "issuer"), record=_optional_str(d, "record"),
                   items=_int(d, "items"))


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a released value came from (ARCHITECTURE §8): `source` "citizen" or
    "issuer", the issuer's client_id, the record's version, and the issuer's JWS exactly
    as written (`record`, None when there is none). Of a series, `source` is "series"
    and `batches` holds each released batch's own (`issuer` is then the one issuer of
    them all, if there is one).

    `verified_issuer` is the issuer's client_id once the client checked `record` with
    the issuer's own keys (`GET /services/{issuer}/jwks`) and found it signed by that
    issuer, for this category, over the very value released; None otherwise (no JWS,
    or one that does not verify). Trust an issued value only when it is set.
    """

    source: str
    issuer: str | None
    version: int | None
    record: str | None
    verified_issuer: str | None = None
    batches: tuple[BatchProvenance, ...] = ()

    @classmethod
    def from_json(cls, doc: Any) -> Provenance:
        d = _obj(doc, "a provenance")
        source = _str(d, "source")
        if source not in ("citizen", "issuer", "series"):
            raise ValueError("provenance source must be citizen, issuer or series")
        version = d.get("version")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
            raise ValueError("provenance version must be a whole number or null")
        batches = d.get("batches") or []
        if not isinstance(batches, list):
            raise ValueError("provenance batches must be a list")
        return cls(source=source, issuer=_optional_str(d, "issuer"), version=version,
                   record=_optional_str(d, "record"),
                   batches=tuple(BatchProvenance.from_json(b) for b in batches))


@dataclass(frozen=True, slots=True)
class SeriesBatch:
    """One batch of a series as a read released it: its version and its items."""

    version: int
    items: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class SeriesPage:
    """What one read released of a series: the batches added since the grant's previous
    read, oldest first, and `more`: the vault holds further batches for the next read
    (its `"next"`; read again when the grant allows)."""

    batches: tuple[SeriesBatch, ...]
    more: bool

    @property
    def items(self) -> list[Any]:
        """Every item of the page's batches, in order."""
        return [item for b in self.batches for item in b.items]


@dataclass(frozen=True, slots=True)
class Release:
    """What one read released: raw values by category, derived answers by name, the
    index of the ledger entry that logged the read (committed before the answer), and
    where each value came from (`provenance`, by category)."""

    grant_id: str
    sub: str
    data: Mapping[str, Any]
    derived: Mapping[str, Any]
    ledger_index: int
    provenance: Mapping[str, Provenance] = field(default_factory=dict)

    @classmethod
    def from_json(cls, doc: Any) -> Release:
        d = _obj(doc, "a data release")
        data, derived = _obj(d.get("data"), "data"), _obj(d.get("derived"), "derived")
        provenance = {str(cat): Provenance.from_json(p)
                      for cat, p in _obj(d.get("provenance", {}), "provenance").items()}
        return cls(grant_id=_str(d, "grant_id"), sub=_str(d, "sub"), data=data,
                   derived=derived, ledger_index=_int(d, "ledger_index"),
                   provenance=provenance)

    def series(self, category: str) -> SeriesPage:
        """The batches of series `category` this read released (none: an empty page)."""
        found = self.data.get(category)
        if found is None:
            return SeriesPage((), False)
        d = _obj(found, f"the series {category}")
        batches, more = d.get("batches"), d.get("next")
        if not isinstance(batches, list) or not isinstance(more, bool):
            raise ValueError(f"{category} is not a series as released")
        return SeriesPage(tuple(SeriesBatch(_int(_obj(b, "a batch"), "version"),
                                            tuple(_items(b))) for b in batches), more)


@dataclass(frozen=True, slots=True)
class RecordWritten:
    """An issuer's write (or withdrawal) as the vault logged it: the category, the
    version written (or withdrawn) and the index of its ledger entry."""

    category: str
    version: int
    ledger_index: int

    @classmethod
    def from_json(cls, doc: Any) -> RecordWritten:
        d = _obj(doc, "a record write")
        return cls(category=_str(d, "category"), version=_int(d, "version"),
                   ledger_index=_int(d, "ledger_index"))


@dataclass(frozen=True, slots=True)
class GrantStatus:
    """A grant as the vault holds it now: state (approved, paused, revoked, ...), the
    terms exactly as hashed into `terms_hash`, and the reads made so far."""

    grant_id: str
    service_id: str
    state: str
    terms: Mapping[str, Any]
    terms_hash: str
    reads: int
    requested_at: datetime
    updated_at: datetime

    @classmethod
    def from_json(cls, doc: Any) -> GrantStatus:
        d = _obj(doc, "a grant status")
        return cls(grant_id=_str(d, "grant_id"), service_id=_str(d, "service_id"),
                   state=_str(d, "state"), terms=_obj(d.get("terms"), "terms"),
                   terms_hash=_str(d, "terms_hash"), reads=_int(d, "reads"),
                   requested_at=parse_time(d.get("requested_at"), "requested_at"),
                   updated_at=parse_time(d.get("updated_at"), "updated_at"))


@dataclass(frozen=True, slots=True)
class Introspection:
    """The vault's view of a token (RFC 7662). When `active` is False nothing else is
    said; `claims` holds the whole answer."""

    active: bool
    client_id: str | None = None
    sub: str | None = None
    grant_id: str | None = None
    grant_state: str | None = None
    token_type: str | None = None
    expires_at: datetime | None = None
    issued_at: datetime | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, doc: Any) -> Introspection:
        d = _obj(doc, "an introspection answer")
        active = d.get("active")
        if not isinstance(active, bool):
            raise ValueError("'active' must be true or false")
        if not active:
            return cls(active=False, claims=dict(d))

        def when(name: str) -> datetime | None:
            return None if d.get(name) is None else from_timestamp(_int(d, name))

        return cls(active=True, client_id=_optional_str(d, "client_id"),
                   sub=_optional_str(d, "sub"), grant_id=_optional_str(d, "grant_id"),
                   grant_state=_optional_str(d, "grant_state"),
                   token_type=_optional_str(d, "token_type"), expires_at=when("exp"),
                   issued_at=when("iat"), claims=dict(d))
