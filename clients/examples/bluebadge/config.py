"""What the Blue Badge app needs to run, and where the launcher keeps it.

The operator (here `clients.examples.demo`) registers the app with the vault once and
leaves three files under `<data-dir>/bluebadge/`: the private key (0600), the public
JWKS it registered, and `client.json` (0600: client_id, webhook secret, and the URLs it
was registered with). The app only reads them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clients.service import ServiceKey

__all__ = [
    "CLIENT_FILE",
    "DEFAULT_PUBLIC_URL",
    "JWKS_FILE",
    "KEY_FILE",
    "AppConfig",
    "BlueBadgeError",
    "NotRegistered",
    "app_dir",
    "load_config",
]

DEFAULT_PUBLIC_URL = "http://localhost:8001"
KEY_FILE = "service-key.pem"
JWKS_FILE = "jwks.json"
CLIENT_FILE = "client.json"


class BlueBadgeError(Exception):
    """Base of the example app's own errors.

    BlueBadgeError
    └── NotRegistered   no key or client.json under the data dir yet
    """


class NotRegistered(BlueBadgeError):
    """The app has not been registered with the vault (run the launcher first)."""


@dataclass(frozen=True)
class AppConfig:
    """Everything the app is told; built once and passed to `create_app`."""

    vault_url: str
    client_id: str
    key: ServiceKey
    #: `whsec_...`, from `vault service add --json` / `vault service webhook-secret`.
    webhook_secret: str | None
    #: Where citizens' browsers reach this app; the redirect URI is `<public_url>/callback`.
    public_url: str = DEFAULT_PUBLIC_URL

    @property
    def redirect_uri(self) -> str:
        return f"{self.public_url.rstrip('/')}/callback"

    @property
    def webhook_url(self) -> str:
        return f"{self.public_url.rstrip('/')}/webhooks/vault"


def app_dir(data_dir: Path) -> Path:
    return data_dir / "bluebadge"


def _registration(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise NotRegistered(f"cannot read {path}: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("client_id"), str):
        raise NotRegistered(f"{path} has no client_id")
    return doc


def load_config(data_dir: Path, *, vault_url: str,
                public_url: str = DEFAULT_PUBLIC_URL) -> AppConfig:
    """The app's configuration from the files the launcher wrote."""
    folder = app_dir(data_dir)
    hint = "run `python -m clients.examples.demo` (or `make run`) first"
    if not (folder / KEY_FILE).is_file() or not (folder / CLIENT_FILE).is_file():
        raise NotRegistered(f"no registration under {folder}: {hint}")
    doc = _registration(folder / CLIENT_FILE)
    secret = doc.get("webhook_secret")
    return AppConfig(vault_url=vault_url.rstrip("/"), client_id=doc["client_id"],
                     key=ServiceKey.from_file(folder / KEY_FILE),
                     webhook_secret=secret if isinstance(secret, str) else None,
                     public_url=public_url.rstrip("/"))
