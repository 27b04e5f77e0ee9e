"""Who the passkeys are for: the RP ID and the origins allowed to use them.

Built from settings (the vault's public URL), never from a request. WebAuthn L3 §5.1.4:
the RP ID is a domain name equal to, or a registrable suffix of, each origin's host;
an IP address is never one. Browsers offer WebAuthn only in a secure context, so an
origin is https, or http on `localhost` (or a name under it) for development.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from vault.errors import ConfigError

__all__ = ["DEFAULT_RP_NAME", "RelyingParty"]

DEFAULT_RP_NAME = "Citizen Data Vault"

_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_localhost(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost")


def _check_rp_id(rp_id: str) -> None:
    if _is_ip(rp_id.strip("[]")):
        raise ConfigError(
            f"{rp_id!r} is an IP address, and WebAuthn never accepts an IP address as "
            "relying party ID: serve the vault at a domain name, or at localhost for "
            "development (http://localhost:8000, not http://127.0.0.1:8000)")
    labels = rp_id.split(".")
    if len(rp_id) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ConfigError(
            f"{rp_id!r} is not a domain name in lower case (letters, digits and hyphens, "
            "dot-separated), so it cannot be a WebAuthn relying party ID")


def _origin_of(url: str) -> tuple[str, str]:
    """The origin ("scheme://host[:port]") of an absolute URL, and its host name."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{url!r} is not a valid URL: {exc}") from None
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError(f"{url!r} is not an absolute http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"{url!r} must not hold a user name or password")
    if _is_ip(host):
        _check_rp_id(host)  # the clearest message first: an IP address never works
    if parts.scheme == "http" and not _is_localhost(host):
        raise ConfigError(
            f"{url!r}: browsers allow passkeys only on https:// pages, or on "
            "http://localhost for development")
    default = {"http": 80, "https": 443}[parts.scheme]
    shown = f"[{host}]" if ":" in host else host
    netloc = shown if port in (None, default) else f"{shown}:{port}"
    return f"{parts.scheme}://{netloc}", host


@dataclass(frozen=True, slots=True)
class RelyingParty:
    """The vault as a WebAuthn relying party."""

    rp_id: str
    rp_name: str
    origins: tuple[str, ...]

    def __post_init__(self) -> None:
        _check_rp_id(self.rp_id)
        if not self.rp_name.strip():
            raise ConfigError("the relying party needs a name to show on the passkey prompt")
        if not self.origins:
            raise ConfigError("the relying party needs at least one origin")
        for origin in self.origins:
            normal, host = _origin_of(origin)
            if normal != origin:
                raise ConfigError(
                    f"{origin!r} is not written as an origin; write {normal!r} "
                    "(scheme, host and port only, no path or trailing slash)")
            if host != self.rp_id and not host.endswith("." + self.rp_id):
                raise ConfigError(
                    f"the origin {origin!r} is not on {self.rp_id!r} or a subdomain of "
                    "it, so browsers would refuse passkeys there")

    @classmethod
    def from_public_url(
        cls, url: str, *, rp_name: str = DEFAULT_RP_NAME, extra_origins: Iterable[str] = (),
    ) -> RelyingParty:
        """The relying party of a vault served at `url` (e.g. settings.public_url).

        RP ID = the URL's host name; origin = its scheme, host and port. Other pages
        on subdomains of that host may be added with `extra_origins`.
        """
        origin, host = _origin_of(url.strip())
        _check_rp_id(host)
        origins = tuple(dict.fromkeys((origin, *extra_origins)))
        return cls(rp_id=host, rp_name=rp_name, origins=origins)
