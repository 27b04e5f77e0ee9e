"""Where the vault's OAuth endpoints are, and what it supports (RFC 8414, ARCHITECTURE §4).

The paths below are a contract (ARCHITECTURE §4): the routes are registered under these
constants, so the metadata can never name an endpoint the app serves somewhere else.
Every endpoint URL is the issuer (`Settings.base_url`) followed by its path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "AUTHORIZATION_DETAILS_TYPE",
    "AUTHORIZATION_PATH",
    "BACKCHANNEL_PATH",
    "CIBA_GRANT_TYPE",
    "INTROSPECTION_PATH",
    "JWKS_PATH",
    "METADATA_PATH",
    "PAR_PATH",
    "REVOCATION_PATH",
    "TOKEN_PATH",
    "Endpoints",
    "server_metadata",
]

METADATA_PATH = "/.well-known/oauth-authorization-server"
AUTHORIZATION_PATH = "/oauth/authorize"
TOKEN_PATH = "/oauth/token"  # noqa: S105 (a path, not a secret)
PAR_PATH = "/oauth/par"
BACKCHANNEL_PATH = "/oauth/bc-authorize"
INTROSPECTION_PATH = "/oauth/introspect"
REVOCATION_PATH = "/oauth/revoke"
JWKS_PATH = "/oauth/jwks"

#: The one RFC 9396 authorization details type: the terms of a grant.
AUTHORIZATION_DETAILS_TYPE = "personal_data"
#: OpenID CIBA §4.
CIBA_GRANT_TYPE = "urn:openid:params:grant-type:ciba"

#: Every endpoint authenticates clients the same way (RFC 7523 private_key_jwt, ES256).
_CLIENT_AUTH = ["private_key_jwt"]
_CLIENT_AUTH_ALGS = ["ES256"]


@dataclass(frozen=True, slots=True)
class Endpoints:
    """The absolute URL of every endpoint of the authorization server `issuer`."""

    issuer: str
    authorization: str
    token: str
    par: str
    backchannel: str
    introspection: str
    revocation: str
    jwks: str

    @classmethod
    def of(cls, issuer: str) -> Endpoints:
        base = issuer.rstrip("/")
        return cls(issuer=issuer, authorization=base + AUTHORIZATION_PATH,
                   token=base + TOKEN_PATH, par=base + PAR_PATH,
                   backchannel=base + BACKCHANNEL_PATH,
                   introspection=base + INTROSPECTION_PATH,
                   revocation=base + REVOCATION_PATH, jwks=base + JWKS_PATH)

    @property
    def par_audience(self) -> tuple[str, ...]:
        """What a client assertion sent to the PAR endpoint may name in `aud`: the issuer,
        the token endpoint or the PAR endpoint (RFC 9126 §2)."""
        return (self.issuer, self.token, self.par)

    def audience_at(self, endpoint: str) -> tuple[str, ...]:
        """What a client assertion sent to `endpoint` may name in `aud`: the issuer, the
        token endpoint (RFC 7523 §3) or `endpoint` itself."""
        return tuple(dict.fromkeys((self.issuer, self.token, endpoint)))


def server_metadata(issuer: str) -> dict[str, Any]:
    """The RFC 8414 §2 authorization server metadata document for `issuer`."""
    e = Endpoints.of(issuer)
    return {
        "issuer": e.issuer,
        "authorization_endpoint": e.authorization,
        "token_endpoint": e.token,
        "pushed_authorization_request_endpoint": e.par,  # RFC 9126 §5
        "require_pushed_authorization_requests": True,
        "backchannel_authentication_endpoint": e.backchannel,  # CIBA §4
        "introspection_endpoint": e.introspection,  # RFC 7662
        "revocation_endpoint": e.revocation,  # RFC 7009
        "jwks_uri": e.jwks,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "authorization_response_iss_parameter_supported": True,  # RFC 9207
        "grant_types_supported": ["authorization_code", "refresh_token", CIBA_GRANT_TYPE],
        "code_challenge_methods_supported": ["S256"],  # RFC 7636; plain is refused
        "token_endpoint_auth_methods_supported": _CLIENT_AUTH,
        "token_endpoint_auth_signing_alg_values_supported": _CLIENT_AUTH_ALGS,
        "introspection_endpoint_auth_methods_supported": _CLIENT_AUTH,
        "introspection_endpoint_auth_signing_alg_values_supported": _CLIENT_AUTH_ALGS,
        "revocation_endpoint_auth_methods_supported": _CLIENT_AUTH,
        "revocation_endpoint_auth_signing_alg_values_supported": _CLIENT_AUTH_ALGS,
        "authorization_details_types_supported": [AUTHORIZATION_DETAILS_TYPE],  # RFC 9396 §10
        "backchannel_token_delivery_modes_supported": ["poll"],
        "backchannel_user_code_parameter_supported": False,
        # No scopes: what a service may do is said by authorization_details alone.
        "scopes_supported": [],
    }
