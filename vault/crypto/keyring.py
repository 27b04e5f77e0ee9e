"""Key-encryption keys (KEKs): where they come from, and wrapping citizen data keys.

Keys come from `VAULT_MASTER_KEY` (one or more comma-separated base64 32-byte keys,
the first one current) or else from `<key_dir>/master.json`, created on first run
outside production:

    {"current": "kek_0123456789abcdef", "keys": {"kek_0123456789abcdef": "<base64>"}}

The file has mode 0600 in a 0700 directory, is refused when group or others may read
it, and is only ever replaced whole (temporary file, fsync, rename) under a lock, so a
rotation killed half way leaves the old file intact. A KEK id is derived from the key
itself, so the same key has the same id wherever it is configured.

Rotation adds a new current KEK and keeps the old ones, which still open the data keys
they wrapped until every data key has been re-wrapped (`Keyring.unwrap` then
`Keyring.wrap`); only then may an old KEK be dropped.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vault.crypto.envelope import KEY_SIZE, data_key_ad, new_key, open_sealed, seal
from vault.crypto.errors import CryptoError, DecryptionFailed, UnknownKek
from vault.crypto.keyfiles import key_dir_lock, read_secret_file, replace_secret_file
from vault.errors import ConfigError

__all__ = [
    "MASTER_KEY_FILE",
    "Kek",
    "Keyring",
    "add_new_kek",
    "drop_kek",
    "kek_id",
    "load_keyring",
    "new_master_key",
]

MASTER_KEY_FILE = "master.json"
_LOCK_FILE = ".master.lock"
_ID_LABEL = b"vault-kek-id"
_GENERATE_HINT = "generate one with `openssl rand -base64 32`"
_ENV_ROTATE_HINT = (
    "the keys come from VAULT_MASTER_KEY: rotate by putting a new key first "
    "(VAULT_MASTER_KEY=<new>,<old>), re-wrap the data keys, then remove the old key"
)


def kek_id(key: bytes) -> str:
    """The stable id of a KEK: "kek_" + the first 8 bytes of SHA-256(label || key), hex."""
    return "kek_" + hashlib.sha256(_ID_LABEL + key).digest()[:8].hex()


def new_master_key() -> str:
    """A fresh KEK in the base64 form VAULT_MASTER_KEY takes."""
    return base64.b64encode(new_key()).decode("ascii")


@dataclass(frozen=True)
class Kek:
    """A key-encryption key. Its repr and str show the id only, never the key."""

    id: str
    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.key, bytes) or len(self.key) != KEY_SIZE:
            raise CryptoError(f"a key-encryption key must be {KEY_SIZE} bytes")

    @classmethod
    def from_key(cls, key: bytes) -> Kek:
        return cls(kek_id(key), key)


class Keyring:
    """The KEKs the vault knows: `current` wraps new data keys, the others still unwrap."""

    def __init__(
        self, keks: Sequence[Kek], *, source: Literal["env", "file"], path: Path | None = None
    ) -> None:
        if not keks:
            raise ConfigError("a keyring needs at least one key-encryption key")
        by_id: dict[str, Kek] = {}
        for k in keks:
            if k.id in by_id:
                raise ConfigError(f"key-encryption key {k.id} appears twice")
            by_id[k.id] = k
        self.current: Kek = keks[0]
        self.source = source
        self.path = path
        self._keks = by_id
        self._mtime = self._file_mtime()

    def _file_mtime(self) -> tuple[int, int, int] | None:
        """The key file's identity: every change replaces it (a new inode), and its
        timestamps alone are too coarse to tell writes milliseconds apart."""
        try:
            st = self.path.stat() if self.path is not None else None
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size) if st is not None else None

    def get(self, kek_id: str) -> Kek:
        try:
            return self._keks[kek_id]
        except KeyError:
            pass
        # `vault keys rotate` may have added it from another process: a file-managed
        # keyring looks at its file again (once) before giving up.
        if self.source == "file" and self.path is not None and self._reload():
            return self.get(kek_id) if kek_id in self._keks else self._unknown(kek_id)
        return self._unknown(kek_id)

    @staticmethod
    def _unknown(kek_id: str) -> Kek:
        raise UnknownKek(kek_id)

    def _reload(self) -> bool:
        """Adopt the key file's KEKs (the file's current one becomes current here too)."""
        assert self.path is not None
        try:
            fresh = _file_keyring(self.path)
        except (ConfigError, OSError):
            return False
        self._keks, self.current, self._mtime = fresh._keks, fresh.current, fresh._mtime
        return True

    def ids(self) -> list[str]:
        """Every KEK id, the current one first (then, from the key file, newest first;
        from VAULT_MASTER_KEY, in its order)."""
        return list(self._keks)

    def __contains__(self, kek_id: object) -> bool:
        return kek_id in self._keks

    def __len__(self) -> int:
        return len(self._keks)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Keyring):
            return NotImplemented
        return list(self._keks.values()) == list(other._keks.values())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Keyring(current={self.current.id!r}, ids={self.ids()!r}, source={self.source!r})"

    def wrap(self, data_key: bytes, *, citizen_id: str) -> tuple[str, bytes]:
        """Seal `data_key` under the current KEK, bound to the citizen and the KEK id."""
        if not isinstance(data_key, bytes) or len(data_key) != KEY_SIZE:
            raise CryptoError(f"a data key must be {KEY_SIZE} bytes")
        # Never wrap under a KEK that a rotation elsewhere has replaced (and may soon
        # retire): if the key file changed, adopt it first.
        if self.source == "file" and self._file_mtime() != self._mtime:
            self._reload()
        kek = self.current
        return kek.id, seal(kek.key, data_key, ad=data_key_ad(citizen_id=citizen_id,
                                                               kek_id=kek.id))

    def unwrap(self, kek_id: str, wrapped: bytes, *, citizen_id: str) -> bytes:
        """The data key `wrap` sealed for this citizen (UnknownKek, DecryptionFailed)."""
        kek = self.get(kek_id)
        key = open_sealed(kek.key, wrapped, ad=data_key_ad(citizen_id=citizen_id, kek_id=kek.id))
        if len(key) != KEY_SIZE:
            raise DecryptionFailed
        return key


# -- where keys come from ---------------------------------------------------------------


def _decode_key(text: str) -> bytes | None:
    """Standard or URL-safe base64, padding optional; None when it is not base64."""
    text = text.translate(str.maketrans("-_", "+/"))
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _parse_master_key(value: str) -> list[Kek]:
    # Messages name a key by its position only: never echo key material.
    parts = [p.strip() for p in value.split(",")]
    n = len(parts)
    keks: list[Kek] = []
    for i, part in enumerate(parts, 1):
        where = f"VAULT_MASTER_KEY key {i} of {n}"
        if not part:
            raise ConfigError(f"{where} is empty (keys are comma-separated, current first)")
        key = _decode_key(part)
        if key is None:
            raise ConfigError(f"{where} is not valid base64; {_GENERATE_HINT}")
        if len(key) != KEY_SIZE:
            raise ConfigError(
                f"{where} decodes to {len(key)} bytes, not {KEY_SIZE}; {_GENERATE_HINT}"
            )
        kek = Kek.from_key(key)
        if any(k.id == kek.id for k in keks):
            raise ConfigError(f"{where} repeats an earlier key ({kek.id})")
        keks.append(kek)
    return keks


def _bad_file(path: Path, why: str) -> ConfigError:
    return ConfigError(f"{path} is not a valid master key file: {why}")


def _read_key_file(path: Path) -> tuple[list[Kek], str]:
    """The file's KEKs in file order (oldest first) and the current id."""
    text = read_secret_file(path)
    try:
        doc: Any = json.loads(text)
    except ValueError:
        raise _bad_file(path, "not JSON") from None
    if not isinstance(doc, dict) or set(doc) != {"current", "keys"}:
        raise _bad_file(path, 'expected exactly the fields "current" and "keys"')
    current, keys = doc["current"], doc["keys"]
    if not isinstance(keys, dict) or not keys:
        raise _bad_file(path, '"keys" must be a non-empty object')
    keks: list[Kek] = []
    for kid, b64 in keys.items():
        key = _decode_key(b64) if isinstance(b64, str) else None
        if key is None or len(key) != KEY_SIZE:
            raise _bad_file(path, f"key {kid} is not {KEY_SIZE} bytes of base64")
        if kek_id(key) != kid:
            raise _bad_file(path, f"key {kid} does not match its id (was the file edited?)")
        keks.append(Kek(kid, key))
    if not isinstance(current, str) or current not in keys:
        raise _bad_file(path, '"current" must name one of its keys')
    return keks, current


def _file_keyring(path: Path) -> Keyring:
    keks, current = _read_key_file(path)
    # Current first, then the older keys newest first.
    ordered = [k for k in keks if k.id == current] + [k for k in reversed(keks) if k.id != current]
    return Keyring(ordered, source="file", path=path)


def _write_key_file(path: Path, keks: Sequence[Kek], current: str) -> None:
    doc = {
        "current": current,
        "keys": {k.id: base64.b64encode(k.key).decode("ascii") for k in keks},
    }
    replace_secret_file(path, json.dumps(doc, indent=2))


@contextlib.contextmanager
def _locked(key_dir: Path) -> Iterator[Path]:
    """Hold the key directory's lock (serialises creation and rotation across processes)."""
    with key_dir_lock(key_dir, _LOCK_FILE):
        yield key_dir / MASTER_KEY_FILE


def load_keyring(key_dir: Path, *, master_key: str | None, production: bool) -> Keyring:
    """The KEKs from `master_key` (VAULT_MASTER_KEY), else from `<key_dir>/master.json`.

    A blank `master_key` counts as unset. Outside production a missing key file is
    created with one new key; in production it is an error.
    """
    if master_key is not None and master_key.strip():
        return Keyring(_parse_master_key(master_key), source="env")
    path = key_dir / MASTER_KEY_FILE
    if path.exists():
        return _file_keyring(path)
    if production:
        raise ConfigError(f"production mode needs VAULT_MASTER_KEY or {path}")
    with _locked(key_dir) as path:
        if not path.exists():  # another process may have created it meanwhile
            kek = Kek.from_key(new_key())
            _write_key_file(path, [kek], kek.id)
        return _file_keyring(path)


def _refuse_env(master_key: str | None) -> None:
    if master_key is not None and master_key.strip():
        raise ConfigError(_ENV_ROTATE_HINT)


def _read_managed(path: Path) -> tuple[list[Kek], str]:
    if not path.exists():
        raise ConfigError(
            f"no master key file at {path} to rotate; when {_ENV_ROTATE_HINT.removeprefix('the ')}"
        )
    return _read_key_file(path)


def add_new_kek(key_dir: Path, *, master_key: str | None = None) -> Keyring:
    """Generate a new KEK in the key file and make it current, keeping the old ones.

    Pass `master_key` (VAULT_MASTER_KEY) when it may be set: env-managed keys cannot be
    rotated here, and the ConfigError says how to rotate them.
    """
    _refuse_env(master_key)
    with _locked(key_dir) as path:
        keks, _ = _read_managed(path)
        new = Kek.from_key(new_key())
        _write_key_file(path, [*keks, new], new.id)
        return _file_keyring(path)


def drop_kek(key_dir: Path, kek_id: str, *, master_key: str | None = None) -> Keyring:
    """Remove an old KEK from the key file (never the current one).

    Only drop a KEK once no data key is wrapped under it: what it wrapped is then lost.
    """
    _refuse_env(master_key)
    with _locked(key_dir) as path:
        keks, current = _read_managed(path)
        if kek_id == current:
            raise ConfigError(
                f"{kek_id} is the current key-encryption key and cannot be dropped; "
                "add a new one first (vault keys rotate)"
            )
        rest = [k for k in keks if k.id != kek_id]
        if len(rest) == len(keks):
            raise UnknownKek(kek_id)
        _write_key_file(path, rest, current)
        return _file_keyring(path)
