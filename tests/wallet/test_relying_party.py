"""The relying party from settings, the challenge store, and the options we hand out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vault.errors import ConfigError
from wallet.errors import PasskeyRejected
from wallet.passkeys import (
    MemoryChallengeStore,
    RelyingParty,
    approval_options,
    authentication_options,
    registration_options,
)
from wallet.passkeys.software import b64url, cbor

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(("url", "rp_id", "origin"), [
    ("http://localhost:8000", "localhost", "http://localhost:8000"),
    ("http://localhost:8000/", "localhost", "http://localhost:8000"),
    ("http://wallet.localhost", "wallet.localhost", "http://wallet.localhost"),
    ("https://Vault.Example.gov.uk/", "vault.example.gov.uk", "https://vault.example.gov.uk"),
    ("https://vault.example.org:443/app", "vault.example.org", "https://vault.example.org"),
    ("https://vault.example.org:8443", "vault.example.org", "https://vault.example.org:8443"),
])
def test_from_public_url(url: str, rp_id: str, origin: str) -> None:
    rp = RelyingParty.from_public_url(url)
    assert (rp.rp_id, rp.origins, rp.rp_name) == (rp_id, (origin,), "Citizen Data Vault")


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8000", "https://10.1.2.3/", "https://[::1]:8443", "http://[::1]/",
    "https://[2001:db8::1]",
])
def test_an_ip_address_is_never_an_rp_id(url: str) -> None:
    with pytest.raises(ConfigError, match="IP address"):
        RelyingParty.from_public_url(url)
    with pytest.raises(ConfigError, match="IP address"):
        RelyingParty(rp_id="127.0.0.1", rp_name="x", origins=("https://127.0.0.1",))


@pytest.mark.parametrize(("url", "message"), [
    ("http://vault.example.org", "https://"),
    ("ftp://vault.example.org", "http"),
    ("vault.example.org", "http"),
    ("https://user:pw@vault.example.org", "user name"),
    ("https://vault_example.org", "domain name"),
    ("https://vault.example.org:99999", "not a valid URL"),
])
def test_unusable_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RelyingParty.from_public_url(url)


def test_origins_must_belong_to_the_rp_id() -> None:
    rp = RelyingParty.from_public_url(
        "https://example.gov.uk", extra_origins=["https://wallet.example.gov.uk"])
    assert rp.origins == ("https://example.gov.uk", "https://wallet.example.gov.uk")
    for origin, message in [("https://example.org", "not on"),
                            ("https://badexample.gov.uk", "not on"),
                            ("https://example.gov.uk/", "not written as an origin"),
                            ("https://example.gov.uk:443", "not written as an origin")]:
        with pytest.raises(ConfigError, match=message):
            RelyingParty(rp_id="example.gov.uk", rp_name="Vault", origins=(origin,))
    with pytest.raises(ConfigError, match="at least one origin"):
        RelyingParty(rp_id="example.gov.uk", rp_name="Vault", origins=())


# -- the challenge store ---------------------------------------------------------------


def test_a_challenge_is_taken_once() -> None:
    store = MemoryChallengeStore()
    ceremony = store.put(b"c" * 32, purpose="sign_in", now=NOW)
    assert store.take(ceremony, purpose="sign_in", now=NOW) == b"c" * 32
    with pytest.raises(PasskeyRejected) as exc:
        store.take(ceremony, purpose="sign_in", now=NOW)
    assert exc.value.reason == "challenge_unknown"
    with pytest.raises(PasskeyRejected) as exc:
        store.take("made-up", purpose="sign_in", now=NOW)
    assert exc.value.reason == "challenge_unknown"


def test_a_challenge_for_another_purpose_is_refused_and_spent() -> None:
    store = MemoryChallengeStore()
    ceremony = store.put(b"c" * 32, purpose="register", now=NOW)
    for purpose in ("sign_in", "register"):
        with pytest.raises(PasskeyRejected) as exc:
            store.take(ceremony, purpose=purpose, now=NOW)
        assert exc.value.reason == "challenge_unknown"


def test_a_challenge_expires() -> None:
    store = MemoryChallengeStore(ttl=timedelta(minutes=5))
    early = store.put(b"a" * 32, purpose="sign_in", now=NOW)
    late = store.put(b"b" * 32, purpose="sign_in", now=NOW)
    almost = NOW + timedelta(minutes=5) - timedelta(microseconds=1)
    assert store.take(early, purpose="sign_in", now=almost) == b"a" * 32
    with pytest.raises(PasskeyRejected) as exc:
        store.take(late, purpose="sign_in", now=NOW + timedelta(minutes=5))
    assert exc.value.reason == "challenge_expired"


def test_the_store_stays_bounded() -> None:
    store = MemoryChallengeStore(ttl=timedelta(minutes=5), max_pending=3)
    first = store.put(b"1" * 32, purpose="sign_in", now=NOW)
    for _ in range(3):
        store.put(b"x" * 32, purpose="sign_in", now=NOW)
    assert len(store) == 3
    with pytest.raises(PasskeyRejected):
        store.take(first, purpose="sign_in", now=NOW)  # pushed out by newer ones
    store.put(b"y" * 32, purpose="sign_in", now=NOW + timedelta(minutes=6))
    assert len(store) == 1  # the expired ones went
    with pytest.raises(ValueError, match="16"):
        store.put(b"short", purpose="sign_in", now=NOW)


# -- options ---------------------------------------------------------------------------


def test_options_carry_fresh_challenges_and_exclusions() -> None:
    rp = RelyingParty.from_public_url("https://vault.example.org")
    known = b64url(b"\x01" * 16)
    reg, c1 = registration_options(rp, user_id=b"cit_1", user_name="ada", exclude=[known])
    _, c2 = registration_options(rp, user_id=b"cit_1", user_name="ada", exclude=[])
    assert len(c1) == 32 and c1 != c2 and reg["challenge"] == b64url(c1)
    assert reg["user"] == {"id": b64url(b"cit_1"), "name": "ada", "displayName": "ada"}
    assert [c["id"] for c in reg["excludeCredentials"]] == [known]
    assert reg["timeout"] == 300_000
    auth, c3 = authentication_options(rp)
    assert auth["challenge"] == b64url(c3) and auth["rpId"] == "vault.example.org"
    approval = approval_options(rp, challenge=b"\x07" * 32, allow=[known])
    assert approval["challenge"] == b64url(b"\x07" * 32)
    assert [c["id"] for c in approval["allowCredentials"]] == [known]
    assert approval["userVerification"] == "required"


# -- the test authenticator's own CBOR (RFC 8949 Appendix A examples) ------------------


@pytest.mark.parametrize(("value", "hex_"), [
    (0, "00"), (23, "17"), (24, "1818"), (100, "1864"), (1000, "1903e8"),
    (1000000, "1a000f4240"), (1000000000000, "1b000000e8d4a51000"),
    (-1, "20"), (-10, "29"), (-100, "3863"), (-1000, "3903e7"),
    (b"", "40"), (b"\x01\x02\x03\x04", "4401020304"),
    ("", "60"), ("a", "6161"), ("IETF", "6449455446"), ("\u00fc", "62c3bc"),
    ({}, "a0"), ({1: 2, 3: 4}, "a201020304"),
])
def test_cbor_examples(value: object, hex_: str) -> None:
    assert cbor(value).hex() == hex_
