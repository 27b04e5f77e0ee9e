"""The ES256 key that signs the vault's requests to sources (ARCHITECTURE §8, held at source).

A category held at source is never stored: on a read the vault POSTs the source a request
JWS that the source checks against `/oauth/jwks`. That key is kept, published and rotated
exactly like the access-token key (`vault.crypto.token_key`: one or two P-256 keys, the
current one first, kid = RFC 7638 thumbprint), but it is another key, with its own kid:

* `VAULT_SOURCE_SIGNING_KEY`, else `<key_dir>/source.key` (created on first run outside
  production);
* `rotate_source_key` makes a new current key and keeps the old one as the retiring key,
  still published, so a request signed just before the rotation still verifies (requests
  live at most 60 s); `drop_retiring_source_key` stops publishing it.

A separate key, not the token key: a source then trusts only what was signed to ask it,
and an access token (which a service holds) can never pass for a request to a source.
"""

from __future__ import annotations

from pathlib import Path

from vault.crypto.token_key import (
    TokenKeys,
    drop_retiring_token_key,
    load_token_keys,
    rotate_token_key,
)
from vault.errors import ConfigError

__all__ = ["SOURCE_KEY_FILE", "SOURCE_KEY_SETTING", "drop_retiring_source_key",
           "load_source_keys", "rotate_source_key"]

SOURCE_KEY_FILE = "source.key"
SOURCE_KEY_SETTING = "VAULT_SOURCE_SIGNING_KEY"
_ENV_ROTATE_HINT = (
    f"the source-request keys come from {SOURCE_KEY_SETTING}: rotate by putting a new key "
    "first and the old one second (two PEM blocks, or a JWK Set), then drop the old one "
    "a minute later (requests to sources live at most 60 s)"
)


def load_source_keys(key_dir: Path, *, secret: str | None, production: bool,
                     recheck: float = 1.0) -> TokenKeys:
    """The source-request keys from `secret` (VAULT_SOURCE_SIGNING_KEY), else
    `<key_dir>/source.key`, else (outside production) a new key file."""
    return load_token_keys(key_dir, secret=secret, production=production, recheck=recheck,
                           file_name=SOURCE_KEY_FILE, setting=SOURCE_KEY_SETTING)


def _refuse_env(secret: str | None) -> None:
    if secret is not None and secret.strip():
        raise ConfigError(_ENV_ROTATE_HINT)


def rotate_source_key(key_dir: Path, *, secret: str | None = None) -> TokenKeys:
    """A new current source-request key; the old current one becomes the retiring one."""
    _refuse_env(secret)
    return rotate_token_key(key_dir, file_name=SOURCE_KEY_FILE)


def drop_retiring_source_key(key_dir: Path, *, secret: str | None = None) -> TokenKeys:
    """Stop publishing the retiring source-request key."""
    _refuse_env(secret)
    return drop_retiring_token_key(key_dir, file_name=SOURCE_KEY_FILE)
