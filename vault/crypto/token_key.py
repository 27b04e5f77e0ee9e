"""The ES256 key that signs access tokens, and the retiring one rotation keeps published.

Keys come from `VAULT_TOKEN_SIGNING_KEY` or else from `<key_dir>/token.key`, created on
first run outside production (production refuses to make one up: every worker must
sign with, and publish, the same key). Either source holds one or two P-256 private
keys, the current one first and a retiring one second:

* PEM: one or two `-----BEGIN PRIVATE KEY-----` (PKCS #8) or `EC PRIVATE KEY` (SEC 1)
  blocks, one after the other (the key file is always PKCS #8);
* JSON: a private JWK (RFC 7517/7518 §6.2.2: kty EC, crv P-256, x, y, d), or a JWK Set
  `{"keys": [current, retiring]}`.

A key's `kid` is always its RFC 7638 JWK thumbprint (a `kid` given in a JWK is ignored),
so the same key has the same id wherever it is configured.

Rotation (`rotate_token_key`) writes a new current key and keeps the old current one as
the retiring key, in one atomic replacement of the file: the JWKS then publishes both,
so tokens signed just before the rotation still verify until they expire (<= 5 min).
The retiring key is dropped by the next rotation or by `drop_retiring_token_key`.
A file-managed `TokenKeys` notices the file changed (another process rotated it) and
re-reads it, so every worker soon signs with and publishes the same keys.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jose import jws
from jose.backends import ECKey

from vault.crypto.keyfiles import key_dir_lock, read_secret_file, replace_secret_file
from vault.errors import ConfigError

__all__ = [
    "TOKEN_KEY_FILE",
    "TokenKey",
    "TokenKeys",
    "drop_retiring_token_key",
    "jwk_thumbprint",
    "load_token_keys",
    "rotate_token_key",
]

TOKEN_KEY_FILE = "token.key"  # noqa: S105 (a file name, not a secret)
_LOCK_FILE = ".token.lock"
_ALG = "ES256"
_SETTING = "VAULT_TOKEN_SIGNING_KEY"
_PEM_BLOCK = re.compile(
    r"-----BEGIN ([A-Z0-9 ]+)-----[A-Za-z0-9+/=\s]*?-----END \1-----", re.DOTALL)
_ENV_ROTATE_HINT = (
    "the token keys come from VAULT_TOKEN_SIGNING_KEY: rotate by putting a new key first "
    "and the old one second (two PEM blocks, or a JWK Set), then drop the old one after "
    "the access-token lifetime has passed"
)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_32(value: Any) -> bytes | None:
    """A P-256 field element or scalar: exactly 32 bytes in canonical base64url."""
    if not isinstance(value, str) or len(value) != 43 or not re.fullmatch(r"[A-Za-z0-9_-]+", value):
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=")
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 and _b64url(raw) == value else None


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 thumbprint (SHA-256, base64url) of an EC public key's JWK.

    RFC 7638 §3.2: the required members only (crv, kty, x, y), in lexicographic order,
    no whitespace.
    """
    if jwk.get("kty") != "EC":
        raise ValueError("only EC keys are thumbprinted here")
    members = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    if not all(isinstance(v, str) for v in members.values()):
        raise ValueError("crv, kty, x and y must be strings")
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return _b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


class TokenKey:
    """One P-256 private key that signs access tokens. Its repr shows the kid only.

    The private key never leaves this object: callers get `sign` and `public_jwk`.
    """

    __slots__ = ("_jose", "_jwk", "_private", "kid")

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
            private_key.curve, ec.SECP256R1
        ):
            raise ConfigError("a token signing key must be an EC P-256 (ES256) private key")
        self._private = private_key
        self._jose = ECKey(private_key, _ALG)
        self.kid = jwk_thumbprint(self._public_members())
        # Built once: every token verification looks it up.
        self._jwk = {**self._public_members(), "kid": self.kid, "use": "sig", "alg": _ALG}

    @classmethod
    def generate(cls) -> TokenKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    def _public_members(self) -> dict[str, str]:
        numbers = self._private.public_key().public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64url(numbers.x.to_bytes(32, "big")),
            "y": _b64url(numbers.y.to_bytes(32, "big")),
        }

    def public_jwk(self) -> dict[str, str]:
        """The public key as published in the JWKS: kty crv x y, kid, use sig, alg ES256."""
        return dict(self._jwk)

    def to_pem(self) -> str:
        """PKCS #8 PEM, unencrypted: for the 0600 key file only."""
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii").strip()

    def sign(self, payload: Mapping[str, Any], *, typ: str) -> str:
        """A compact JWS of `payload` (RFC 7515), ES256, with `kid` and `typ` in the header."""
        return str(jws.sign(dict(payload), self._jose, headers={"kid": self.kid, "typ": typ},
                            algorithm=_ALG))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TokenKey) and other.kid == self.kid

    def __hash__(self) -> int:
        return hash(self.kid)

    def __repr__(self) -> str:
        return f"TokenKey(kid={self.kid!r})"


# -- parsing ----------------------------------------------------------------------------


def _key_from_jwk(jwk: Any, where: str) -> TokenKey:
    if not isinstance(jwk, dict):
        raise ConfigError(f"{where} is not a JWK object")
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise ConfigError(f"{where} must be an EC P-256 key (kty EC, crv P-256)")
    if "alg" in jwk and jwk["alg"] != _ALG:
        raise ConfigError(f"{where}: 'alg', when given, must be {_ALG}")
    if "use" in jwk and jwk["use"] != "sig":
        raise ConfigError(f"{where}: 'use', when given, must be 'sig'")
    if "d" not in jwk:
        raise ConfigError(f"{where} is a public key; the signing key needs its private part 'd'")
    fields = {name: _b64url_32(jwk.get(name)) for name in ("x", "y", "d")}
    bad = [name for name, raw in fields.items() if raw is None]
    if bad:
        raise ConfigError(f"{where}: {', '.join(bad)} must be 32 bytes of base64url")
    x, y, d = (int.from_bytes(fields[n] or b"", "big") for n in ("x", "y", "d"))
    try:
        public = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1())
        private = ec.EllipticCurvePrivateNumbers(d, public).private_key()
    except ValueError:
        raise ConfigError(f"{where}: d, x and y are not one P-256 key pair") from None
    return TokenKey(private)


def _key_from_pem(block: str, where: str) -> TokenKey:
    try:
        key = serialization.load_pem_private_key(block.encode("ascii"), password=None)
    except (ValueError, TypeError):
        raise ConfigError(
            f"{where} is not an unencrypted PEM private key (PKCS #8 or SEC 1)") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError(f"{where} must be an EC P-256 private key (ES256)")
    return TokenKey(key)


def _parse_keys(text: str, source: str) -> list[TokenKey]:
    """The keys in `text`, current first. Messages name keys by position, never by content."""
    text = text.strip()
    keys: list[TokenKey]
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            raise ConfigError(f"{source} starts like JSON but is not valid JSON") from None
        if isinstance(doc, dict) and "keys" in doc:
            items = doc["keys"]
            if not isinstance(items, list):
                raise ConfigError(f"{source}: a JWK Set's 'keys' must be a list")
        else:
            items = [doc]
        keys = [_key_from_jwk(j, f"{source} key {i}") for i, j in enumerate(items, 1)]
    elif "-----BEGIN" in text:
        blocks = [m.group(0) for m in _PEM_BLOCK.finditer(text)]
        rest = _PEM_BLOCK.sub("", text).strip()
        if not blocks or rest:
            raise ConfigError(f"{source} must hold only PEM private key blocks")
        keys = [_key_from_pem(b, f"{source} key {i}") for i, b in enumerate(blocks, 1)]
    else:
        raise ConfigError(
            f"{source} must be a PEM EC private key or a private JWK (P-256); generate one with "
            "`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`")
    if not keys:
        raise ConfigError(f"{source} holds no key")
    if len(keys) > 2:
        raise ConfigError(f"{source} holds {len(keys)} keys; at most two: current, then retiring")
    if len(keys) == 2 and keys[0] == keys[1]:
        raise ConfigError(f"{source} holds the same key twice")
    return keys


# -- the keys in use --------------------------------------------------------------------


def _file_identity(path: Path | None) -> tuple[int, int, int] | None:
    """Every change replaces the file (a new inode), so this tells versions apart."""
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class TokenKeys:
    """The current token key (signs) and, during a rotation, the retiring one (verifies).

    Iterating gives the current key, then the retiring one. `get(kid)` gives a public
    JWK for verification (so a `TokenKeys` can be passed wherever a `{kid: jwk}` mapping
    is). A file-managed instance re-reads its file when another process replaced it,
    looking at most every `recheck` seconds (a stat per token verification was a tenth of
    the resource server's CPU): another worker's rotation is adopted within that time.
    """

    def __init__(
        self, keys: list[TokenKey], *, source: Literal["env", "file"], path: Path | None = None,
        recheck: float = 1.0,
    ) -> None:
        if not 1 <= len(keys) <= 2:
            raise ConfigError("token keys: one current key and at most one retiring key")
        self.source = source
        self.path = path
        self._lock = threading.Lock()
        self._keys = tuple(keys)
        self._identity = _file_identity(path)
        self._recheck = recheck
        self._checked = time.monotonic()

    def _refresh(self) -> None:
        if self.source != "file":
            return
        now = time.monotonic()
        if now - self._checked < self._recheck:
            return
        self._checked = now
        if _file_identity(self.path) == self._identity:
            return
        assert self.path is not None
        with self._lock:
            identity = _file_identity(self.path)
            if identity == self._identity:
                return
            try:
                keys = _parse_keys(read_secret_file(self.path), str(self.path))
            except (ConfigError, OSError):
                return  # keep the keys we have; the next look tries again
            self._keys, self._identity = tuple(keys), identity

    @property
    def current(self) -> TokenKey:
        self._refresh()
        return self._keys[0]

    @property
    def retiring(self) -> TokenKey | None:
        self._refresh()
        return self._keys[1] if len(self._keys) > 1 else None

    def __iter__(self) -> Iterator[TokenKey]:
        self._refresh()
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, kid: str, /) -> dict[str, str] | None:
        """The public JWK with this kid (shared: do not change it), or None."""
        for key in self:
            if key.kid == kid:
                return key._jwk
        return None

    def verification_keys(self) -> dict[str, dict[str, str]]:
        """kid -> public JWK, for every key tokens may still be signed with."""
        return {key.kid: key.public_jwk() for key in self}

    def __repr__(self) -> str:
        return f"TokenKeys(kids={[k.kid for k in self._keys]!r}, source={self.source!r})"


@contextlib.contextmanager
def _locked(key_dir: Path, file_name: str = TOKEN_KEY_FILE) -> Iterator[Path]:
    """Hold the key files' lock (serialises rotations across processes)."""
    with key_dir_lock(key_dir, _LOCK_FILE):
        yield key_dir / file_name


def _file_keys(path: Path, recheck: float = 1.0) -> TokenKeys:
    return TokenKeys(_parse_keys(read_secret_file(path), str(path)), source="file", path=path,
                     recheck=recheck)


def _write(path: Path, keys: list[TokenKey]) -> None:
    replace_secret_file(path, "\n".join(k.to_pem() for k in keys))


def load_token_keys(key_dir: Path, *, secret: str | None, production: bool,
                    recheck: float = 1.0, file_name: str = TOKEN_KEY_FILE,
                    setting: str = _SETTING) -> TokenKeys:
    """The token keys from `secret` (VAULT_TOKEN_SIGNING_KEY), else `<key_dir>/token.key`,
    else (outside production) a new key file with one new key.

    A blank `secret` counts as unset. Production refuses to create a key: a silent new
    key would void every token the other workers issue and verify. `file_name` and
    `setting` name another ES256 key kept the same way (`vault.crypto.source_key`).
    """
    if secret is not None and secret.strip():
        return TokenKeys(_parse_keys(secret, setting), source="env")
    path = key_dir / file_name
    if path.exists():
        return _file_keys(path, recheck)
    if production:
        raise ConfigError(f"no signing key: set {setting} or create {path} "
                          "(a PEM EC P-256 private key)")
    # Under the lock, and whole (temporary file, then rename): a worker starting at the
    # same moment either makes the file itself or reads a complete one, never a half.
    with _locked(key_dir, file_name) as path:
        if not path.exists():
            _write(path, [TokenKey.generate()])
        return _file_keys(path, recheck)


def _refuse_env(secret: str | None) -> None:
    if secret is not None and secret.strip():
        raise ConfigError(_ENV_ROTATE_HINT)


def _read_managed(path: Path) -> list[TokenKey]:
    if not path.exists():
        raise ConfigError(f"no token key file at {path} to change; when "
                          f"{_ENV_ROTATE_HINT.removeprefix('the ')}")
    return _parse_keys(read_secret_file(path), str(path))


def rotate_token_key(key_dir: Path, *, secret: str | None = None,
                     file_name: str = TOKEN_KEY_FILE) -> TokenKeys:
    """A new current key in the key file; the old current key becomes the retiring one.

    The previous retiring key (if any) is dropped: rotate at most once per access-token
    lifetime. Pass `secret` (VAULT_TOKEN_SIGNING_KEY) when it may be set: keys from the
    setting cannot be rotated here, and the ConfigError says how to rotate them.
    """
    _refuse_env(secret)
    with _locked(key_dir, file_name) as path:
        old = _read_managed(path)
        _write(path, [TokenKey.generate(), old[0]])
        return _file_keys(path)


def drop_retiring_token_key(key_dir: Path, *, secret: str | None = None,
                            file_name: str = TOKEN_KEY_FILE) -> TokenKeys:
    """Stop publishing the retiring key (once every token it signed has expired)."""
    _refuse_env(secret)
    with _locked(key_dir, file_name) as path:
        keys = _read_managed(path)
        if len(keys) > 1:
            _write(path, keys[:1])
        return _file_keys(path)
