"""Categories held at source (ARCHITECTURE §8): never stored, asked for on each read.

An issuer registered with `vault service add --issues CAT... --source-url URL` holds
those categories itself (`source_categories`, one row per category). The vault keeps no
value of them for anyone: a write of one is refused (`refuse_held`). On a read under a
grant that needs one (released, or an input of a derived answer), the route calls
`SourceFetcher.fetch_for` BEFORE the ordinary locked read:

1. the grant is checked without a lock (`check_read`, as the locked read will again), so
   a refused read never reaches a source;
2. each needed source is sent, concurrently, `{"request": "<JWS>"}`: ES256 by the vault's
   source-request key (published in /oauth/jwks), header `typ: source-request+jwt`,
   claims `iss` (the vault), `aud` (the source URL), `sub` (the ISSUER's pairwise subject
   of the citizen), `category`, `purpose` (the grant's), `grant_ref` (SHA-256 hex of the
   grant id: the source can tell reads of one grant apart without learning its id),
   `jti`, `iat`, `exp` (60 s later);
3. the answer `{"record": "<record JWS>"}` is checked as an issuer's write is
   (`verify_record` against the issuer's JWKS: signature, `iss`, category) and its value
   against the category's schema. A 404 means the source holds nothing for the citizen:
   the category is left out, as a category with no record is.

The fetched records then go into the ordinary read (`access.ReadAsk.fetched`), which
locks, re-checks everything and logs `data.accessed` with `"sources": {CAT: issuer}`.
No transaction or lock is held while the network is waited on. Any failure raises
before the read is queued: nothing is logged as released and the read is not counted.

VaultError (vault.errors)
├── InvalidRequest (vault.errors)
│   └── HeldAtSource        a write of a category held at source (nothing stored)
└── SourceError             a read needed a source that did not answer well
    ├── SourceUnavailable   no answer within the timeout, or no connection: 503, Retry-After
    └── SourceBadAnswer     an answer the vault will not release (`reason`): 502
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import httpx
import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from vault.crypto.token_key import TokenKeys
from vault.domain.categories import clean_value
from vault.domain.derived import resolve_derived
from vault.domain.errors import InvalidValue, UnknownDerived
from vault.domain.grants import GrantState, GrantTerms, check_read
from vault.errors import InvalidRequest, VaultError
from vault.oauth.pairwise import pairwise_sub
from vault.oauth.record_jws import RecordRefused, verify_record
from vault.services.context import VaultContext, Work
from vault.storage.database import is_sqlite, read_only
from vault.storage.tables import GrantRow, OAuthTokenFamilyRow, ServiceRow, SourceCategoryRow

__all__ = [
    "REQUEST_LIFETIME",
    "REQUEST_TYP",
    "Fetched",
    "Held",
    "HeldAtSource",
    "SourceBadAnswer",
    "SourceError",
    "SourceFetcher",
    "SourceUnavailable",
    "grant_ref",
    "held_categories",
    "hold_at_source",
    "refuse_held",
    "sign_request",
]

REQUEST_TYP = "source-request+jwt"
#: A request JWS lives this long (the contract: at most 60 s).
REQUEST_LIFETIME = timedelta(seconds=60)
#: Seconds a client is told to wait after a source did not answer.
RETRY_AFTER = 5
#: An answer is one record JWS (<= 64 KiB) in a small JSON object.
_MAX_ANSWER = 70_000


class HeldAtSource(InvalidRequest):
    """A write of a category held at source: the vault stores no value of it."""

    reason = "held_at_source"


class SourceError(VaultError):
    """A read needed a category held at source, and its source did not answer well.
    Nothing was released, logged or counted."""


class SourceUnavailable(SourceError):
    """The source did not answer in time (or could not be reached)."""


class SourceBadAnswer(SourceError):
    """The source answered something the vault will not release; `reason` says what:
    an error status, not a record, or a record that fails a check (bad_signature,
    wrong_issuer, wrong_category, invalid_value, ...)."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Held:
    """A category held at source: by which issuer, asked at which URL."""

    category: str
    service_id: str
    url: str
    service_name: str


@dataclass(frozen=True, slots=True)
class Fetched:
    """A record a source answered for one read, checked: its value and its JWS."""

    category: str
    issuer: str
    value: Any
    jws: str


# -- registration and the directory -----------------------------------------------------


def held_categories(session: Session) -> dict[str, Held]:
    """Every category held at source, by code."""
    rows = session.execute(
        select(SourceCategoryRow.category, SourceCategoryRow.service_id,
               SourceCategoryRow.url, ServiceRow.name)
        .join(ServiceRow, col(ServiceRow.id) == col(SourceCategoryRow.service_id))).all()
    return {r.category: Held(r.category, r.service_id, r.url, r.name) for r in rows}


def hold_at_source(work: Work, *, service_id: str, url: str, categories: Sequence[str]) -> None:
    """Register `categories` as held at `url` by `service_id` (in the caller's
    registration transaction). InvalidRequest if another source holds one already."""
    taken = work.session.execute(
        select(SourceCategoryRow.category, SourceCategoryRow.service_id)
        .where(col(SourceCategoryRow.category).in_(list(categories)))).all()
    if taken:
        names = ", ".join(f"{r.category} (by {r.service_id})" for r in taken)
        raise InvalidRequest(f"already held at source: {names}; one source holds a category")
    for category in categories:
        work.session.add(SourceCategoryRow(category=category, service_id=service_id, url=url,
                                           created_at=work.now))
    _changed()


_HELD_BY = select(col(SourceCategoryRow.service_id)).where(
    col(SourceCategoryRow.category) == sa.bindparam("category"))


def refuse_held(session: Session, category: str) -> None:
    """HeldAtSource if `category` is held at source (call before storing a value of it)."""
    # A statement built once on the connection, not `session.get`: on every issuer's
    # write (the hot path) the ORM's lookup cost more than the query.
    held_by = session.connection().execute(_HELD_BY, {"category": category}).scalar()
    if held_by is not None:
        service = session.get(ServiceRow, held_by)
        who = service.name if service is not None else held_by
        raise HeldAtSource(f"{category} is held at source by {who}: the vault stores no "
                           "value of it, and asks the source when a service reads it")


# Registrations in this process are seen at once; another process's (the CLI's) within
# the directory's time to live.
_generation = 0
_generation_lock = threading.Lock()


def _changed() -> None:
    global _generation
    with _generation_lock:
        _generation += 1


@dataclass(frozen=True, slots=True)
class _Directory:
    held: dict[str, Held]
    jwks: dict[str, dict[str, Any]]  # issuer -> its JWK Set
    loaded_at: float
    generation: int


class _Directories:
    """The held categories and their issuers' keys, re-read at most every `ttl` seconds:
    the read path asks it on every read, and must not pay a query for it."""

    def __init__(self, engine: Engine, ttl: float) -> None:
        self._engine = engine
        self._ttl = ttl
        self._current: _Directory | None = None
        self._lock = threading.Lock()

    def get(self) -> _Directory:
        d = self._current
        if d is not None and d.generation == _generation and \
                time.monotonic() - d.loaded_at < self._ttl:
            return d
        with self._lock:
            generation = _generation
            with Session(self._engine) as session:
                held = held_categories(session)
                issuers = {h.service_id for h in held.values()}
                jwks = {row.id: dict(row.jwks) for row in session.execute(
                    select(ServiceRow).where(col(ServiceRow.id).in_(issuers))).scalars()
                } if issuers else {}
            d = self._current = _Directory(held, jwks, time.monotonic(), generation)
        return d


# -- the request ------------------------------------------------------------------------


def grant_ref(grant_id: str) -> str:
    """What a source learns of the grant: SHA-256 hex of its id."""
    return hashlib.sha256(grant_id.encode("utf-8")).hexdigest()


def sign_request(keys: TokenKeys, *, issuer: str, url: str, sub: str, category: str,
                 purpose: str, grant_id: str, now: datetime, jti: str | None = None) -> str:
    """The request JWS for one category, signed by the current source-request key."""
    iat = int(now.timestamp())
    claims = {"iss": issuer, "aud": url, "sub": sub, "category": category,
              "purpose": purpose, "grant_ref": grant_ref(grant_id),
              "jti": jti or secrets.token_urlsafe(16), "iat": iat,
              "exp": iat + int(REQUEST_LIFETIME.total_seconds())}
    return keys.current.sign(claims, typ=REQUEST_TYP)


# -- the fetch --------------------------------------------------------------------------


def _named(details: Iterable[Mapping[str, Any]]) -> set[str]:
    """The categories terms name: released, or read by a derived answer they name."""
    names: set[str] = set()
    for d in details:
        names.update(c for c in d.get("categories") or () if isinstance(c, str))
        for name in d.get("derived") or ():
            try:
                names.update(resolve_derived(name).inputs)
            except (UnknownDerived, TypeError, ValueError):
                continue  # not ours to judge here: the locked read checks the grant
    return names


#: The unlocked pre-check in one query: the grant, its service's standing and the token's
#: family (an id that matches nothing when the token has none).
_PRECHECK = (
    sa.select(  # type: ignore[call-overload]  # nine columns: past select's typed overloads
        GrantRow.service_id, GrantRow.citizen_id, GrantRow.terms, GrantRow.state,
        GrantRow.reads, GrantRow.last_read_at, ServiceRow.active,
        col(OAuthTokenFamilyRow.grant_id).label("family_grant"),
        col(OAuthTokenFamilyRow.revoked_at).label("family_revoked_at"))
    .select_from(GrantRow)
    .outerjoin(ServiceRow, col(ServiceRow.id) == col(GrantRow.service_id))
    .outerjoin(OAuthTokenFamilyRow, col(OAuthTokenFamilyRow.id) == sa.bindparam("family"))
    .where(col(GrantRow.id) == sa.bindparam("grant"))
)


@lru_cache(maxsize=1024)
def _terms(text: str) -> GrantTerms:
    """A grant's terms, parsed once: they never change after the request (keyed by
    their exact text, so a cached copy is always the grant's own)."""
    return GrantTerms.from_json(orjson.loads(text))


@dataclass(frozen=True, slots=True)
class _Pre:
    citizen_id: str
    purpose: str
    needed: list[Held]


class SourceFetcher:
    """Asks sources for the categories a read needs (see the module docstring).

    One shared `httpx.AsyncClient` (connections kept alive: a loopback source costs the
    read a fraction of a millisecond more than its own answer time). `transport` is for
    tests; `timeout` is VAULT_SOURCE_TIMEOUT.
    """

    def __init__(self, ctx: VaultContext, *, keys: TokenKeys, pairwise_secret: bytes,
                 issuer: str, timeout: float = 2.0, ttl: float = 1.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._ctx = ctx
        self._keys = keys
        self._secret = pairwise_secret
        self._issuer = issuer
        self.timeout = timeout
        self._directory = _Directories(ctx.engine, ttl)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._on_loop = is_sqlite(ctx.engine)

    def held(self) -> Mapping[str, Held]:
        return self._directory.get().held

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                # httpx's own transport: a hand-written HTTP/1.1 client saved ~1.2 ms of
                # CPU a request (c1e3b1d) but is not worth its parsing risks here.
                transport=self._transport, timeout=httpx.Timeout(self.timeout),
                follow_redirects=False, headers={"User-Agent": "citizen-vault-source-client"},
                limits=httpx.Limits(max_keepalive_connections=64, max_connections=256))
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def fetch_for(self, *, service_id: str, grant_id: str,
                        token_family: str | None = None,
                        asked: Iterable[Mapping[str, Any]] | None = None
                        ) -> tuple[Fetched, ...]:
        """The records a read under `grant_id` needs from sources (none, usually: then
        no query is made). Raises the read's refusal, or a SourceError.

        `asked`: the access token's authorization_details, the grant's terms as issued
        (terms never change): a read whose token names nothing held at source costs no
        query here. The grant itself is still what decides, under the lock."""
        directory = self._directory.get()
        if not directory.held:
            return ()
        if asked is not None and not _named(asked) & directory.held.keys():
            return ()
        # One query. On SQLite it runs on the event loop: a deferred BEGIN on a local file
        # never waits for a writer, and the hop to a thread cost a held read more (in
        # wakeups under load) than the query. Elsewhere it may wait on the network or
        # the pool, so it goes to a thread.
        if self._on_loop:
            pre = self._precheck(directory, service_id, grant_id, token_family)
        else:
            pre = await asyncio.to_thread(self._precheck, directory, service_id, grant_id,
                                          token_family)
        if pre is None or not pre.needed:
            return ()
        now = self._ctx.clock()
        answers = await asyncio.gather(
            *(self._fetch_one(directory, h, pre, grant_id, now) for h in pre.needed),
            return_exceptions=True)
        for answer in answers:  # the first failure is the read's
            if isinstance(answer, BaseException):
                raise answer
        return tuple(a for a in answers if isinstance(a, Fetched))

    def _precheck(self, directory: _Directory, service_id: str, grant_id: str,
                  token_family: str | None) -> _Pre | None:
        """Check the grant without a lock; None if it is not this service's (the locked
        read then says so). The sources it needs, in category order."""
        with read_only(self._ctx.engine).connect() as conn:
            row = conn.execute(_PRECHECK, {"grant": grant_id,
                                           "family": token_family or ""}).first()
        if row is None or row.service_id != service_id:
            return None
        if token_family is not None and (row.family_grant != grant_id
                                         or row.family_revoked_at is not None):
            return None  # no such family, revoked, or another grant's: the locked read refuses it
        terms = _terms(row.terms)
        check_read(state=GrantState(row.state), terms=terms, now=self._ctx.clock(),
                   reads_used=row.reads, last_read_at=row.last_read_at,
                   service_active=bool(row.active))
        needed = set(terms.categories)
        for name in terms.derived:
            needed.update(resolve_derived(name).inputs)
        return _Pre(row.citizen_id, terms.purpose,
                    [directory.held[c] for c in sorted(needed & directory.held.keys())])

    async def _fetch_one(self, directory: _Directory, held: Held, pre: _Pre, grant_id: str,
                         now: datetime) -> Fetched | None:
        request = sign_request(
            self._keys, issuer=self._issuer, url=held.url,
            sub=pairwise_sub(self._secret, held.service_id, pre.citizen_id),
            category=held.category, purpose=pre.purpose, grant_id=grant_id, now=now)
        bad = f"the source holding {held.category} ({held.service_name}) answered"
        try:
            async with asyncio.timeout(self.timeout), self._http().stream(
                    "POST", held.url, json={"request": request}) as response:
                status = response.status_code
                body = bytearray()
                if status == 200:
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > _MAX_ANSWER:
                            raise SourceBadAnswer(f"{bad} more than {_MAX_ANSWER} bytes",
                                                  reason="too_large")
        except (TimeoutError, httpx.TimeoutException, httpx.TransportError):
            raise SourceUnavailable(f"the source holding {held.category} "
                                    f"({held.service_name}) did not answer in time") from None
        if status == 404:
            return None  # the source holds nothing for this citizen
        if status != 200:
            raise SourceBadAnswer(f"{bad} HTTP {status}", reason="source_error")
        return self._check(directory, held, bytes(body), now)

    def _check(self, directory: _Directory, held: Held, body: bytes,
               now: datetime) -> Fetched:
        bad = f"the source holding {held.category} ({held.service_name}) answered"
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            doc = None
        record = doc.get("record") if isinstance(doc, dict) else None
        if not isinstance(record, str):
            raise SourceBadAnswer(f"{bad} something that is not {{\"record\": JWS}}",
                                  reason="malformed")
        try:
            verified = verify_record(record, expected_issuer=held.service_id,
                                     jwks=directory.jwks.get(held.service_id, {"keys": []}),
                                     expected_category=held.category, now=now)
        except RecordRefused as exc:
            raise SourceBadAnswer(f"{bad} a record the vault refuses: {exc}",
                                  reason=exc.reason) from None
        try:
            value = clean_value(held.category, verified.value)
        except InvalidValue as exc:
            raise SourceBadAnswer(f"{bad} a value that fails its category's schema: {exc}",
                                  reason="invalid_value") from None
        return Fetched(held.category, held.service_id, value, record)

