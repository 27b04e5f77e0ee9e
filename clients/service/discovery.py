"""Where the vault's endpoints are: its RFC 8414 authorization server metadata.

The SDK never hard-codes an OAuth path: it reads them from the metadata document, once
per client, after checking that the document is the issuer's own (RFC 8414 §3.3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from clients.service.errors import ProtocolError

__all__ = ["WELL_KNOWN", "ServerMetadata", "metadata_url", "same_issuer"]

WELL_KNOWN = "/.well-known/oauth-authorization-server"


def metadata_url(issuer: str) -> str:
    """RFC 8414 §3.1: the well-known path goes between the host and the issuer's path."""
    parts = urlsplit(issuer)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or \
            parts.fragment:
        raise ValueError("the issuer must be an http(s) URL without query or fragment")
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, WELL_KNOWN + path, "", ""))


def same_issuer(a: str, b: str) -> bool:
    """Issuers compare as strings (RFC 8414 §3.3); only a trailing slash is forgiven."""
    return a.rstrip("/") == b.rstrip("/")


@dataclass(frozen=True, slots=True)
class ServerMetadata:
    """The endpoints the SDK uses. The optional ones are None when not advertised."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    par_endpoint: str
    backchannel_endpoint: str | None
    introspection_endpoint: str | None
    revocation_endpoint: str | None

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], *, expected_issuer: str) -> ServerMetadata:
        """The metadata of `expected_issuer`; ProtocolError if the document is another
        issuer's or lacks an endpoint the SDK cannot work without."""
        issuer = doc.get("issuer")
        if not isinstance(issuer, str) or not same_issuer(issuer, expected_issuer):
            raise ProtocolError(f"the metadata names the issuer {str(issuer)[:100]!r}, "
                                f"not {expected_issuer!r}")

        def url(name: str, *, required: bool = True) -> str | None:
            value = doc.get(name)
            if isinstance(value, str) and urlsplit(value).scheme in ("http", "https"):
                return value
            if required or value is not None:
                raise ProtocolError(f"the metadata has no usable {name}")
            return None

        def needed(name: str) -> str:
            value = url(name)
            assert value is not None
            return value

        return cls(issuer=issuer, authorization_endpoint=needed("authorization_endpoint"),
                   token_endpoint=needed("token_endpoint"),
                   par_endpoint=needed("pushed_authorization_request_endpoint"),
                   backchannel_endpoint=url("backchannel_authentication_endpoint",
                                            required=False),
                   introspection_endpoint=url("introspection_endpoint", required=False),
                   revocation_endpoint=url("revocation_endpoint", required=False))

    def endpoint(self, name: str) -> str:
        """An optional endpoint by attribute name; ProtocolError if not advertised."""
        value = getattr(self, name)
        if not isinstance(value, str):
            raise ProtocolError(f"the vault does not advertise a {name.replace('_', ' ')}")
        return value
