"""For a service that holds data at source (ARCHITECTURE §8): checking the vault's asks.

A category registered with `vault service add --issues CAT --source-url URL` is never
stored in the vault. When a service reads it under a grant, the vault POSTs to URL
`{"request": "<compact JWS>"}`: ES256, header `{"alg":"ES256","typ":"source-request+jwt",
"kid"}`, signed by a key the vault publishes in its `/oauth/jwks`, claims

    {"iss": vault URL, "aud": URL, "sub": the citizen's pairwise subject FOR THE SOURCE,
     "category", "purpose", "grant_ref": SHA-256 hex of the grant id, "jti", "iat", "exp"}

with `exp` at most 60 s after `iat`. The source checks it (`verify_source_request`),
finds the citizen by `sub` (the subject it was given when the citizen linked it), and
answers `{"record": key.sign_record(category, value, issuer=client_id)}` (200), or 404
when it holds nothing for that citizen. The vault checks the record as any issuer's.

`verify_source_request` refuses with `SourceRequestInvalid`, whose `code` says why:
`malformed`, `unknown_key`, `bad_signature`, `wrong_audience`, `wrong_issuer`,
`expired`, `not_yet_valid`, `too_long_lived`, `replayed`. An `unknown_key` may mean the
vault rotated its key: fetch its JWKS again and retry once.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clients.service.errors import SourceRequestInvalid
from clients.service.jws import JwsRefused, verify_es256

__all__ = ["MAX_LIFETIME", "REQUEST_TYP", "SeenRequests", "SourceRequest",
           "verify_source_request"]

REQUEST_TYP = "source-request+jwt"
#: The longest a request may live (`exp - iat`), as the contract says.
MAX_LIFETIME = 60
#: Seconds the vault's clock may run ahead of ours.
CLOCK_SKEW = 60
_MAX_BYTES = 8192
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class SourceRequest:
    """A request from the vault whose signature and claims checked out."""

    issuer: str
    audience: str
    sub: str
    category: str
    purpose: str
    grant_ref: str
    jti: str
    issued_at: int
    expires_at: int
    kid: str


class SeenRequests:
    """The `jti`s of requests already answered, kept until they expire: a request is
    answered once (replay protection). Thread-safe; in memory, for one process."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()

    def remember(self, jti: str, expires_at: int, now: float) -> bool:
        """True if `jti` is new (now remembered), False if it was seen before."""
        with self._lock:
            if len(self._seen) > 1024:  # forget the expired ones now and then
                self._seen = {j: e for j, e in self._seen.items() if e > now}
            if jti in self._seen:
                return False
            self._seen[jti] = expires_at
            return True


def _refuse(code: str, why: str) -> SourceRequestInvalid:
    return SourceRequestInvalid(f"the vault's request is refused: {why}", code=code)


def _text(claims: Mapping[str, Any], name: str, limit: int = 2000) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise _refuse("malformed", f"its '{name}' is not text")
    return value


def _seconds(claims: Mapping[str, Any], name: str) -> int:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= 2**53:
        raise _refuse("malformed", f"its '{name}' is not whole seconds since the epoch")
    return value


def _checked_signature(compact: str, jwks: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The claims and kid, if a key of `jwks` signed `compact` as a source request."""
    if not isinstance(compact, str) or not compact or len(compact) > _MAX_BYTES:
        raise _refuse("malformed", "it is not a compact JWS")
    try:
        return verify_es256(compact, jwks, typ=REQUEST_TYP)
    except JwsRefused as exc:
        raise _refuse(exc.code, exc.why) from None


def verify_source_request(compact: str, jwks: Mapping[str, Any], *, audience: str,
                          issuer: str | None = None, now: float | None = None,
                          seen: SeenRequests | None = None) -> SourceRequest:
    """The request `compact` holds, if a key of `jwks` (the vault's /oauth/jwks) signed
    it for `audience` (this source's URL, exactly as registered) and it is live; with
    `seen`, only the first time its jti is presented. SourceRequestInvalid otherwise."""
    claims, kid = _checked_signature(compact, jwks)
    iss, aud = _text(claims, "iss"), claims.get("aud")
    if aud != audience:
        raise _refuse("wrong_audience", "it is meant for another source")
    if issuer is not None and iss != issuer:
        raise _refuse("wrong_issuer", "another vault sent it")
    sub, category, purpose = (_text(claims, n, 200) for n in ("sub", "category", "purpose"))
    grant_ref, jti = _text(claims, "grant_ref", 64), _text(claims, "jti", 200)
    if not _SHA256_HEX.fullmatch(grant_ref):
        raise _refuse("malformed", "its 'grant_ref' is not SHA-256 hex")
    iat, exp = _seconds(claims, "iat"), _seconds(claims, "exp")
    t = time.time() if now is None else now
    if not math.isfinite(t):
        raise ValueError("now must be a finite number of seconds")
    if exp - iat > MAX_LIFETIME or exp <= iat:
        raise _refuse("too_long_lived", f"it lives longer than {MAX_LIFETIME} s")
    if exp <= t:
        raise _refuse("expired", "it has expired")
    if iat > t + CLOCK_SKEW:
        raise _refuse("not_yet_valid", "it was issued in the future")
    if seen is not None and not seen.remember(jti, exp, t):
        raise _refuse("replayed", "it was presented before")
    return SourceRequest(issuer=iss, audience=audience, sub=sub, category=category,
                         purpose=purpose, grant_ref=grant_ref, jti=jti, issued_at=iat,
                         expires_at=exp, kid=kid)
