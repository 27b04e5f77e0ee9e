"""The whole protocol of the SDK, as generators that never do I/O themselves (sans-IO).

Each operation is a *flow*: a generator that yields what it needs done and is sent what
came of it. It yields

* an `HttpRequest`, and is sent the `HttpResponse`;
* a `Sleep`, and is sent None once that many seconds have passed;
* a `RefreshTokens`, and is sent None once the client has run `ClientCore.refresh` for
  that grant while holding its refresh lock (so two reads racing to refresh a grant
  rotate its refresh token once: the second finds it already rotated and stops);

and returns its result (or raises a `clients.service.errors` exception). `VaultClient`
(sync) and `AsyncVaultClient` (async) only run flows: all of building requests, reading
answers, PKCE, state, polling and token bookkeeping is here, once.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from clients.service.discovery import ServerMetadata, metadata_url, same_issuer
from clients.service.errors import (
    AuthorizationFailed,
    GrantDenied,
    GrantExpired,
    GrantPending,
    ProtocolError,
    RecordInvalid,
    VaultClientError,
)
from clients.service.keys import ServiceKey
from clients.service.messages import (
    HttpRequest,
    HttpResponse,
    bearer_error,
    json_object,
    oauth_error,
    problem_error,
    token_grant,
)
from clients.service.pkce import code_challenge, new_state, new_verifier, same_state
from clients.service.records import verify_record
from clients.service.results import (
    BackchannelRequest,
    Grant,
    GrantStatus,
    Introspection,
    PendingAuthorization,
    Provenance,
    RecordWritten,
    Release,
    from_timestamp,
)
from clients.service.terms import PersonalData

__all__ = [
    "ASSERTION_LIFETIME",
    "CIBA_GRANT_TYPE",
    "CLIENT_ASSERTION_TYPE",
    "JWKS_LIFETIME",
    "REFRESH_MARGIN",
    "SLOW_DOWN_STEP",
    "ClientCore",
    "Effect",
    "Flow",
    "RefreshTokens",
    "Sleep",
]

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CIBA_GRANT_TYPE = "urn:openid:params:grant-type:ciba"
#: A client assertion lives a minute (the vault refuses more than five).
ASSERTION_LIFETIME = 60
#: Access tokens this close to expiry are refreshed before use, not after a 401.
REFRESH_MARGIN = 30.0
#: CIBA §11: after slow_down, poll this many seconds further apart, for good.
SLOW_DOWN_STEP = 5
#: The resource server, under the issuer (it is not in the RFC 8414 metadata).
RESOURCE_PREFIX = "/v1"
#: Seconds an issuer's JWKS is kept before it is fetched again (a key not in it is
#: looked for once more at once: the issuer may have rotated).
JWKS_LIFETIME = 300.0
#: The most items one series batch may hold (ARCHITECTURE §8 "Series").
MAX_BATCH_ITEMS = 1000

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class RefreshTokens:
    """Run `ClientCore.refresh(grant, seen)` under the client's refresh lock."""

    grant: Grant
    seen: str


Effect = HttpRequest | Sleep | RefreshTokens
Flow = Generator[Effect, HttpResponse | None, T]


def _exchange(request: HttpRequest) -> Flow[HttpResponse]:
    response = yield request
    if not isinstance(response, HttpResponse):
        raise TypeError("a flow must be sent the HttpResponse of the request it yielded")
    return response


def _callback_params(callback: str | Mapping[str, str]) -> dict[str, str]:
    """The authorization response's parameters: from the full callback URL, its query
    string, or an already parsed mapping (a web framework's query params)."""
    if not isinstance(callback, str):
        return {str(k): str(v) for k, v in callback.items()}
    query = urlsplit(callback).query if "?" in callback else callback
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in params:  # RFC 6749 §3.1: a parameter must not be repeated
            raise AuthorizationFailed(f"the callback repeats '{name[:40]}'",
                                      code="invalid_callback")
        params[name] = value
    return params


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _details(terms: PersonalData) -> str:
    if not isinstance(terms, PersonalData):
        raise TypeError("terms must be PersonalData(...)")
    return json.dumps([terms.to_json()], separators=(",", ":"), ensure_ascii=False)


def _seconds(doc: Mapping[str, Any], name: str, what: str, default: int | None = None) -> int:
    value = doc.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProtocolError(f"{what}: the answer has no usable '{name}'")
    return value


class ClientCore:
    """One service's conversation with one vault: its identity, key, clock, the cached
    metadata, and the polling state of its backchannel requests. Thread-safe enough to
    share: the cache is written once, the polling state per request."""

    def __init__(self, issuer: str, *, client_id: str, key: ServiceKey,
                 clock: Callable[[], float] = time.time,
                 on_refresh: Callable[[Grant], None] | None = None) -> None:
        if not isinstance(key, ServiceKey):
            raise TypeError("key must be a ServiceKey")
        if not isinstance(client_id, str) or not client_id:
            raise ValueError("client_id is the service id the vault gave (svc_...)")
        self.metadata_url = metadata_url(issuer)  # checks the issuer's shape
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.key = key
        self.clock = clock
        self.on_refresh = on_refresh
        self._metadata: ServerMetadata | None = None
        #: auth_req_id -> (earliest next poll, interval, expiry), unix seconds.
        self._polls: dict[str, tuple[float, int, float]] = {}
        #: issuer client_id -> (its JWKS, when fetched): to check issued records.
        self._jwks: dict[str, tuple[Mapping[str, Any], float]] = {}

    # -- discovery and client authentication ----------------------------------------------

    def metadata(self) -> Flow[ServerMetadata]:
        """The vault's RFC 8414 metadata, fetched once and then kept."""
        if self._metadata is None:
            response = yield from _exchange(HttpRequest.get(self.metadata_url))
            if response.status != 200:
                raise ProtocolError(f"the metadata document answered HTTP {response.status}",
                                    status=response.status)
            doc = json_object(response, "authorization server metadata")
            self._metadata = ServerMetadata.from_json(doc, expected_issuer=self.issuer)
        return self._metadata

    def client_assertion(self, audience: str) -> str:
        """A fresh private_key_jwt assertion (RFC 7523 §3): one per request, a new jti."""
        now = int(self.clock())
        return self.key.sign_jwt({
            "iss": self.client_id, "sub": self.client_id, "aud": audience,
            "jti": secrets.token_urlsafe(24), "iat": now, "exp": now + ASSERTION_LIFETIME})

    def _post(self, md: ServerMetadata, url: str, fields: list[tuple[str, str | None]]
              ) -> Flow[HttpResponse]:
        auth: list[tuple[str, str | None]] = [
            ("client_id", self.client_id), ("client_assertion_type", CLIENT_ASSERTION_TYPE),
            ("client_assertion", self.client_assertion(md.issuer))]
        return (yield from _exchange(HttpRequest.form(url, auth + fields)))

    def _tokens(self, md: ServerMetadata, fields: list[tuple[str, str | None]], what: str,
                *, previous: Grant | None = None) -> Flow[Grant]:
        sent = self.clock()  # expiry counts from before the request: never too late
        response = yield from self._post(md, md.token_endpoint, fields)
        if response.status != 200:
            raise oauth_error(response, what, now=self.clock())
        return token_grant(json_object(response, what), now=sent, previous=previous)

    # -- authorization code with PAR and PKCE ----------------------------------------------

    def start_authorization(self, terms: PersonalData, redirect_uri: str
                            ) -> Flow[PendingAuthorization]:
        """Push the request (RFC 9126) and return where to send the citizen."""
        details = _details(terms)
        md = yield from self.metadata()
        verifier, state = new_verifier(), new_state()
        sent = self.clock()
        response = yield from self._post(md, md.par_endpoint, [
            ("response_type", "code"), ("redirect_uri", redirect_uri),
            ("code_challenge", code_challenge(verifier)), ("code_challenge_method", "S256"),
            ("state", state), ("authorization_details", details)])
        what = "pushed authorization request"
        if response.status not in (200, 201):
            raise oauth_error(response, what, now=self.clock())
        doc = json_object(response, what)
        request_uri = doc.get("request_uri")
        if not isinstance(request_uri, str) or not request_uri:
            raise ProtocolError(f"{what}: the answer has no request_uri")
        expires_in = _seconds(doc, "expires_in", what)
        url = _with_query(md.authorization_endpoint, client_id=self.client_id,
                          request_uri=request_uri)
        return PendingAuthorization(url=url, state=state, code_verifier=verifier,
                                    redirect_uri=redirect_uri, request_uri=request_uri,
                                    issuer=md.issuer, expires_at=from_timestamp(sent + expires_in))

    def finish_authorization(self, callback: str | Mapping[str, str],
                             pending: PendingAuthorization) -> Flow[Grant]:
        """Check the redirect back (state, then RFC 9207 iss) and trade the code for tokens."""
        params = _callback_params(callback)
        # First state: a callback that is not this request's answer says nothing at all.
        if not same_state(params.get("state"), pending.state):
            raise AuthorizationFailed("the callback's state is not this request's: a forged "
                                      "or mixed-up callback", code="state_mismatch")
        md = yield from self.metadata()
        iss = params.get("iss")
        if iss is None or iss != pending.issuer or not same_issuer(iss, md.issuer):
            raise AuthorizationFailed("the callback does not come from this vault (RFC 9207 "
                                      "iss)", code="issuer_mismatch")
        error = params.get("error")
        if error is not None:
            description = params.get("error_description") or error
            if error == "access_denied":
                raise GrantDenied(f"the citizen declined: {description}", code=error)
            raise AuthorizationFailed(f"the authorization failed: {description}", code=error)
        code = params.get("code")
        if not code:
            raise AuthorizationFailed("the callback carries no code", code="no_code")
        return (yield from self._tokens(md, [
            ("grant_type", "authorization_code"), ("code", code),
            ("redirect_uri", pending.redirect_uri), ("code_verifier", pending.code_verifier)],
            "authorization code exchange"))

    # -- CIBA, poll mode --------------------------------------------------------------------

    def request_by_subject(self, sub: str, terms: PersonalData, *,
                           binding_message: str | None = None,
                           requested_expiry: int | None = None) -> Flow[BackchannelRequest]:
        """Ask a citizen the service already knows (by its pairwise `sub`), in their wallet."""
        details = _details(terms)
        md = yield from self.metadata()
        url = md.endpoint("backchannel_endpoint")
        sent = self.clock()
        response = yield from self._post(md, url, [
            ("login_hint", sub), ("authorization_details", details),
            ("binding_message", binding_message),
            ("requested_expiry", None if requested_expiry is None else str(requested_expiry))])
        what = "backchannel authentication request"
        if response.status != 200:
            raise oauth_error(response, what, now=self.clock())
        doc = json_object(response, what)
        auth_req_id = doc.get("auth_req_id")
        if not isinstance(auth_req_id, str) or not auth_req_id:
            raise ProtocolError(f"{what}: the answer has no auth_req_id")
        return BackchannelRequest(
            auth_req_id=auth_req_id, sub=sub, issued_at=from_timestamp(sent),
            expires_at=from_timestamp(sent + _seconds(doc, "expires_in", what)),
            interval=_seconds(doc, "interval", what, default=5))

    def wait(self, bc: BackchannelRequest, timeout: float | None = None) -> Flow[Grant]:
        """Poll the token endpoint until the citizen answers (CIBA §7.3), never sooner than
        the interval (plus SLOW_DOWN_STEP for every slow_down) after the last poll.

        GrantDenied if they decline; GrantExpired once the request has expired
        unanswered; GrantPending when `timeout` seconds pass first (wait again later
        with the same `bc`: the polling pace is remembered).
        """
        md = yield from self.metadata()
        start = self.clock()
        for key in [k for k, (_, _, end) in self._polls.items() if end < start]:
            self._polls.pop(key, None)  # requests long over: forget them
        expiry = bc.expires_at.timestamp()
        limit = expiry if timeout is None else min(expiry, start + max(0.0, timeout))
        next_at, interval, _ = self._polls.get(
            bc.auth_req_id, (bc.issued_at.timestamp() + bc.interval, bc.interval, expiry))
        while True:
            now = self.clock()
            if next_at > limit:
                if limit > now:
                    yield Sleep(limit - now)
                if limit >= expiry:
                    raise GrantExpired("the request expired before the citizen answered",
                                       code="expired_token")
                raise GrantPending(f"the citizen has not answered within {timeout} s",
                                   code="authorization_pending")
            if next_at > now:
                yield Sleep(next_at - now)
            sent = self.clock()
            try:
                grant = yield from self._tokens(
                    md, [("grant_type", CIBA_GRANT_TYPE), ("auth_req_id", bc.auth_req_id)],
                    "backchannel token request")
            except VaultClientError as exc:
                if exc.code == "slow_down":
                    interval += SLOW_DOWN_STEP
                elif exc.code != "authorization_pending":
                    self._polls.pop(bc.auth_req_id, None)
                    raise
                next_at = sent + interval
                self._polls[bc.auth_req_id] = (next_at, interval, expiry)
                continue
            self._polls.pop(bc.auth_req_id, None)
            if grant.sub != bc.sub:
                raise ProtocolError("the backchannel grant is for another subject")
            return grant

    # -- using a grant -------------------------------------------------------------------------

    def refresh(self, grant: Grant, seen: str) -> Flow[None]:
        """Rotate `grant`'s tokens, updating it in place, unless its refresh token is no
        longer `seen` (another caller already rotated it)."""
        if grant.refresh_token is None or grant.refresh_token != seen:
            return
        md = yield from self.metadata()
        fresh = yield from self._tokens(
            md, [("grant_type", "refresh_token"), ("refresh_token", seen)],
            "token refresh", previous=grant)
        grant.access_token, grant.refresh_token = fresh.access_token, fresh.refresh_token
        grant.expires_at = fresh.expires_at
        grant.authorization_details = fresh.authorization_details
        if self.on_refresh is not None:
            self.on_refresh(grant)

    def _bearer_get(self, grant: Grant, path: str, what: str) -> Flow[Mapping[str, Any]]:
        return (yield from self._bearer(grant, "GET", path, None, what))

    def _bearer(self, grant: Grant, method: str, path: str, body: Mapping[str, Any] | None,
                what: str, *, ok: int = 200) -> Flow[Mapping[str, Any]]:
        """One request to the resource server under `grant`, its tokens refreshed when
        they are (about to be) stale. Sending it again after a refresh is safe: a write
        sends the very same JWS, which the vault answers as before."""
        if not isinstance(grant, Grant):
            raise TypeError("grant must be a Grant")
        url = self.issuer + RESOURCE_PREFIX + path

        def request(token: str) -> HttpRequest:
            if method == "GET":
                return HttpRequest.get(url, bearer=token)
            return HttpRequest.json(method, url, body, bearer=token)

        seen = grant.refresh_token
        if seen is not None and grant.expires_at.timestamp() - self.clock() <= REFRESH_MARGIN:
            yield RefreshTokens(grant, seen)
        used = grant.access_token
        response = yield from _exchange(request(used))
        # RFC 6750 §3.1 invalid_token: expired or revoked; refresh and try exactly once more.
        if response.status == 401 and bearer_error(response) == "invalid_token" and \
                grant.refresh_token is not None:
            if grant.access_token == used:  # nobody refreshed it meanwhile
                yield RefreshTokens(grant, grant.refresh_token)
            response = yield from _exchange(request(grant.access_token))
        if response.status != ok:
            raise problem_error(response, what, now=self.clock())
        return json_object(response, what)

    def read(self, grant: Grant) -> Flow[Release]:
        """GET /v1/data: what the grant allows, logged by the vault before it answers;
        each issued value's JWS checked with its issuer's keys (`verified_issuer`)."""
        doc = yield from self._bearer_get(grant, "/data", "read")
        try:
            release = Release.from_json(doc)
        except ValueError as exc:
            raise ProtocolError(f"read: {exc}") from None
        if release.grant_id != grant.grant_id:
            raise ProtocolError("read: the vault answered for another grant")
        checked: dict[str, Provenance] = {}
        for category, p in release.provenance.items():
            if p.source == "series":  # each batch signed on its own, over its items
                checked[category] = yield from self._verified_batches(category, p, release)
                continue
            verified = yield from self._verified_issuer(category, p, release.data.get(category))
            checked[category] = replace(p, verified_issuer=verified)
        return replace(release, provenance=checked)

    def _verified_batches(self, category: str, p: Provenance, release: Release
                          ) -> Flow[Provenance]:
        """A series' provenance with each batch's `verified_issuer` checked against the
        items released for that batch (`{"items": [...]}` is what the issuer signed)."""
        try:
            items = {b.version: list(b.items) for b in release.series(category).batches}
        except ValueError as exc:
            raise ProtocolError(f"read: {exc}") from None
        batches = []
        for b in p.batches:
            one = Provenance(b.source, b.issuer, b.version, b.record)
            verified = yield from self._verified_issuer(
                category, one, {"items": items[b.version]} if b.version in items else None)
            batches.append(replace(b, verified_issuer=verified))
        return replace(p, batches=tuple(batches))

    # -- issued records ----------------------------------------------------------------------

    def issuer_jwks(self, client_id: str, *, fresh: bool = False) -> Flow[Mapping[str, Any]]:
        """GET /services/{client_id}/jwks: the issuer's public keys, kept JWKS_LIFETIME
        seconds (`fresh`: fetched again now)."""
        kept = self._jwks.get(client_id)
        if kept is not None and not fresh and self.clock() - kept[1] < JWKS_LIFETIME:
            return kept[0]
        url = f"{self.issuer}/services/{quote(client_id, safe='')}/jwks"
        response = yield from _exchange(HttpRequest.get(url))
        what = "issuer keys"
        if response.status != 200:
            raise problem_error(response, what, now=self.clock())
        jwks = json_object(response, what)
        self._jwks[client_id] = (jwks, self.clock())
        return jwks

    def _verified_issuer(self, category: str, p: Provenance, value: Any) -> Flow[str | None]:
        """`p.issuer` if `p.record` is that issuer's signature, for `category`, over
        exactly `value` (the value released); None when there is no JWS or it fails."""
        if p.source != "issuer" or p.issuer is None or p.record is None:
            return None
        for fresh in (False, True):
            try:
                jwks = yield from self.issuer_jwks(p.issuer, fresh=fresh)
            except VaultClientError:
                return None  # no keys to check with: not verified
            try:
                signed = verify_record(p.record, jwks, issuer=p.issuer, category=category,
                                       now=self.clock())
            except RecordInvalid as exc:
                if exc.code == "unknown_key" and not fresh:
                    continue  # perhaps a key newer than the kept set
                return None
            return p.issuer if signed.value == value else None
        return None

    def write_record(self, grant: Grant, category: str, value: Any, *,
                     jti: str | None = None, exp: int | None = None) -> Flow[RecordWritten]:
        """PUT /v1/records/{category}: the record signed by this service's key as an
        issuer's (`ServiceKey.sign_record`) and written for the grant's citizen. The same
        `jti` with the same content is a repeat the vault answers as before; RecordRefused
        (its `code` the reason) when the vault stores nothing."""
        jws = self.key.sign_record(category, value, issuer=self.client_id, jti=jti,
                                   iat=int(self.clock()), exp=exp)
        return (yield from self._written(grant, "PUT", category, {"record": jws}, 201,
                                         "record write"))

    def append_items(self, grant: Grant, category: str, items: Sequence[Any], *,
                     jti: str | None = None, exp: int | None = None) -> Flow[RecordWritten]:
        """POST /v1/records/{category}/items: a batch of 1 to 1,000 items appended to a
        series for the grant's citizen, signed once, as this issuer's record whose value
        is `{"items": [...]}`. The same `jti` with the same items is a repeat the vault
        answers as before; RecordRefused (its `code` the reason) when it keeps nothing."""
        if isinstance(items, str | bytes) or not isinstance(items, Sequence):
            raise TypeError("items must be a list of the series' items")
        if not 1 <= len(items) <= MAX_BATCH_ITEMS:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH_ITEMS} items")
        jws = self.key.sign_record(category, {"items": list(items)}, issuer=self.client_id,
                                   jti=jti, iat=int(self.clock()), exp=exp)
        return (yield from self._written(grant, "POST", category, {"record": jws}, 201,
                                         "batch append", suffix="/items"))

    def withdraw_record(self, grant: Grant, category: str) -> Flow[RecordWritten]:
        """DELETE /v1/records/{category}: withdraw this service's current record of the
        category for the grant's citizen (its `version` is the one withdrawn)."""
        return (yield from self._written(grant, "DELETE", category, None, 200,
                                         "record withdrawal"))

    def _written(self, grant: Grant, method: str, category: str,
                 body: Mapping[str, Any] | None, ok: int, what: str, *,
                 suffix: str = "") -> Flow[RecordWritten]:
        if not isinstance(category, str) or not category:
            raise ValueError("the category must be a non-empty string")
        doc = yield from self._bearer(
            grant, method, f"/records/{quote(category, safe='')}{suffix}", body, what, ok=ok)
        try:
            return RecordWritten.from_json(doc)
        except ValueError as exc:
            raise ProtocolError(f"{what}: {exc}") from None

    def grant_status(self, grant: Grant) -> Flow[GrantStatus]:
        """GET /v1/grants/{id}: the grant's state, terms and reads so far."""
        doc = yield from self._bearer_get(grant, f"/grants/{quote(grant.grant_id, safe='')}",
                                          "grant status")
        try:
            return GrantStatus.from_json(doc)
        except ValueError as exc:
            raise ProtocolError(f"grant status: {exc}") from None

    # -- token management ------------------------------------------------------------------------

    def revoke_tokens(self, grant: Grant) -> Flow[None]:
        """RFC 7009: end the grant's token family (its refresh token, else its access
        token). The grant itself stays as the citizen left it."""
        md = yield from self.metadata()
        url = md.endpoint("revocation_endpoint")
        token, hint = ((grant.refresh_token, "refresh_token") if grant.refresh_token
                       else (grant.access_token, "access_token"))
        response = yield from self._post(md, url, [("token", token), ("token_type_hint", hint)])
        if response.status != 200:
            raise oauth_error(response, "token revocation", now=self.clock())

    def introspect(self, token: str, *, token_type_hint: str | None = None
                   ) -> Flow[Introspection]:
        """RFC 7662: whether the vault still honours `token`, and what it stands for."""
        md = yield from self.metadata()
        url = md.endpoint("introspection_endpoint")
        response = yield from self._post(md, url, [("token", token),
                                                   ("token_type_hint", token_type_hint)])
        what = "token introspection"
        if response.status != 200:
            raise oauth_error(response, what, now=self.clock())
        try:
            return Introspection.from_json(json_object(response, what))
        except ValueError as exc:
            raise ProtocolError(f"{what}: {exc}") from None
