"""The authorization code flow as the SDK speaks it, against a scripted server: discovery,
the pushed request (PKCE S256, state, authorization_details, a fresh private_key_jwt
assertion per request), the callback's checks (state, RFC 9207 iss, errors) and the code
exchange. Each test runs with the sync and the async client."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt as pyjwt
import pytest

from clients.service import (
    AuthorizationFailed,
    GrantDenied,
    GrantExhausted,
    GrantExpired,
    GrantPaused,
    GrantPending,
    GrantRevoked,
    PendingAuthorization,
    ProtocolError,
    RateLimited,
    ServiceSuspended,
    VaultClientError,
    VaultUnavailable,
)
from clients.service.discovery import metadata_url

PAR = "/oauth/par"
TOKEN = "/oauth/token"
WELL_KNOWN = "/.well-known/oauth-authorization-server"
REQUEST_URI = "urn:ietf:params:oauth:request_uri:abc123"
REDIRECT = "https://badges.example.gov/cb"


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def start(sdk: Any, fake: Any, terms: Any) -> PendingAuthorization:
    fake.answer(PAR, httpx.Response(201, json={"request_uri": REQUEST_URI, "expires_in": 60}))
    pending: PendingAuthorization = sdk.start_authorization(terms, redirect_uri=REDIRECT)
    return pending


def callback(pending: PendingAuthorization, **params: str | None) -> str:
    values = {"code": "c0de", "state": pending.state, "iss": pending.issuer, **params}
    query = urlencode({k: v for k, v in values.items() if v is not None})
    return f"{pending.redirect_uri}?{query}"


# -- the pushed request --------------------------------------------------------------------


def test_the_pushed_request_carries_exactly_pkce_state_and_the_terms(
        sdk: Any, fake: Any, fake_time: Any, terms: Any) -> None:
    pending = start(sdk, fake, terms)
    [form] = fake.forms(PAR)
    assert set(form) == {"client_id", "client_assertion_type", "client_assertion",
                         "response_type", "redirect_uri", "code_challenge",
                         "code_challenge_method", "state", "authorization_details"}
    fake.assertion_claims(form, now=fake_time.t)
    assert form["response_type"] == "code" and form["redirect_uri"] == REDIRECT
    assert form["code_challenge_method"] == "S256"
    assert form["code_challenge"] == s256(pending.code_verifier)  # RFC 7636 §4.2
    assert len(pending.code_verifier) >= 43 and len(form["code_challenge"]) == 43
    assert form["state"] == pending.state and len(pending.state) >= 32
    assert json.loads(form["authorization_details"]) == [{
        "type": "personal_data", "purpose": "eligibility_assessment",
        "categories": ["address.home"], "derived": ["age_over_65"], "duration": "P30D",
        "access": {"mode": "periodic", "max_reads": 3}, "data_life": "P30D",
        "justification": "To check you can have a Blue Badge."}]
    # Where to send the browser: the advertised endpoint, with client_id and request_uri.
    url = urlsplit(pending.url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == fake.metadata["authorization_endpoint"]
    assert parse_qs(url.query) == {"client_id": [fake.client_id], "request_uri": [REQUEST_URI]}
    assert pending.request_uri == REQUEST_URI and pending.issuer == fake.issuer
    assert pending.expires_at == datetime.fromtimestamp(fake_time.t + 60, UTC)


def test_every_request_has_its_own_state_verifier_and_assertion(
        sdk: Any, fake: Any, terms: Any) -> None:
    pendings = [start(sdk, fake, terms) for _ in range(3)]
    forms = fake.forms(PAR)
    assert len({p.state for p in pendings}) == 3
    assert len({p.code_verifier for p in pendings}) == 3
    jtis = {pyjwt.decode(f["client_assertion"], options={"verify_signature": False})["jti"]
            for f in forms}
    assert len(jtis) == 3
    assert len(fake.sent(WELL_KNOWN)) == 1  # the metadata was fetched once for all of it


def test_the_authorization_endpoint_keeps_its_own_query(
        sdk: Any, fake: Any, terms: Any) -> None:
    fake.metadata["authorization_endpoint"] = f"{fake.issuer}/oauth/authorize?ui=simple"
    pending = start(sdk, fake, terms)
    assert parse_qs(urlsplit(pending.url).query) == {
        "ui": ["simple"], "client_id": [fake.client_id], "request_uri": [REQUEST_URI]}


@pytest.mark.parametrize(("error", "status"), [
    ("invalid_request", 400), ("invalid_authorization_details", 400),
    ("invalid_scope", 400), ("invalid_client", 401)])
def test_a_refused_push_is_a_protocol_error_with_the_rfc6749_code(
        sdk: Any, fake: Any, kit: Any, terms: Any, error: str, status: int) -> None:
    fake.answer(PAR, kit.oauth_error(error, status))
    with pytest.raises(ProtocolError) as caught:
        sdk.start_authorization(terms, redirect_uri=REDIRECT)
    assert caught.value.code == error and caught.value.status == status
    assert f"because {error}" in str(caught.value)


@pytest.mark.parametrize(("status", "answer"), [
    (201, {"json": {"expires_in": 60}}),
    (201, {"json": {"request_uri": REQUEST_URI}}),
    (201, {"content": b"<html>"}),
    (500, {"content": b"oops"}),
], ids=["no-request-uri", "no-expires-in", "not-json", "server-error"])
def test_a_push_answer_off_the_contract_is_a_protocol_error(
        sdk: Any, fake: Any, terms: Any, status: int, answer: dict[str, Any]) -> None:
    fake.answer(PAR, httpx.Response(status, **answer))
    with pytest.raises(ProtocolError):
        sdk.start_authorization(terms, redirect_uri=REDIRECT)


# -- discovery -------------------------------------------------------------------------------


def test_metadata_of_another_issuer_is_refused(sdk: Any, fake: Any, terms: Any) -> None:
    fake.metadata["issuer"] = "https://evil.example"
    with pytest.raises(ProtocolError, match="issuer"):
        sdk.start_authorization(terms, redirect_uri=REDIRECT)
    assert fake.sent(PAR) == []


def test_metadata_without_a_par_endpoint_is_refused(sdk: Any, fake: Any, terms: Any) -> None:
    del fake.metadata["pushed_authorization_request_endpoint"]
    with pytest.raises(ProtocolError, match="pushed_authorization_request_endpoint"):
        sdk.start_authorization(terms, redirect_uri=REDIRECT)


def test_the_well_known_url_goes_between_host_and_path() -> None:
    assert metadata_url("https://vault.example.gov") == \
        "https://vault.example.gov/.well-known/oauth-authorization-server"
    assert metadata_url("https://example.gov/vault/") == \
        "https://example.gov/.well-known/oauth-authorization-server/vault"
    for bad in ("ftp://x", "https://x/?q=1", "vault.example.gov"):
        with pytest.raises(ValueError):
            metadata_url(bad)


# -- the callback and the code exchange ----------------------------------------------------------


def test_the_code_is_exchanged_with_its_verifier_and_redirect_uri(
        sdk: Any, fake: Any, fake_time: Any, kit: Any, terms: Any) -> None:
    pending = start(sdk, fake, terms)
    fake_time.t += 7
    fake.answer(TOKEN, kit.token_answer("at-1", "rt-1", expires_in=300))
    grant = sdk.finish_authorization(callback(pending), pending)
    [form] = fake.forms(TOKEN)
    fake.assertion_claims(form, now=fake_time.t)
    assert {k: v for k, v in form.items() if not k.startswith("client_")} == {
        "grant_type": "authorization_code", "code": "c0de", "redirect_uri": REDIRECT,
        "code_verifier": pending.code_verifier}
    assert s256(form["code_verifier"]) == fake.forms(PAR)[0]["code_challenge"]
    assert (grant.grant_id, grant.sub) == ("gr_1", "psub_1")
    assert (grant.access_token, grant.refresh_token) == ("at-1", "rt-1")
    assert grant.expires_at == datetime.fromtimestamp(fake_time.t + 300, UTC)
    assert grant.authorization_details == [{"type": "personal_data"}]
    assert "at-1" not in repr(grant) and "rt-1" not in repr(grant)


def test_the_callback_may_be_its_query_or_parsed_parameters(
        sdk: Any, fake: Any, kit: Any, terms: Any) -> None:
    pending = start(sdk, fake, terms)
    params = {"code": "c0de", "state": pending.state, "iss": pending.issuer}
    fake.answer(TOKEN, kit.token_answer(), kit.token_answer())
    assert sdk.finish_authorization(urlencode(params), pending).grant_id == "gr_1"
    assert sdk.finish_authorization(params, pending).grant_id == "gr_1"
    assert [f["code"] for f in fake.forms(TOKEN)] == ["c0de", "c0de"]


@pytest.mark.parametrize(("change", "code"), [
    ({"state": "someone-elses"}, "state_mismatch"),
    ({"state": None}, "state_mismatch"),
    ({"iss": "https://evil.example"}, "issuer_mismatch"),
    ({"iss": None}, "issuer_mismatch"),  # RFC 9207: the vault always sends it
    ({"code": None}, "no_code"),
    ({"code": ""}, "no_code"),
])
def test_a_callback_that_is_not_this_requests_answer_is_refused_before_any_exchange(
        sdk: Any, fake: Any, terms: Any, change: dict[str, str | None], code: str) -> None:
    pending = start(sdk, fake, terms)
    with pytest.raises(AuthorizationFailed) as caught:
        sdk.finish_authorization(callback(pending, **change), pending)
    assert caught.value.code == code
    assert fake.sent(TOKEN) == []


def test_a_repeated_callback_parameter_is_refused(sdk: Any, fake: Any, terms: Any) -> None:
    pending = start(sdk, fake, terms)
    with pytest.raises(AuthorizationFailed, match="repeats 'code'"):
        sdk.finish_authorization(callback(pending) + "&code=other", pending)
    assert fake.sent(TOKEN) == []


def test_access_denied_is_grant_denied_and_other_errors_authorization_failed(
        sdk: Any, fake: Any, terms: Any) -> None:
    pending = start(sdk, fake, terms)
    with pytest.raises(GrantDenied) as denied:
        sdk.finish_authorization(callback(pending, code=None, error="access_denied",
                                          error_description="The citizen said no"), pending)
    assert denied.value.code == "access_denied" and "said no" in str(denied.value)
    for error in ("server_error", "temporarily_unavailable", "invalid_request"):
        with pytest.raises(AuthorizationFailed) as failed:
            sdk.finish_authorization(callback(pending, code=None, error=error), pending)
        assert failed.value.code == error
    # An error that does not carry our state proves nothing: it is a state mismatch.
    with pytest.raises(AuthorizationFailed) as forged:
        sdk.finish_authorization(callback(pending, code=None, state="x",
                                          error="access_denied"), pending)
    assert forged.value.code == "state_mismatch"
    assert fake.sent(TOKEN) == []


@pytest.mark.parametrize(("grant_state", "error_class"), [
    ("revoked", GrantRevoked), ("paused", GrantPaused), ("expired", GrantExpired),
    ("exhausted", GrantExhausted), ("denied", GrantDenied), ("cancelled", GrantDenied),
    ("lapsed", GrantDenied), ("not_approved", GrantDenied), ("requested", GrantPending),
    ("service_suspended", ServiceSuspended)])
def test_invalid_grant_with_a_grant_state_is_its_typed_error(
        sdk: Any, fake: Any, kit: Any, terms: Any, grant_state: str,
        error_class: type[VaultClientError]) -> None:
    pending = start(sdk, fake, terms)
    fake.answer(TOKEN, kit.oauth_error("invalid_grant", grant_state=grant_state))
    with pytest.raises(error_class) as caught:
        sdk.finish_authorization(callback(pending), pending)
    assert caught.value.code == grant_state and caught.value.status == 400


@pytest.mark.parametrize(("answer", "error_class", "code"), [
    ({"error": "invalid_grant"}, ProtocolError, "invalid_grant"),
    ({"error": "invalid_grant", "grant_state": "sideways"}, ProtocolError, "invalid_grant"),
    ({"error": "invalid_client"}, ProtocolError, "invalid_client"),
    ({"error": "access_denied"}, GrantDenied, "access_denied"),
])
def test_other_token_errors(sdk: Any, fake: Any, terms: Any, answer: dict[str, str],
                            error_class: type[VaultClientError], code: str) -> None:
    pending = start(sdk, fake, terms)
    fake.answer(TOKEN, httpx.Response(400, json=answer))
    with pytest.raises(error_class) as caught:
        sdk.finish_authorization(callback(pending), pending)
    assert type(caught.value) is error_class and caught.value.code == code


def test_busy_token_endpoint(sdk: Any, fake: Any, terms: Any) -> None:
    pending = start(sdk, fake, terms)
    fake.answer(TOKEN, httpx.Response(429, headers={"retry-after": "3"}, json={}),
                httpx.Response(503, headers={"retry-after": "2"}, json={}))
    with pytest.raises(RateLimited) as limited:
        sdk.finish_authorization(callback(pending), pending)
    assert limited.value.retry_after == 3
    with pytest.raises(VaultUnavailable) as busy:
        sdk.finish_authorization(callback(pending), pending)
    assert busy.value.retry_after == 2


@pytest.mark.parametrize("body", [
    {"token_type": "Bearer", "expires_in": 300, "grant_id": "g", "sub": "s"},
    {"access_token": "a", "token_type": "mac", "expires_in": 300, "grant_id": "g", "sub": "s"},
    {"access_token": "a", "token_type": "Bearer", "grant_id": "g", "sub": "s"},
    {"access_token": "a", "token_type": "Bearer", "expires_in": "300", "grant_id": "g",
     "sub": "s"},
    {"access_token": "a", "token_type": "Bearer", "expires_in": 300, "sub": "s"},
    {"access_token": "a", "token_type": "Bearer", "expires_in": 300, "grant_id": "g"},
    {"access_token": "a", "token_type": "Bearer", "expires_in": 300, "grant_id": "g",
     "sub": "s", "authorization_details": "all of it"},
    [],
], ids=["no-access-token", "not-bearer", "no-expires-in", "expires-in-text", "no-grant-id",
        "no-sub", "details-not-a-list", "not-an-object"])
def test_a_token_answer_off_the_contract_is_a_protocol_error(
        sdk: Any, fake: Any, terms: Any, body: Any) -> None:
    pending = start(sdk, fake, terms)
    fake.answer(TOKEN, httpx.Response(200, json=body))
    with pytest.raises(ProtocolError):
        sdk.finish_authorization(callback(pending), pending)


def test_pending_survives_json_and_another_client_instance(
        sdk: Any, fake: Any, kit: Any, terms: Any) -> None:
    pending = start(sdk, fake, terms)
    again = PendingAuthorization.from_json(json.loads(json.dumps(pending.to_json())))
    assert again == pending
    assert pending.code_verifier not in repr(pending) and pending.state not in repr(pending)
    fake.answer(TOKEN, kit.token_answer())
    assert sdk.finish_authorization(callback(again), again).access_token == "at-1"
    assert fake.forms(TOKEN)[0]["code_verifier"] == pending.code_verifier
    for broken in ({**pending.to_json(), "expires_at": "tomorrow"},
                   {**pending.to_json(), "state": ""}, "not an object"):
        with pytest.raises(ValueError):
            PendingAuthorization.from_json(broken)


def test_the_pending_expiry_counts_from_before_the_push(
        sdk: Any, fake: Any, fake_time: Any, terms: Any) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        fake_time.t += 5  # the push took 5 s
        return httpx.Response(201, json={"request_uri": REQUEST_URI, "expires_in": 60})

    before = fake_time.t
    fake.answer(PAR, slow)
    pending = sdk.start_authorization(terms, redirect_uri=REDIRECT)
    assert pending.expires_at - datetime.fromtimestamp(before, UTC) == timedelta(seconds=60)
