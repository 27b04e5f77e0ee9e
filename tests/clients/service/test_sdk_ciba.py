"""OpenID CIBA in poll mode, as the SDK speaks it, against a scripted server and a fake
clock: the backchannel request, then polling never faster than the interval, 5 s slower
for good after each slow_down, and the end of the wait (tokens, denial, expiry, or our
own timeout). Each test runs with the sync and the async client."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from clients.service import (
    BackchannelRequest,
    GrantDenied,
    GrantExpired,
    GrantPending,
    GrantRevoked,
    ProtocolError,
)

BC = "/oauth/bc-authorize"
TOKEN = "/oauth/token"
CIBA = "urn:openid:params:grant-type:ciba"


def accepted(expires_in: int = 600, **extra: Any) -> httpx.Response:
    return httpx.Response(200, json={"auth_req_id": "areq-1", "expires_in": expires_in,
                                     "interval": 5, **extra})


def ask(sdk: Any, fake: Any, terms: Any, **kw: Any) -> BackchannelRequest:
    fake.answer(BC, accepted(**kw))
    bc: BackchannelRequest = sdk.request_by_subject("psub_1", terms)
    return bc


def timed(fake: Any, fake_time: Any, *answers: httpx.Response) -> list[float]:
    """Queue `answers` for the polls and return the list of the times they are made at
    (seconds after the request)."""
    start = fake_time.t
    times: list[float] = []

    def at(answer: httpx.Response) -> Any:
        def reply(request: httpx.Request) -> httpx.Response:
            times.append(fake_time.t - start)
            return answer
        return reply

    fake.answer(TOKEN, *(at(a) for a in answers))
    return times


def test_the_backchannel_request_carries_the_sub_terms_and_binding_message(
        sdk: Any, fake: Any, fake_time: Any, terms: Any) -> None:
    fake.answer(BC, accepted(expires_in=300))
    bc = sdk.request_by_subject("psub_1", terms, binding_message="Blue Badge renewal",
                                requested_expiry=300)
    [form] = fake.forms(BC)
    fake.assertion_claims(form, now=fake_time.t)
    assert {k: v for k, v in form.items() if not k.startswith("client_")} == {
        "login_hint": "psub_1", "binding_message": "Blue Badge renewal",
        "requested_expiry": "300",
        "authorization_details": json.dumps([terms.to_json()], separators=(",", ":"))}
    assert (bc.auth_req_id, bc.sub, bc.interval) == ("areq-1", "psub_1", 5)
    assert bc.issued_at == datetime.fromtimestamp(fake_time.t, UTC)
    assert bc.expires_at - bc.issued_at == timedelta(seconds=300)
    assert "areq-1" not in repr(bc)
    assert BackchannelRequest.from_json(json.loads(json.dumps(bc.to_json()))) == bc


def test_optional_fields_are_left_out_and_the_interval_defaults_to_5(
        sdk: Any, fake: Any, terms: Any) -> None:
    fake.answer(BC, httpx.Response(200, json={"auth_req_id": "a", "expires_in": 60}))
    bc = sdk.request_by_subject("psub_1", terms)
    assert "binding_message" not in fake.forms(BC)[0]
    assert "requested_expiry" not in fake.forms(BC)[0]
    assert bc.interval == 5


@pytest.mark.parametrize("error", ["unknown_user_id", "invalid_binding_message",
                                   "invalid_authorization_details", "invalid_client"])
def test_a_refused_backchannel_request_is_a_protocol_error(
        sdk: Any, fake: Any, kit: Any, terms: Any, error: str) -> None:
    fake.answer(BC, kit.oauth_error(error))
    with pytest.raises(ProtocolError) as caught:
        sdk.request_by_subject("psub_nobody", terms)
    assert caught.value.code == error


def test_polls_at_the_interval_and_5_s_slower_after_slow_down(
        sdk: Any, fake: Any, fake_time: Any, kit: Any, terms: Any) -> None:
    bc = ask(sdk, fake, terms)
    times = timed(fake, fake_time, kit.oauth_error("authorization_pending"),
                  kit.oauth_error("authorization_pending"), kit.oauth_error("slow_down"),
                  kit.oauth_error("authorization_pending"),
                  kit.token_answer("at-9", "rt-9", grant_id="gr_9"))
    grant = sdk.wait(bc)
    assert times == [5, 10, 15, 25, 35]  # 10 s apart after the slow_down, for good
    assert fake_time.sleeps == [5, 5, 5, 10, 10]
    forms = fake.forms(TOKEN)
    assert all({k: v for k, v in f.items() if not k.startswith("client_")} ==
               {"grant_type": CIBA, "auth_req_id": "areq-1"} for f in forms)
    assert len({f["client_assertion"] for f in forms}) == len(forms)
    assert (grant.grant_id, grant.sub, grant.access_token) == ("gr_9", "psub_1", "at-9")


def test_a_bigger_interval_from_the_server_is_honoured(
        sdk: Any, fake: Any, fake_time: Any, kit: Any, terms: Any) -> None:
    bc = ask(sdk, fake, terms, interval=12)
    times = timed(fake, fake_time, kit.oauth_error("authorization_pending"),
                  kit.token_answer())
    sdk.wait(bc)
    assert times == [12, 24]


@pytest.mark.parametrize(("answer", "error_class", "code"), [
    ({"error": "access_denied"}, GrantDenied, "access_denied"),
    ({"error": "access_denied", "grant_state": "denied"}, GrantDenied, "denied"),
    ({"error": "access_denied", "grant_state": "revoked"}, GrantRevoked, "revoked"),
    ({"error": "expired_token", "grant_state": "lapsed"}, GrantExpired, "expired_token"),
    ({"error": "expired_token"}, GrantExpired, "expired_token"),
    ({"error": "invalid_grant"}, ProtocolError, "invalid_grant"),
])
def test_the_end_of_a_wait(sdk: Any, fake: Any, fake_time: Any, kit: Any, terms: Any,
                           answer: dict[str, str], error_class: type[Exception],
                           code: str) -> None:
    bc = ask(sdk, fake, terms)
    timed(fake, fake_time, kit.oauth_error("authorization_pending"),
          httpx.Response(400, json=answer))
    with pytest.raises(error_class) as caught:
        sdk.wait(bc)
    assert type(caught.value) is error_class and caught.value.code == code  # type: ignore[attr-defined]


def test_a_timeout_is_grant_pending_and_the_next_wait_keeps_the_pace(
        sdk: Any, fake: Any, fake_time: Any, kit: Any, terms: Any) -> None:
    bc = ask(sdk, fake, terms)
    times = timed(fake, fake_time, kit.oauth_error("authorization_pending"),
                  kit.oauth_error("slow_down"), kit.token_answer())
    with pytest.raises(GrantPending) as caught:
        sdk.wait(bc, timeout=12)
    assert caught.value.code == "authorization_pending"
    assert times == [5, 10] and fake_time.t - bc.issued_at.timestamp() == 12
    # Called again, it waits out the slowed-down interval from the last poll (10 + 10).
    grant = sdk.wait(bc, timeout=60)
    assert times == [5, 10, 20] and grant.grant_id == "gr_1"


def test_a_zero_timeout_polls_only_when_a_poll_is_due(
        sdk: Any, fake: Any, fake_time: Any, kit: Any, terms: Any) -> None:
    bc = ask(sdk, fake, terms)
    with pytest.raises(GrantPending):
        sdk.wait(bc, timeout=0)  # the first poll is due at +5: nothing is sent
    assert fake.sent(TOKEN) == [] and fake_time.sleeps == []
    fake_time.t += 5
    timed(fake, fake_time, kit.token_answer())
    assert sdk.wait(bc, timeout=0).grant_id == "gr_1"


def test_without_a_timeout_the_wait_ends_when_the_request_expires(
        sdk: Any, fake: Any, fake_time: Any, kit: Any, terms: Any) -> None:
    bc = ask(sdk, fake, terms, expires_in=12)
    times = timed(fake, fake_time, kit.oauth_error("authorization_pending"),
                  kit.oauth_error("authorization_pending"))
    with pytest.raises(GrantExpired) as caught:
        sdk.wait(bc)
    assert times == [5, 10] and fake_time.t - bc.issued_at.timestamp() == 12
    assert caught.value.code == "expired_token"


def test_a_grant_for_another_subject_is_refused(
        sdk: Any, fake: Any, fake_time: Any, kit: Any, terms: Any) -> None:
    bc = ask(sdk, fake, terms)
    timed(fake, fake_time, kit.token_answer(sub="psub_someone_else"))
    with pytest.raises(ProtocolError, match="another subject"):
        sdk.wait(bc)


def test_a_backchannel_answer_off_the_contract_is_a_protocol_error(
        sdk: Any, fake: Any, terms: Any) -> None:
    for body in ({"expires_in": 60}, {"auth_req_id": "a"},
                 {"auth_req_id": "a", "expires_in": 60, "interval": "5"}):
        fake.answer(BC, httpx.Response(200, json=body))
        with pytest.raises(ProtocolError):
            sdk.request_by_subject("psub_1", terms)
