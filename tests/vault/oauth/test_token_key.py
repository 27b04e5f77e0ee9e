"""The token signing key: from the setting (PEM or JWK) or a 0600 key file made on first
run (never in production), its RFC 7638 kid, and rotation with a retiring key that the
JWKS keeps publishing."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from vault.crypto.token_key import (
    TOKEN_KEY_FILE,
    TokenKey,
    TokenKeys,
    drop_retiring_token_key,
    jwk_thumbprint,
    load_token_keys,
    rotate_token_key,
)
from vault.errors import ConfigError
from vault.oauth import issue_access_token, jwks, verify_access_token

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def private_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    n = key.private_numbers()
    return {"kty": "EC", "crv": "P-256", "x": b64(n.public_numbers.x.to_bytes(32, "big")),
            "y": b64(n.public_numbers.y.to_bytes(32, "big")),
            "d": b64(n.private_value.to_bytes(32, "big"))}


def pem(key: object, fmt: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8) -> str:
    return key.private_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


def token_for(key: TokenKey) -> str:
    return issue_access_token(
        key, issuer="https://v", audience="https://v/v1", client_id="svc", sub="psub_x",
        grant_id="g", authorization_details=[], now=NOW,
        grant_expires_at=NOW + timedelta(days=1))[0]


def verifies(token: str, keys: TokenKeys) -> bool:
    try:
        verify_access_token(token, keys=keys, issuer="https://v", audience="https://v/v1",
                            now=NOW)
    except Exception:
        return False
    return True


# -- the kid ----------------------------------------------------------------------------------


def test_kid_is_the_rfc_7638_thumbprint() -> None:
    key = TokenKey.generate()
    jwk = key.public_jwk()
    by_hand = f'{{"crv":"P-256","kty":"EC","x":"{jwk["x"]}","y":"{jwk["y"]}"}}'
    assert key.kid == b64(hashlib.sha256(by_hand.encode()).digest())
    assert jwk_thumbprint(jwk) == key.kid  # extra members (kid, use, alg) do not count
    assert len(key.kid) == 43


def test_public_jwk_has_no_private_part_and_fixed_width_coordinates() -> None:
    for _ in range(20):
        jwk = TokenKey.generate().public_jwk()
        assert "d" not in jwk and len(jwk["x"]) == len(jwk["y"]) == 43


def test_repr_never_shows_key_material() -> None:
    key = TokenKey.generate()
    d = TokenKey.__dict__  # slots: no instance dict to leak
    assert "__dict__" not in d
    text = repr(key) + repr(TokenKeys([key], source="env"))
    assert key.kid in text and "PRIVATE" not in text
    assert key.to_pem().split("\n")[1][:20] not in text


# -- where it comes from ----------------------------------------------------------------------


def test_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    key_dir = tmp_path / "keys"
    a = load_token_keys(key_dir, secret=None, production=False)
    path = key_dir / TOKEN_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    assert path.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    b = load_token_keys(key_dir, secret=None, production=True)
    assert a.current.kid == b.current.kid and b.retiring is None
    assert a.source == "file" and a.path == path


def test_workers_starting_together_share_one_key(tmp_path: Path) -> None:
    kids: list[str] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        kids.append(load_token_keys(tmp_path, secret=None, production=False).current.kid)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(kids) == 8 and len(set(kids)) == 1


def test_production_refuses_to_create_a_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="VAULT_TOKEN_SIGNING_KEY"):
        load_token_keys(tmp_path, secret=None, production=True)
    with pytest.raises(ConfigError):
        load_token_keys(tmp_path, secret="  ", production=True)  # blank is unset
    assert not (tmp_path / TOKEN_KEY_FILE).exists()


def test_a_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    load_token_keys(tmp_path, secret=None, production=False)
    (tmp_path / TOKEN_KEY_FILE).chmod(0o640)
    with pytest.raises(ConfigError, match="readable by others"):
        load_token_keys(tmp_path, secret=None, production=False)


@pytest.mark.parametrize("form", ["pkcs8", "sec1", "jwk", "jwk-set"])
def test_setting_takes_a_pem_or_a_private_jwk_and_wins_over_the_file(
    tmp_path: Path, form: str
) -> None:
    load_token_keys(tmp_path, secret=None, production=False)  # a file that must be ignored
    raw = ec.generate_private_key(ec.SECP256R1())
    secret = {
        "pkcs8": pem(raw),
        "sec1": pem(raw, serialization.PrivateFormat.TraditionalOpenSSL),
        "jwk": json.dumps({**private_jwk(raw), "kid": "ignored", "use": "sig", "alg": "ES256"}),
        "jwk-set": json.dumps({"keys": [private_jwk(raw)]}),
    }[form]
    keys = load_token_keys(tmp_path, secret=secret, production=True)
    assert keys.source == "env" and keys.retiring is None
    assert keys.current.kid == TokenKey(raw).kid
    assert keys.current.kid != "ignored"


def test_setting_with_two_keys_names_current_then_retiring() -> None:
    new, old = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    for secret in (pem(new) + "\n" + pem(old),
                   json.dumps({"keys": [private_jwk(new), private_jwk(old)]})):
        keys = load_token_keys(Path("/nonexistent"), secret=secret, production=True)
        assert keys.current.kid == TokenKey(new).kid
        assert keys.retiring is not None and keys.retiring.kid == TokenKey(old).kid
        assert [k["kid"] for k in jwks(keys)["keys"]] == [TokenKey(new).kid, TokenKey(old).kid]


def _bad_secrets() -> dict[str, str]:
    p256 = ec.generate_private_key(ec.SECP256R1())
    jwk = private_jwk(p256)
    other = private_jwk(ec.generate_private_key(ec.SECP256R1()))
    encrypted = p256.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw")).decode()
    return {
        "not a key": "hello",
        "not json": "{nope",
        "rsa": pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "p384": pem(ec.generate_private_key(ec.SECP384R1())),
        "public pem": p256.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
        "encrypted pem": encrypted,
        "pem and junk": pem(p256) + "\njunk",
        "public jwk": json.dumps({k: v for k, v in jwk.items() if k != "d"}),
        "mismatched jwk": json.dumps({**jwk, "d": other["d"]}),
        "p384 jwk": json.dumps({**jwk, "crv": "P-384"}),
        "rs256 jwk": json.dumps({**jwk, "alg": "RS256"}),
        "enc jwk": json.dumps({**jwk, "use": "enc"}),
        "padded jwk": json.dumps({**jwk, "d": jwk["d"] + "="}),
        "short jwk": json.dumps({**jwk, "d": jwk["d"][:-2]}),
        "three keys": json.dumps({"keys": [jwk, other, private_jwk(
            ec.generate_private_key(ec.SECP256R1()))]}),
        "same twice": pem(p256) + pem(p256),
        "empty set": json.dumps({"keys": []}),
        "set not list": json.dumps({"keys": jwk}),
        "json list": json.dumps([jwk]),
    }


@pytest.mark.parametrize("name", sorted(_bad_secrets()))
def test_malformed_setting_is_a_clear_config_error_without_key_material(name: str) -> None:
    secret = _bad_secrets()[name]
    with pytest.raises(ConfigError) as info:
        load_token_keys(Path("/nonexistent"), secret=secret, production=True)
    message = str(info.value)
    assert "VAULT_TOKEN_SIGNING_KEY" in message
    for line in secret.splitlines():
        if len(line) > 20 and "BEGIN" not in line and "END" not in line:
            assert line[:20] not in message
    for value in json.loads(secret).get("keys", [{}]) if name.endswith("jwk") else []:
        assert value.get("d", "nothing-to-leak") not in message


def test_a_malformed_key_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / TOKEN_KEY_FILE
    path.write_text("garbage\n")
    path.chmod(0o600)
    with pytest.raises(ConfigError, match=str(path)):
        load_token_keys(tmp_path, secret=None, production=False)


# -- rotation ---------------------------------------------------------------------------------


def test_rotation_keeps_the_old_key_published_until_dropped(tmp_path: Path) -> None:
    first = load_token_keys(tmp_path, secret=None, production=False)
    old = first.current
    old_token = token_for(old)

    rotated = rotate_token_key(tmp_path)
    assert rotated.current != old and rotated.retiring == old
    assert [k["kid"] for k in jwks(rotated)["keys"]] == [rotated.current.kid, old.kid]
    assert verifies(old_token, rotated) and verifies(token_for(rotated.current), rotated)
    assert stat.S_IMODE((tmp_path / TOKEN_KEY_FILE).stat().st_mode) == 0o600
    assert load_token_keys(tmp_path, secret=None, production=True).retiring == old

    dropped = drop_retiring_token_key(tmp_path)
    assert dropped.current == rotated.current and dropped.retiring is None
    assert not verifies(old_token, dropped)
    assert drop_retiring_token_key(tmp_path).current == rotated.current  # nothing to drop


def test_a_second_rotation_drops_the_oldest_key(tmp_path: Path) -> None:
    k0 = load_token_keys(tmp_path, secret=None, production=False).current
    k1 = rotate_token_key(tmp_path).current
    keys = rotate_token_key(tmp_path)
    assert keys.retiring == k1 and k0 not in list(keys)
    assert len(keys) == 2


def test_a_running_worker_adopts_a_rotation_made_by_another_process(tmp_path: Path) -> None:
    worker = load_token_keys(tmp_path, secret=None, production=False, recheck=0)
    old = worker.current
    new = rotate_token_key(tmp_path).current  # `vault keys rotate`, elsewhere
    assert worker.current == new and worker.retiring == old
    assert worker.get(new.kid) == new.public_jwk()
    assert verifies(token_for(new), worker)
    assert worker.verification_keys().keys() == {new.kid, old.kid}


def test_a_worker_looks_at_the_file_at_most_every_recheck_seconds(tmp_path: Path) -> None:
    worker = load_token_keys(tmp_path, secret=None, production=False, recheck=3600)
    old = worker.current
    rotate_token_key(tmp_path)
    assert worker.current == old and worker.retiring is None  # not looked yet
    worker._checked -= 3600  # an hour later
    assert worker.current != old and worker.retiring == old


def test_a_worker_keeps_its_keys_if_the_file_turns_bad(tmp_path: Path) -> None:
    worker = load_token_keys(tmp_path, secret=None, production=False, recheck=0)
    kid = worker.current.kid
    path = tmp_path / TOKEN_KEY_FILE
    path.chmod(0o644)  # unsafe: refused, so the worker keeps what it had
    path.write_text(path.read_text() + "\n")
    assert worker.current.kid == kid


def test_keys_from_the_setting_cannot_be_rotated_here(tmp_path: Path) -> None:
    load_token_keys(tmp_path, secret=None, production=False)
    secret = TokenKey.generate().to_pem()
    with pytest.raises(ConfigError, match="VAULT_TOKEN_SIGNING_KEY"):
        rotate_token_key(tmp_path, secret=secret)
    with pytest.raises(ConfigError, match="VAULT_TOKEN_SIGNING_KEY"):
        drop_retiring_token_key(tmp_path, secret=secret)
    with pytest.raises(ConfigError, match="no token key file"):
        rotate_token_key(tmp_path / "elsewhere")


def test_keys_need_one_current_and_at_most_one_retiring() -> None:
    with pytest.raises(ConfigError):
        TokenKeys([], source="env")
    with pytest.raises(ConfigError):
        TokenKeys([TokenKey.generate() for _ in range(3)], source="env")
    with pytest.raises(ConfigError, match="P-256"):
        TokenKey(ec.generate_private_key(ec.SECP384R1()))
