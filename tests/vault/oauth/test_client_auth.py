"""private_key_jwt client authentication (RFC 7523): a service's assertion, signed by an
independent library (PyJWT) as a real service would, is accepted once; replays (in
memory, on SQLite and on PostgreSQL, also across workers and under a race), forgeries
and assertions of one service presented by another are refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from vault.crypto.token_key import TokenKey
from vault.oauth import (
    CLIENT_ASSERTION_TYPE,
    InvalidClientError,
    JtiStore,
    MemoryJtiStore,
    SqlJtiStore,
    issue_access_token,
    unverified_client_id,
    verify_client_assertion,
)
from vault.oauth.client_auth import LEEWAY, MAX_ASSERTION_LIFETIME
from vault.storage.database import make_engine
from vault.storage.schema import migrate
from vault.storage.tables import OAuthJtiRow

ISSUER = "https://vault.example"
TOKEN_ENDPOINT = "https://vault.example/oauth/token"
AUDIENCES = (TOKEN_ENDPOINT, ISSUER)
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
T = int(NOW.timestamp())

A_KEY = ec.generate_private_key(ec.SECP256R1())
B_KEY = ec.generate_private_key(ec.SECP256R1())
A, B = "svc_aaaaaaaaaaaaaaaaaaaaaa", "svc_bbbbbbbbbbbbbbbbbbbbbb"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def seg(obj: dict[str, Any]) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def es256(private: ec.EllipticCurvePrivateKey, signing_input: str) -> str:
    r, s = decode_dss_signature(private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def public_jwk(private: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    """One key as registered by the operator (in `ServiceRow.jwks`)."""
    n = private.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": b64(n.x.to_bytes(32, "big")),
            "y": b64(n.y.to_bytes(32, "big")), "use": "sig", "alg": "ES256"}


_jti_counter = iter(range(10**9))


def claims(client: str = A, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"iss": client, "sub": client, "aud": TOKEN_ENDPOINT,
                            "exp": T + 60, "iat": T, "jti": f"jti-{next(_jti_counter)}"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def assertion(client: str = A, key: ec.EllipticCurvePrivateKey = A_KEY,
              headers: dict[str, Any] | None = None, **changes: Any) -> str:
    """Signed by PyJWT, as a service's own library would."""
    return pyjwt.encode(claims(client, **changes), key, algorithm="ES256", headers=headers)


def by_hand(header: dict[str, Any], body: dict[str, Any],
            key: ec.EllipticCurvePrivateKey = A_KEY) -> str:
    signing_input = f"{seg(header)}.{seg(body)}"
    return f"{signing_input}.{es256(key, signing_input)}"


def check(token: Any, *, seen: JtiStore | None = None, client_id: str | None = A,
          jwk: dict[str, Any] | None = None, jwks: dict[str, Any] | None = None,
          now: datetime = NOW, audience: Any = AUDIENCES) -> str:
    """`jwk`: a set of that one key; neither: A's key, registered under the kid "mine"."""
    if jwks is None:
        jwks = {"keys": [jwk if jwk is not None else {**public_jwk(A_KEY), "kid": "mine"}]}
    return verify_client_assertion(
        token, client_id=client_id, jwks=jwks,
        audience=audience, now=now, seen=seen if seen is not None else MemoryJtiStore())


def refused(token: Any, **kw: Any) -> str:
    with pytest.raises(InvalidClientError) as info:
        check(token, **kw)
    assert info.value.error == "invalid_client"
    return info.value.description


# -- the good path ----------------------------------------------------------------------------


def test_a_valid_assertion_authenticates_its_client() -> None:
    assert CLIENT_ASSERTION_TYPE == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert check(assertion()) == A
    assert check(assertion(), client_id=None) == A  # client_id need not be in the form
    assert check(assertion(headers={"kid": "mine", "typ": "JWT"})) == A
    assert check(assertion(headers={"typ": "client-authentication+jwt"})) == A


@pytest.mark.parametrize("aud", [TOKEN_ENDPOINT, ISSUER, [ISSUER], ["x", TOKEN_ENDPOINT]])
def test_token_endpoint_and_issuer_are_both_accepted_audiences(aud: Any) -> None:
    assert check(assertion(aud=aud)) == A


def test_a_single_audience_string_is_not_matched_by_substring() -> None:
    assert check(assertion(aud=ISSUER), audience=ISSUER) == A
    refused(assertion(aud="https://vault.exam"), audience=ISSUER)
    refused(assertion(aud="vault"), audience=ISSUER)


def test_unverified_client_id_reads_iss_to_find_the_key() -> None:
    assert unverified_client_id(assertion(B, B_KEY)) == B
    for bad in ("", "a.b.c", assertion(iss=...), by_hand({"alg": "ES256"}, claims(iss=7)),
                assertion(iss="x" * 41)):
        with pytest.raises(InvalidClientError):
            unverified_client_id(bad)


def test_any_key_of_the_registered_set_authenticates_by_kid_or_by_trying_each() -> None:
    rotating = {"keys": [{**public_jwk(B_KEY), "kid": "new"}, {**public_jwk(A_KEY), "kid": "old"}]}
    assert check(assertion(headers={"kid": "old"}), jwks=rotating) == A
    assert check(assertion(key=B_KEY, headers={"kid": "new"}), jwks=rotating) == A
    assert check(assertion(), jwks=rotating) == A  # no kid: A's key, second in the set
    assert check(assertion(key=B_KEY), jwks=rotating) == A
    # The kid names the key that must verify: another registered key's signature, or a
    # kid the set does not hold, is refused.
    assert "signature" in refused(assertion(headers={"kid": "new"}), jwks=rotating)
    assert "kid" in refused(assertion(headers={"kid": "gone"}), jwks=rotating)
    assert "kid" in refused(by_hand({"alg": "ES256", "kid": 7}, claims()), jwks=rotating)
    outsider = ec.generate_private_key(ec.SECP256R1())
    assert "signature" in refused(assertion(key=outsider), jwks=rotating)


# -- who --------------------------------------------------------------------------------------


def test_assertion_of_service_a_presented_by_service_b_is_refused() -> None:
    stolen = assertion(A, A_KEY)
    # B names itself in the form: the vault checks against B's key, or finds iss != B.
    assert "signature" in refused(stolen, client_id=B, jwk=public_jwk(B_KEY))
    assert "another client" in refused(stolen, client_id=B)
    # B signs an assertion claiming to be A: A's registered key does not verify it.
    assert "signature" in refused(assertion(A, B_KEY), client_id=A)


def test_iss_and_sub_must_both_be_the_client() -> None:
    assert "'sub' must equal" in refused(assertion(sub=B))
    refused(assertion(sub=...))
    refused(assertion(iss=...), client_id=None)
    refused(assertion(iss=B, sub=B), client_id=A)
    refused(assertion(iss="", sub=""), client_id=None)
    refused(assertion(iss="x" * 41, sub="x" * 41), client_id=None)


@pytest.mark.parametrize("aud", [..., "https://evil.example/oauth/token", [], ["x"], 7, [7],
                                 {"a": TOKEN_ENDPOINT}, TOKEN_ENDPOINT + "/"])
def test_wrong_or_missing_audience_is_refused(aud: Any) -> None:
    assert "'aud'" in refused(assertion(aud=aud))


# -- when -------------------------------------------------------------------------------------


def test_exp_is_required_and_bounded() -> None:
    assert "no 'exp'" in refused(assertion(exp=...))
    limit = T + int((MAX_ASSERTION_LIFETIME + LEEWAY).total_seconds())
    assert check(assertion(exp=limit)) == A
    assert "ahead" in refused(assertion(exp=limit + 1))
    assert "ahead" in refused(assertion(exp=T + 86400 * 365))
    for bad in ("soon", True, None, 2**60):
        assert "NumericDate" in refused(assertion(exp=bad))


def test_expired_assertions_are_refused_after_the_leeway() -> None:
    token = assertion(exp=T)
    assert check(token, now=NOW + LEEWAY - timedelta(seconds=1)) == A
    assert "expired" in refused(assertion(exp=T), now=NOW + LEEWAY)
    assert "expired" in refused(assertion(exp=T - 3600))


def test_assertions_from_the_future_are_refused() -> None:
    assert "not valid yet" in refused(assertion(iat=T + 31))
    assert "not valid yet" in refused(assertion(nbf=T + 31))
    assert check(assertion(iat=T + 30, nbf=T + 30)) == A
    assert check(assertion(iat=...)) == A  # iat is optional (RFC 7523 §3 item 6)


# -- once -------------------------------------------------------------------------------------


@pytest.mark.parametrize("jti", [..., "", 7, ["a"], "x" * 201])
def test_jti_is_required(jti: Any) -> None:
    assert "'jti'" in refused(assertion(jti=jti))


def test_jti_of_200_characters_fits() -> None:
    assert check(assertion(jti="x" * 200)) == A


def test_replayed_assertion_is_refused_in_memory() -> None:
    seen = MemoryJtiStore()
    token = assertion()
    assert check(token, seen=seen) == A
    assert "replay" in refused(token, seen=seen)
    assert "replay" in refused(token, seen=seen, now=NOW + timedelta(seconds=59))
    # A fresh assertion with another jti is fine; the same jti from another client too.
    assert check(assertion(jti="shared"), seen=seen) == A
    assert check(assertion(B, B_KEY, jti="shared"), seen=seen, client_id=B,
                 jwk=public_jwk(B_KEY)) == B
    assert "replay" in refused(assertion(jti="shared"), seen=seen)


def test_replay_is_refused_for_as_long_as_the_expiry_check_would_pass() -> None:
    """The jti is kept until exp + leeway, not just exp: the leeway is a replay window too."""
    seen = MemoryJtiStore()
    token = assertion(exp=T + 10, jti="j")
    assert check(token, seen=seen) == A
    # 20 s after exp: expired by the clock, but still inside the leeway.
    assert "replay" in refused(token, seen=seen, now=NOW + timedelta(seconds=30))
    assert "expired" in refused(token, seen=seen, now=NOW + timedelta(seconds=40))
    # Once the first could no longer pass, the client may use that jti again.
    later = NOW + timedelta(seconds=41)
    again = assertion(jti="j", exp=T + 100, iat=T + 41)
    assert check(again, seen=seen, now=later) == A
    assert len(seen) == 1


def test_jti_is_recorded_only_when_everything_else_holds() -> None:
    seen = MemoryJtiStore()
    for bad in (assertion(jti="k", aud="x"), assertion(jti="k", key=B_KEY),
                assertion(jti="k", exp=T - 3600)):
        refused(bad, seen=seen)
    assert len(seen) == 0
    assert check(assertion(jti="k"), seen=seen) == A


# -- forged -----------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_refused(alg: str) -> None:
    body = claims()
    unsigned = f"{seg({'alg': alg, 'typ': 'JWT'})}.{seg(body)}"
    for token in (f"{unsigned}.", unsigned, f"{unsigned}.{es256(A_KEY, unsigned)}"):
        refused(token)


def _service_key_bytes() -> dict[str, bytes]:
    pub = A_KEY.public_key()
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return {
        "pem": pub.public_bytes(serialization.Encoding.PEM, spki),
        "der": pub.public_bytes(serialization.Encoding.DER, spki),
        "jwk": json.dumps(public_jwk(A_KEY)).encode(),
    }


@pytest.mark.parametrize("form", ["pem", "der", "jwk"])
def test_hs256_keyed_with_the_registered_public_key_is_refused(form: str) -> None:
    secret = _service_key_bytes()[form]
    signing_input = f"{seg({'alg': 'HS256', 'typ': 'JWT'})}.{seg(claims())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    refused(f"{signing_input}.{b64(mac)}")


@pytest.mark.parametrize("alg", ["ES384", "ES512", "RS256", "HS256", "EdDSA", "es256"])
def test_other_algorithms_are_refused(alg: str) -> None:
    refused(by_hand({"alg": alg}, claims()))


def test_tampered_or_wrongly_signed_assertions_are_refused() -> None:
    token = assertion(jti="t")
    h, p, s = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(p + "=="))
    for change in ({"exp": T + 120}, {"jti": "u"}, {"aud": ISSUER}, {}):
        assert "signature" in refused(f"{h}.{b64(json.dumps({**body, **change}).encode())}.{s}")
    refused(f"{h}.{p}.{s[:-2]}")
    refused(by_hand({"alg": "ES256"}, claims(), key=B_KEY))
    assert check(token) == A


FLIPPED = assertion(jti="flip")


@settings(max_examples=300)
@given(data=st.data())
def test_any_byte_flip_in_an_assertion_is_refused(data: st.DataObject) -> None:
    raw = bytearray(FLIPPED.encode("ascii"))
    raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    refused(raw.decode("latin-1"))  # a fresh jti store each time: never refused as a replay
    assert check(FLIPPED) == A


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "JWS", 7, ""])
def test_jwts_of_other_types_are_refused(typ: Any) -> None:
    refused(by_hand({"alg": "ES256", "typ": typ}, claims()))


def test_a_vault_access_token_is_not_a_client_assertion() -> None:
    """Even for a service that knew the vault's key, the at+jwt typ keeps them apart."""
    key = TokenKey.generate()
    token, _ = issue_access_token(
        key, issuer=ISSUER, audience=TOKEN_ENDPOINT, client_id=A, sub=A, grant_id="g",
        authorization_details=[], now=NOW, grant_expires_at=NOW + timedelta(days=1))
    assert "typ" in refused(token, jwk=key.public_jwk())


@pytest.mark.parametrize("extra", [{"jwk": public_jwk(B_KEY)}, {"jku": "https://b.example"},
                                   {"crit": ["x"]}, {"x5c": []}])
def test_headers_carrying_their_own_keys_are_refused(extra: dict[str, Any]) -> None:
    refused(by_hand({"alg": "ES256", **extra}, claims(), key=B_KEY))
    refused(by_hand({"alg": "ES256", **extra}, claims()))


@pytest.mark.parametrize("jwk", [
    {**public_jwk(A_KEY), "d": "AAAA"}, {**public_jwk(A_KEY), "crv": "P-384"},
    {"kty": "oct", "k": "c2VjcmV0"}, {**public_jwk(A_KEY), "x": public_jwk(B_KEY)["x"]}, {},
])
def test_a_registered_key_that_is_not_a_p256_public_key_is_refused(jwk: dict[str, Any]) -> None:
    refused(assertion(), jwk=jwk)


def test_malformed_assertions_are_refused() -> None:
    token = assertion()
    for bad in (None, b"x", "", token + ".", token + "=", token.replace(".", "..", 1),
                "x" * 9000, f" {token}"):
        refused(bad)


def test_audience_and_time_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        check(assertion(), audience=[])
    with pytest.raises(ValueError):
        check(assertion(), now=datetime(2026, 11, 22, 9, 0))


# -- on the database --------------------------------------------------------------------------


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    e = make_engine(database_url)
    migrate(e)
    yield e
    e.dispose()


def _rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(OAuthJtiRow)).scalar_one())


def test_replayed_assertion_is_refused_on_the_database(engine: Engine) -> None:
    worker1, worker2 = SqlJtiStore(engine), SqlJtiStore(engine)
    token = assertion(jti="db")
    assert check(token, seen=worker1) == A
    assert "replay" in refused(token, seen=worker1)
    assert "replay" in refused(token, seen=worker2)  # another worker, same database
    assert "replay" in refused(token, seen=worker2, now=NOW + timedelta(seconds=89))
    assert check(assertion(B, B_KEY, jti="db"), seen=worker2, client_id=B,
                 jwk=public_jwk(B_KEY)) == B
    assert _rows(engine) == 2


def test_a_lapsed_jti_may_be_used_again_and_old_rows_are_purged(engine: Engine) -> None:
    store = SqlJtiStore(engine, purge_every=timedelta(minutes=1))
    assert store.use(A, "j", expires_at=NOW + timedelta(seconds=10), now=NOW)
    assert not store.use(A, "j", expires_at=NOW + timedelta(seconds=99), now=NOW)
    assert not store.use(A, "j", expires_at=NOW + timedelta(seconds=99),
                         now=NOW + timedelta(seconds=9))
    # Lapsed: the row is taken over (with the new expiry), even before any purge.
    assert store.use(A, "j", expires_at=NOW + timedelta(seconds=100),
                     now=NOW + timedelta(seconds=10))
    assert not store.use(A, "j", expires_at=NOW + timedelta(seconds=200),
                         now=NOW + timedelta(seconds=50))
    for i in range(5):
        assert store.use(B, f"old-{i}", expires_at=NOW + timedelta(seconds=20),
                         now=NOW + timedelta(seconds=10))
    assert _rows(engine) == 6
    assert store.use(B, "new", expires_at=NOW + timedelta(minutes=10),
                     now=NOW + timedelta(minutes=2))
    assert _rows(engine) == 1  # "j" lapsed at +100 s, the five at +20 s: only "new"
    with pytest.raises(ValueError):
        store.use("x" * 41, "j", expires_at=NOW, now=NOW)
    with pytest.raises(ValueError):
        store.use(A, "j" * 201, expires_at=NOW, now=NOW)


def test_of_concurrent_uses_of_one_assertion_exactly_one_wins(engine: Engine) -> None:
    token = assertion(jti="race")
    results: list[str] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        store = SqlJtiStore(engine)  # one per "worker"
        barrier.wait()
        try:
            results.append(check(token, seen=store))
        except InvalidClientError:
            results.append("refused")

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == ["refused"] * 7 + [A]


def test_memory_store_forgets_lapsed_jtis() -> None:
    store = MemoryJtiStore()
    assert store.use(A, "m", expires_at=NOW + timedelta(seconds=5), now=NOW)
    assert not store.use(A, "m", expires_at=NOW + timedelta(seconds=5), now=NOW)
    assert store.use(A, "n", expires_at=NOW + timedelta(seconds=60),
                     now=NOW + timedelta(seconds=5))
    assert len(store) == 1
