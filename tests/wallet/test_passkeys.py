"""Passkey sign up and sign in against a real database (SQLite and PostgreSQL), driven by
a software authenticator; every bad response is refused with its own reason."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from support.walletenv import ORIGIN, Wallet

from vault.crypto import envelope
from vault.errors import NotFound
from vault.services.citizens import enrol_citizen
from wallet.errors import InvalidLabel, PasskeyRejected
from wallet.passkeys import CHALLENGE_TTL, label_ad
from wallet.passkeys.software import SoftAuthenticator, b64url, cbor, unb64url


@contextmanager
def rejected(reason: str) -> Iterator[None]:
    """The block must raise PasskeyRejected for `reason`, with a message to read."""
    with pytest.raises(PasskeyRejected) as exc:
        yield
    assert exc.value.reason == reason, (exc.value.reason, str(exc.value))
    assert len(str(exc.value)) > 10


# -- sign up ---------------------------------------------------------------------------


def test_sign_up_keeps_the_passkey_and_logs_only_its_key(
    wallet: Wallet, device: SoftAuthenticator
) -> None:
    citizen = enrol_citizen(wallet.ctx)
    options, ceremony = wallet.start_registration(citizen.id)
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["attestation"] == "none"
    # ES256 first (every platform makes it), then EdDSA, then RS256 (COSE -257, PKCS#1
    # v1.5 with SHA-256) for authenticators that can do nothing else.
    assert [p["alg"] for p in options["pubKeyCredParams"]] == [-7, -8, -257]
    assert {p["type"] for p in options["pubKeyCredParams"]} == {"public-key"}
    assert options["rp"] == {"id": "localhost", "name": "Citizen Data Vault"}

    row = wallet.finish_registration(citizen.id, ceremony, device.create(options),
                                     label="Ada's phone")
    cred = device.credentials[row.credential_id]
    stored = wallet.passkey(row.credential_id)
    assert stored.citizen_id == citizen.id
    assert stored.public_key == cred.public_key
    assert stored.sign_count == 0
    assert stored.transports == ["internal", "hybrid"]
    assert stored.created_at == wallet.clock() and stored.last_used_at is None
    assert stored.label_sealed is not None and b"Ada" not in stored.label_sealed
    label = envelope.open_sealed(wallet.data_key(citizen.id), stored.label_sealed,
                                 ad=label_ad(citizen_id=citizen.id,
                                             credential_id=row.credential_id))
    assert label == b"Ada's phone"

    [entry] = wallet.entries("passkey.registered")
    assert entry.body == {"subject": citizen.subject, "credential_id": row.credential_id,
                          "public_key": b64url(cred.public_key), "alg": -7}
    raw = entry.encode()
    assert b"Ada" not in raw and citizen.id.encode() not in raw


def test_eddsa_passkeys_are_accepted(wallet: Wallet) -> None:
    _, cid = wallet.sign_up(SoftAuthenticator(origin=ORIGIN, alg="EdDSA"))
    [entry] = wallet.entries("passkey.registered")
    assert entry.body["alg"] == -8 and entry.body["credential_id"] == cid


def test_rs256_passkeys_sign_up_and_sign_in(wallet: Wallet) -> None:
    """Windows Hello on some TPMs makes only RSA keys: RS256 registers, is logged with
    its COSE key, and signs in (its counter moving)."""
    device = SoftAuthenticator(origin=ORIGIN, alg="RS256")
    citizen_id, cid = wallet.sign_up(device)
    [entry] = wallet.entries("passkey.registered")
    assert entry.body["alg"] == -257 and entry.body["credential_id"] == cid
    assert unb64url(entry.body["public_key"]) == device.credentials[cid].public_key
    assert wallet.passkey(cid).public_key == device.credentials[cid].public_key
    options, ceremony = wallet.start_sign_in()
    assert wallet.finish_sign_in(ceremony, device.get(options)) == citizen_id
    assert wallet.passkey(cid).sign_count == 1
    options, ceremony = wallet.start_sign_in()
    with rejected("bad_signature"):
        wallet.finish_sign_in(ceremony, device.get(options, wrong_key=True))


def _rsa_cose(alg: int, bits: int = 2048) -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    n = key.public_key().public_numbers().n
    return key, cbor({1: 3, 3: alg, -1: n.to_bytes((n.bit_length() + 7) // 8, "big"),
                      -2: (65537).to_bytes(3, "big")})


@pytest.mark.parametrize(("alg", "bits"), [(-37, 2048), (-258, 2048), (-257, 1024)])
def test_other_rsa_keys_are_refused_at_sign_up(wallet: Wallet, device: SoftAuthenticator,
                                               alg: int, bits: int) -> None:
    """Only RS256 (PKCS#1 v1.5, SHA-256) on 2048 to 4096 bits: not PS256 (-37), not
    RS384 (-258), not a 1024-bit key, even if an authenticator offers one."""
    citizen = enrol_citizen(wallet.ctx)
    options, ceremony = wallet.start_registration(citizen.id)
    answer = device.create(options)
    [cred] = device.credentials.values()
    _, cose = _rsa_cose(alg, bits)
    attestation = cbor({"fmt": "none", "attStmt": {},
                        "authData": _auth_data_with_key(answer, cred.public_key, cose)})
    answer["response"]["attestationObject"] = b64url(attestation)
    with rejected("unsupported_algorithm"):
        wallet.finish_registration(citizen.id, ceremony, answer)
    assert wallet.entries("passkey.registered") == []


def _auth_data_with_key(answer: dict[str, Any], old_key: bytes, new_key: bytes) -> bytes:
    from webauthn.helpers import parse_cbor

    auth_data: bytes = parse_cbor(unb64url(answer["response"]["attestationObject"]))["authData"]
    assert auth_data.endswith(old_key)
    return auth_data[: -len(old_key)] + new_key


def test_a_citizen_may_have_several_passkeys(wallet: Wallet) -> None:
    phone, laptop = SoftAuthenticator(origin=ORIGIN), SoftAuthenticator(origin=ORIGIN)
    citizen_id, first = wallet.sign_up(phone)
    options, ceremony = wallet.start_registration(citizen_id)
    second = wallet.finish_registration(citizen_id, ceremony, laptop.create(options), label="")
    assert second.label_sealed is None
    assert {wallet.passkey(first).citizen_id, wallet.passkey(second.credential_id).citizen_id} \
        == {citizen_id}
    for device in (phone, laptop):
        options, ceremony = wallet.start_sign_in()
        assert wallet.finish_sign_in(ceremony, device.get(options)) == citizen_id


@pytest.mark.parametrize(("knobs", "reason"), [
    ({"uv": False}, "user_not_verified"),
    ({"up": False}, "user_not_present"),
    ({"origin": "https://evil.example"}, "wrong_origin"),
    ({"origin": "http://localhost:8001"}, "wrong_origin"),
    ({"rp_id": "evil.example"}, "wrong_rp_id"),
    ({"client_type": "webauthn.get"}, "wrong_type"),
    ({"cross_origin": True}, "cross_origin"),
])
def test_sign_up_refusals(wallet: Wallet, device: SoftAuthenticator,
                          knobs: dict[str, Any], reason: str) -> None:
    citizen = enrol_citizen(wallet.ctx)
    options, ceremony = wallet.start_registration(citizen.id)
    with rejected(reason):
        wallet.finish_registration(citizen.id, ceremony, device.create(options, **knobs))
    assert wallet.entries("passkey.registered") == []


def test_sign_up_with_another_challenge_is_refused(
    wallet: Wallet, device: SoftAuthenticator
) -> None:
    citizen = enrol_citizen(wallet.ctx)
    options, _ = wallet.start_registration(citizen.id)
    _, other = wallet.start_registration(citizen.id)
    with rejected("challenge_mismatch"):
        wallet.finish_registration(citizen.id, other, device.create(options))


def test_the_same_passkey_cannot_be_registered_twice(
    wallet: Wallet, device: SoftAuthenticator
) -> None:
    citizen = enrol_citizen(wallet.ctx)
    options, ceremony = wallet.start_registration(citizen.id)
    answer = device.create(options)
    wallet.finish_registration(citizen.id, ceremony, answer)
    with rejected("challenge_unknown"):  # the ceremony's challenge is spent
        wallet.finish_registration(citizen.id, ceremony, answer)
    again = wallet.store.put(unb64url(options["challenge"]), purpose="register",
                             now=wallet.clock())
    with rejected("already_registered"):
        wallet.finish_registration(citizen.id, again, answer)


def test_labels_are_checked(wallet: Wallet, device: SoftAuthenticator) -> None:
    citizen = enrol_citizen(wallet.ctx)
    for label in ("x" * 61, "my\nphone", "a\u200bb"):
        options, ceremony = wallet.start_registration(citizen.id)
        with pytest.raises(InvalidLabel):
            wallet.finish_registration(citizen.id, ceremony, device.create(options),
                                       label=label)


def test_registration_for_no_citizen_is_refused(
    wallet: Wallet, device: SoftAuthenticator
) -> None:
    options, ceremony = wallet.start_registration("cit_nobody")
    with pytest.raises(NotFound):
        wallet.finish_registration("cit_nobody", ceremony, device.create(options))


# -- sign in ---------------------------------------------------------------------------


def test_sign_in_is_username_less_and_counts(wallet: Wallet, device: SoftAuthenticator) -> None:
    citizen_id, cid = wallet.sign_up(device)
    options, ceremony = wallet.start_sign_in()
    assert options["allowCredentials"] == []
    assert options["userVerification"] == "required"
    assert options["rpId"] == "localhost"
    wallet.clock.advance(minutes=1)
    assert wallet.finish_sign_in(ceremony, device.get(options)) == citizen_id
    row = wallet.passkey(cid)
    assert row.sign_count == 1 and row.last_used_at == wallet.clock()


@pytest.mark.parametrize(("knobs", "reason"), [
    ({"uv": False}, "user_not_verified"),
    ({"up": False}, "user_not_present"),
    ({"origin": "https://evil.example"}, "wrong_origin"),
    ({"rp_id": "evil.example"}, "wrong_rp_id"),
    ({"wrong_key": True}, "bad_signature"),
    ({"challenge": b"\x01" * 32}, "challenge_mismatch"),
    ({"client_type": "webauthn.create"}, "wrong_type"),
    ({"cross_origin": True}, "cross_origin"),
])
def test_sign_in_refusals(wallet: Wallet, device: SoftAuthenticator,
                          knobs: dict[str, Any], reason: str) -> None:
    _, cid = wallet.sign_up(device)
    options, ceremony = wallet.start_sign_in()
    with rejected(reason):
        wallet.finish_sign_in(ceremony, device.get(options, **knobs))
    assert wallet.passkey(cid).sign_count == 0  # nothing was stored


def test_a_sign_in_challenge_is_single_use(wallet: Wallet, device: SoftAuthenticator) -> None:
    wallet.sign_up(device)
    options, ceremony = wallet.start_sign_in()
    answer = device.get(options)
    wallet.finish_sign_in(ceremony, answer)
    with rejected("challenge_unknown"):
        wallet.finish_sign_in(ceremony, answer)
    # Even if a replay got past the store, the counter has moved on.
    with rejected("counter_regression"):
        wallet.check_sign_in(answer, unb64url(options["challenge"]))


def test_a_sign_in_challenge_expires(wallet: Wallet, device: SoftAuthenticator) -> None:
    wallet.sign_up(device)
    options, ceremony = wallet.start_sign_in()
    wallet.clock.now += CHALLENGE_TTL
    with rejected("challenge_expired"):
        wallet.finish_sign_in(ceremony, device.get(options))


def test_a_registration_challenge_cannot_sign_in(
    wallet: Wallet, device: SoftAuthenticator
) -> None:
    citizen_id, _ = wallet.sign_up(device)
    options, ceremony = wallet.start_registration(citizen_id)
    with rejected("challenge_unknown"):
        wallet.finish_sign_in(ceremony, device.get(challenge=unb64url(options["challenge"])))


def test_a_counter_going_backwards_is_refused(wallet: Wallet, device: SoftAuthenticator) -> None:
    _, cid = wallet.sign_up(device)
    for counter in (5, 9):
        options, ceremony = wallet.start_sign_in()
        wallet.finish_sign_in(ceremony, device.get(options, counter=counter))
    for counter in (9, 8, 0):
        options, ceremony = wallet.start_sign_in()
        with rejected("counter_regression"):
            wallet.finish_sign_in(ceremony, device.get(options, counter=counter))
    assert wallet.passkey(cid).sign_count == 9


def test_the_largest_counter_is_kept(wallet: Wallet, device: SoftAuthenticator) -> None:
    # signCount is an unsigned 32-bit integer (WebAuthn L3 §6.1): it does not fit a
    # PostgreSQL INTEGER, so the column and its binds must be BIGINT.
    _, cid = wallet.sign_up(device)
    options, ceremony = wallet.start_sign_in()
    wallet.finish_sign_in(ceremony, device.get(options, counter=2**32 - 1))
    assert wallet.passkey(cid).sign_count == 2**32 - 1


def test_a_device_without_a_counter_may_stay_at_zero(wallet: Wallet) -> None:
    device = SoftAuthenticator(origin=ORIGIN, counts=False)
    citizen_id, cid = wallet.sign_up(device)
    for _ in range(3):
        options, ceremony = wallet.start_sign_in()
        assert wallet.finish_sign_in(ceremony, device.get(options)) == citizen_id
    assert wallet.passkey(cid).sign_count == 0


def test_an_unknown_passkey_cannot_sign_in(wallet: Wallet, device: SoftAuthenticator) -> None:
    stranger = SoftAuthenticator(origin=ORIGIN)
    stranger.create({"rp": {"id": "localhost"}, "user": {"id": b64url(b"cit_x")},
                     "challenge": b64url(b"\x00" * 32)})
    wallet.sign_up(device)
    options, ceremony = wallet.start_sign_in()
    with rejected("unknown_credential"):
        wallet.finish_sign_in(ceremony, stranger.get(options))


def test_the_user_handle_must_name_the_owner(wallet: Wallet, device: SoftAuthenticator) -> None:
    wallet.sign_up(device)
    other_id, _ = wallet.sign_up(SoftAuthenticator(origin=ORIGIN))
    for handle in (b64url(other_id.encode()), None):
        options, ceremony = wallet.start_sign_in()
        answer = device.get(options)
        answer["response"]["userHandle"] = handle
        with rejected("user_handle_mismatch"):
            wallet.finish_sign_in(ceremony, answer)


@pytest.mark.parametrize("damage", ["id", "padding", "not_json", "no_signature", "short"])
def test_malformed_sign_in_responses(wallet: Wallet, device: SoftAuthenticator,
                                     damage: str) -> None:
    wallet.sign_up(device)
    options, ceremony = wallet.start_sign_in()
    answer = device.get(options)
    response = answer["response"]
    if damage == "id":
        answer["id"] = answer["id"][:-2]
    elif damage == "padding":
        response["signature"] += "="
    elif damage == "not_json":
        response["clientDataJSON"] = b64url(b"{not json")
    elif damage == "no_signature":
        del response["signature"]
    else:
        response["authenticatorData"] = b64url(unb64url(response["authenticatorData"])[:36])
    with rejected("malformed"):
        wallet.finish_sign_in(ceremony, answer)
