"""Client authentication by `private_key_jwt` (RFC 7523 §2.2 and §3, OIDC Core §9).

A service proves who it is with a short-lived JWT signed (ES256) by a private key
whose public JWK the operator registered in its JWK Set (`ServiceRow.jwks`): the key
the header's `kid` names, or, without a `kid`, any key of the set (at most ten, so a
service rotating keys need not change how it signs). The token endpoint:

1. reads `client_assertion_type` (must be `CLIENT_ASSERTION_TYPE`) and `client_assertion`;
2. finds the service: by the form's `client_id`, or else `unverified_client_id(assertion)`;
3. calls `verify_client_assertion(...)` with that service's JWKS, which returns the
   authenticated client id or raises InvalidClientError.

Checks (RFC 7523 §3), after the signature: `iss` == `sub` == the client id (and the
form's `client_id`, when given); `aud` contains the token endpoint URL or the issuer;
`exp` present, not passed, and at most `MAX_ASSERTION_LIFETIME` (+ leeway) ahead, so a
stolen assertion is short-lived and the replay store stays small; `iat` and `nbf`, when
present, not in the future; `jti` present and never used before by this client while
the assertion could still pass the expiry check (the `JtiStore`).
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import col

from vault.domain.service_keys import key_by_kid
from vault.oauth._jws import Jws, numeric_date, parse_jws, verify_es256
from vault.oauth.errors import InvalidClientError
from vault.storage.tables import OAuthJtiRow

__all__ = [
    "CLIENT_ASSERTION_TYPE",
    "LEEWAY",
    "MAX_ASSERTION_LIFETIME",
    "MAX_CLIENT_ID_LENGTH",
    "MAX_JTI_LENGTH",
    "JtiStore",
    "MemoryJtiStore",
    "SqlJtiStore",
    "unverified_client_id",
    "verify_client_assertion",
]

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LIFETIME = timedelta(minutes=5)
LEEWAY = timedelta(seconds=30)
#: The widths of the oauth_jti columns.
MAX_CLIENT_ID_LENGTH = 40
MAX_JTI_LENGTH = 200
_WHAT = "client assertion"
#: Absent, a generic JWT, or the explicit type of draft-ietf-oauth-rfc7523bis; never an
#: access token (at+jwt) or any other JWT put to another use.
_TYP_ACCEPTED = frozenset({"jwt", "application/jwt", "client-authentication+jwt",
                           "application/client-authentication+jwt"})


def _refused(why: str) -> InvalidClientError:
    return InvalidClientError(f"client authentication failed: {why}")


# -- replay protection ------------------------------------------------------------------


class JtiStore(Protocol):
    def use(self, client_id: str, jti: str, *, expires_at: datetime, now: datetime) -> bool:
        """Record that `client_id` used `jti`, to be remembered until `expires_at`.

        True the first time; False when this client already used this jti and the
        record has not expired (a replay). Atomic: of two concurrent uses, one wins.
        """
        ...


class MemoryJtiStore:
    """A `JtiStore` in this process's memory (one worker; tests and tools)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._used: dict[tuple[str, str], datetime] = {}

    def __len__(self) -> int:
        return len(self._used)

    def use(self, client_id: str, jti: str, *, expires_at: datetime, now: datetime) -> bool:
        with self._lock:
            self._used = {k: t for k, t in self._used.items() if t > now}
            if (client_id, jti) in self._used:
                return False
            self._used[(client_id, jti)] = expires_at
            return True


class SqlJtiStore:
    """A `JtiStore` in the vault's database (table `oauth_jti`), shared by every worker.

    One statement decides: INSERT ... ON CONFLICT (client_id, jti) DO UPDATE the expiry
    only WHERE the old record has expired, RETURNING the row. It returns one row when the
    jti is new (or its old record lapsed) and none on a replay; concurrent uses of one
    jti serialise on the primary key, so exactly one of them succeeds. Expired rows are
    deleted at most once per `purge_every`.
    """

    def __init__(self, engine: Engine, *, purge_every: timedelta = timedelta(minutes=1)) -> None:
        if engine.dialect.name not in ("sqlite", "postgresql"):
            raise ValueError(f"no jti store for {engine.dialect.name}")
        self._engine = engine
        self._purge_every = purge_every
        self._purged_at: datetime | None = None
        self._lock = threading.Lock()

    def use(self, client_id: str, jti: str, *, expires_at: datetime, now: datetime) -> bool:
        if not 0 < len(client_id) <= MAX_CLIENT_ID_LENGTH or not 0 < len(jti) <= MAX_JTI_LENGTH:
            raise ValueError("client_id or jti does not fit the oauth_jti table")
        table = OAuthJtiRow.__table__  # type: ignore[attr-defined]
        insert = pg_insert if self._engine.dialect.name == "postgresql" else sqlite_insert
        new = insert(table).values(client_id=client_id, jti=jti, expires_at=expires_at)
        stmt = new.on_conflict_do_update(
            index_elements=[table.c.client_id, table.c.jti],
            set_={"expires_at": new.excluded.expires_at},
            where=table.c.expires_at <= now,
        ).returning(table.c.jti)  # a row back only when inserted or taken over
        with self._engine.begin() as conn:
            fresh = conn.execute(stmt).first() is not None
        self._maybe_purge(now)
        return fresh

    def _maybe_purge(self, now: datetime) -> None:
        with self._lock:
            if self._purged_at is not None and now - self._purged_at < self._purge_every:
                return
            self._purged_at = now
        with self._engine.begin() as conn:
            conn.execute(delete(OAuthJtiRow).where(col(OAuthJtiRow.expires_at) <= now))


# -- the assertion ----------------------------------------------------------------------


def unverified_client_id(assertion: str) -> str:
    """The `iss` of a well-formed assertion, to find the service's JWK. NOT authenticated:
    only `verify_client_assertion` says who the client is."""
    parsed = parse_jws(assertion, InvalidClientError, _WHAT)
    iss = parsed.claims.get("iss")
    if not isinstance(iss, str) or not 0 < len(iss) <= MAX_CLIENT_ID_LENGTH:
        raise _refused("the assertion has no usable 'iss'")
    return iss


def _verify_signature(parsed: Jws, jwks: Mapping[str, Any]) -> None:
    kid = parsed.header.get("kid")
    if kid is not None:
        jwk = key_by_kid(jwks, kid) if isinstance(kid, str) else None
        if jwk is None:
            raise _refused("the assertion's kid is not one of the client's registered keys")
        verify_es256(parsed, jwk, InvalidClientError, _WHAT)
        return
    keys = jwks.get("keys")
    if not isinstance(keys, list) or not keys:
        raise ValueError("jwks must be a JWK Set with at least one key")
    for jwk in keys:  # no kid: whichever registered key signed it (a set holds <= 10)
        try:
            verify_es256(parsed, jwk, InvalidClientError, _WHAT)
            return
        except InvalidClientError:
            continue
    raise InvalidClientError(f"the {_WHAT}'s signature does not verify")


def verify_client_assertion(
    assertion: str,
    *,
    client_id: str | None,
    jwks: Mapping[str, Any],
    audience: str | Collection[str],
    now: datetime,
    seen: JtiStore,
) -> str:
    """The client id `assertion` authenticates, or InvalidClientError.

    `client_id` is the form's (None when the request did not send one); `jwks` the
    registered JWK Set of the service the assertion claims to be; `audience` every
    value accepted in `aud` (the token endpoint URL and the issuer, RFC 7523 §3 item 3).
    The jti is recorded only when everything else holds.
    """
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    now = now.astimezone(UTC)
    accepted = {audience} if isinstance(audience, str) else set(audience)
    if not accepted:
        raise ValueError("at least one accepted audience is needed")

    parsed = parse_jws(assertion, InvalidClientError, _WHAT)  # alg is exactly ES256
    typ = parsed.header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.lower() not in _TYP_ACCEPTED):
        raise _refused("the JWT is not a client assertion (typ)")
    _verify_signature(parsed, jwks)
    claims = parsed.claims

    iss, sub = claims.get("iss"), claims.get("sub")
    if not isinstance(iss, str) or not 0 < len(iss) <= MAX_CLIENT_ID_LENGTH:
        raise _refused("the assertion has no usable 'iss'")
    if sub != iss:
        raise _refused("the assertion's 'sub' must equal its 'iss' (the client id)")
    if client_id is not None and client_id != iss:
        raise _refused("the assertion was made by another client than client_id")

    aud = claims.get("aud")
    auds = [aud] if isinstance(aud, str) else aud
    if not isinstance(auds, list) or not any(isinstance(a, str) and a in accepted for a in auds):
        raise _refused("the assertion's 'aud' must name this authorization server")

    try:
        exp, iat, nbf = (numeric_date(claims, n) for n in ("exp", "iat", "nbf"))
    except ValueError as exc:
        raise _refused(f"the assertion's '{exc}' is not a NumericDate") from None
    t, leeway = now.timestamp(), LEEWAY.total_seconds()
    if exp is None:
        raise _refused("the assertion has no 'exp'")
    if exp <= t - leeway:
        raise _refused("the assertion has expired")
    if exp > t + (MAX_ASSERTION_LIFETIME + LEEWAY).total_seconds():
        raise _refused(f"the assertion's 'exp' is more than {MAX_ASSERTION_LIFETIME} ahead")
    if (iat is not None and iat > t + leeway) or (nbf is not None and nbf > t + leeway):
        raise _refused("the assertion is not valid yet")

    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
        raise _refused(f"the assertion needs a 'jti' of 1 to {MAX_JTI_LENGTH} characters")
    # Remembered for as long as the expiry check above could still pass.
    remember_until = datetime.fromtimestamp(exp, UTC) + LEEWAY
    if not seen.use(iss, jti, expires_at=remember_until, now=now):
        raise _refused("this assertion was used before (jti replay)")
    return iss
