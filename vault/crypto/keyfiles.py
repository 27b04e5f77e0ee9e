"""Key files under the data directory, created on first run with mode 0600."""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import os
import secrets
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ledger.errors import KeyFormatError
from ledger.note import Signer
from vault.errors import ConfigError

__all__ = [
    "key_dir_lock",
    "load_app_secret",
    "load_ledger_signer",
    "read_secret_file",
    "replace_secret_file",
    "write_secret_file",
]

LEDGER_KEY_FILE = "ledger.key"


def write_secret_file(path: Path, content: str) -> None:
    """Create `path` with mode 0600 (never overwrite: O_EXCL)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(content + "\n")
        f.flush()
        os.fsync(f.fileno())


def replace_secret_file(path: Path, content: str) -> None:
    """Write `path` atomically with mode 0600, creating or replacing it.

    The content goes to a new temporary file (mode 0600) in the same directory, is
    flushed to disk, then renamed over `path`, and the directory is synced: a reader or
    a crash half way sees the old file or the new one, never a mix.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)  # mkstemp already uses 0600; be explicit
            f.write(content + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable (POSIX; a no-op where dirs cannot be opened)."""
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


@contextlib.contextmanager
def key_dir_lock(key_dir: Path, lock_name: str) -> Iterator[None]:
    """Hold an exclusive lock in the key directory: serialises creating and rotating one
    kind of key across processes (closing the file releases it, even on a crash)."""
    key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(key_dir / lock_name, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_secret_file(path: Path) -> str:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path} is readable by others (mode {mode & 0o777:o}); chmod 600 it")
    return path.read_text().strip()


def load_ledger_signer(
    key_dir: Path, *, origin: str | None, secret: str | None, create: bool
) -> Signer:
    """The ledger's checkpoint signer: from `secret`, else the key file, else a new one.

    A key is bound to its name (the checkpoint origin); asking for another origin with
    an existing key is an error rather than a silent new log identity.
    """
    path = key_dir / LEDGER_KEY_FILE
    try:
        if secret:
            signer = Signer.parse(secret)
        elif path.exists():
            signer = Signer.parse(read_secret_file(path))
        elif create:
            if origin is None:
                raise ConfigError("cannot create a ledger key without an origin")
            signer = Signer.generate(origin)
            write_secret_file(path, str(signer))
        else:
            raise ConfigError(
                f"no ledger signing key: set VAULT_LEDGER_SIGNING_KEY or create {path}"
            )
    except KeyFormatError as exc:
        raise ConfigError(f"ledger signing key is malformed: {exc}") from None
    if origin is not None and signer.name != origin:
        raise ConfigError(
            f"the ledger key signs for origin {signer.name!r} but {origin!r} was asked for; "
            f"set VAULT_LEDGER_ORIGIN={signer.name} (a log keeps one identity)"
        )
    return signer


APP_SECRET_FILE = "app.key"  # noqa: S105 (a file name, not a secret)


def _decode_secret(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except binascii.Error:
        key = b""
    if len(key) < 32:
        raise ConfigError(f"{where} must be at least 32 random bytes, base64-encoded")
    return key


def load_app_secret(key_dir: Path, *, secret: str | None, production: bool) -> bytes:
    """The web app's own secret (CSRF tokens, recovery-code hashes): from `secret`, else
    the key file, else a new key file. Every worker must share it, and production
    refuses to make one up: a silent new secret would void every recovery code.
    """
    if secret:
        return _decode_secret(secret, "VAULT_APP_SECRET")
    path = key_dir / APP_SECRET_FILE
    if path.exists():
        return _decode_secret(read_secret_file(path), str(path))
    if production:
        raise ConfigError(f"no app secret: set VAULT_APP_SECRET or create {path} "
                          "(32 random bytes, base64)")
    _create_once(path, base64.b64encode(secrets.token_bytes(32)).decode())
    return _decode_secret(read_secret_file(path), str(path))


def _create_once(path: Path, content: str) -> None:
    """Create `path` whole or not at all: written under a temporary name, then linked
    into place, which fails if another worker got there first (then theirs is used).
    A plain O_EXCL create would let that worker read the file before it is written."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(content + "\n")
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp_name, path)
    finally:
        os.unlink(tmp_name)
    _fsync_dir(path.parent)
