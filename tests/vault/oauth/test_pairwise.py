"""Pairwise subjects: stable for one service, unrelated across services, keyed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.oauth import PAIRWISE_PREFIX, pairwise_sub

SECRET = bytes(range(32))
ids = st.text(min_size=1, max_size=60)


def reference(secret: bytes, service: str, citizen: str) -> str:
    """Written out from the module docstring, independently of the code."""
    s, c = service.encode(), citizen.encode()
    msg = (b"citizen-vault/pairwise-sub/v1\x00" + len(s).to_bytes(4, "big") + s
           + len(c).to_bytes(4, "big") + c)
    mac = hmac.new(secret, msg, hashlib.sha256).digest()[:16]
    return "psub_" + base64.urlsafe_b64encode(mac).decode().rstrip("=")


def test_known_answer_and_form() -> None:
    sub = pairwise_sub(SECRET, "svc_a", "cit_1")
    assert sub == reference(SECRET, "svc_a", "cit_1")
    assert re.fullmatch(r"psub_[A-Za-z0-9_-]{22}", sub)
    assert sub.startswith(PAIRWISE_PREFIX) and len(sub) == 27 <= 40


def test_stable_for_one_service_and_different_across_services() -> None:
    a1 = pairwise_sub(SECRET, "svc_a", "cit_1")
    assert pairwise_sub(SECRET, "svc_a", "cit_1") == a1
    assert pairwise_sub(SECRET, "svc_b", "cit_1") != a1
    assert pairwise_sub(SECRET, "svc_a", "cit_2") != a1
    assert pairwise_sub(bytes(32), "svc_a", "cit_1") != a1  # needs the vault's secret


def test_the_input_is_unambiguous() -> None:
    assert pairwise_sub(SECRET, "ab", "c") != pairwise_sub(SECRET, "a", "bc")
    assert pairwise_sub(SECRET, "a", "b") != pairwise_sub(SECRET, "b", "a")


@given(service=ids, citizen=ids)
def test_matches_the_reference_for_any_ids(service: str, citizen: str) -> None:
    assert pairwise_sub(SECRET, service, citizen) == reference(SECRET, service, citizen)


@given(a=ids, b=ids, citizen=ids)
def test_two_services_never_share_a_subject(a: str, b: str, citizen: str) -> None:
    if a != b:
        assert pairwise_sub(SECRET, a, citizen) != pairwise_sub(SECRET, b, citizen)


def test_one_service_sees_no_collisions_among_many_citizens() -> None:
    subs = {pairwise_sub(SECRET, "svc_a", f"cit_{i}") for i in range(20_000)}
    assert len(subs) == 20_000


@pytest.mark.parametrize(("secret", "service", "citizen"), [
    (b"short", "svc_a", "cit_1"), ("x" * 32, "svc_a", "cit_1"), (SECRET, "", "cit_1"),
    (SECRET, "svc_a", ""), (SECRET, None, "cit_1"), (SECRET, "svc_a", 7),
])
def test_bad_inputs_are_refused(secret: object, service: object, citizen: object) -> None:
    with pytest.raises(ValueError):
        pairwise_sub(secret, service, citizen)  # type: ignore[arg-type]
