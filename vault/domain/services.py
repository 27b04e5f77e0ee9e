"""Services: what an operator registers, and the checks on a registration.

A service may only ever ask for the purposes, categories and derived answers it was
registered for, for at most `max_days` at a time; it may ask to write (issue) only the
categories it was registered to issue (`issues`), each one the catalog says may be
issued (ARCHITECTURE §8). Its client key must be an EC P-256
public key (ES256, RFC 7518 §3.4), given as a JWK (RFC 7517/7518 §6.2).
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from vault.domain.categories import categories, is_email, issuable_codes
from vault.domain.codes import category_codes as known_category_codes
from vault.domain.codes import derived_codes as known_derived_codes
from vault.domain.codes import purpose_codes as known_purpose_codes
from vault.domain.codes import spelled
from vault.domain.derived import resolve_derived
from vault.domain.errors import InvalidService, UnknownDerived
from vault.domain.purposes import purposes

__all__ = [
    "MAX_DAYS_LIMIT",
    "MAX_DPIA_TEXT",
    "ServiceProfile",
    "check_p256_public_jwk",
    "contact_link",
    "validate_registration",
]

MAX_DAYS_LIMIT = 3650
#: A DPIA published as text on the vault's page (a longer one belongs at a URL).
MAX_DPIA_TEXT = 20_000

# FIPS 186-4 D.1.2.3 (curve P-256): y^2 = x^3 - 3x + b over GF(p).
_P256_P = 2**256 - 2**224 + 2**192 + 2**96 - 1
_P256_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B

_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class ServiceProfile:
    """What a registered service may ask for (the rest of its registration lives in storage)."""

    id: str
    name: str
    description: str
    purposes: frozenset[str]
    categories: frozenset[str]
    derived: frozenset[str]
    max_days: int
    active: bool
    #: Categories it may write under a write grant (an issuer's); empty for most.
    issues: frozenset[str] = frozenset()


def _check_text(field: str, value: Any, limit: int, *, newlines: bool = False) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidService(f"{field} must be non-empty text")
    if len(value) > limit:
        raise InvalidService(f"{field} must be at most {limit} characters")
    allowed = "\n" if newlines else ""
    if any(unicodedata.category(c) in ("Cc", "Cs") and c not in allowed for c in value):
        raise InvalidService(f"{field} must not contain control characters")


def _b64url_32(field: str, value: Any) -> int:
    # RFC 7518 §6.2.1.2/3: base64url without padding, exactly the field size (32 bytes).
    if not isinstance(value, str) or not _B64URL.fullmatch(value):
        raise InvalidService(f"the JWK's '{field}' must be base64url text without padding")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise InvalidService(f"the JWK's '{field}' is not valid base64url") from None
    if len(raw) != 32:
        raise InvalidService(f"the JWK's '{field}' must encode exactly 32 bytes, not {len(raw)}")
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != value:
        raise InvalidService(f"the JWK's '{field}' is not in canonical base64url form")
    return int.from_bytes(raw, "big")


def check_p256_public_jwk(jwk: Mapping[str, Any]) -> None:
    """InvalidService unless `jwk` is an EC P-256 public key (and holds no private part)."""
    if not isinstance(jwk, Mapping):
        raise InvalidService("the service key must be a JWK object")
    if "d" in jwk or any(k in jwk for k in ("p", "q", "dp", "dq", "qi", "k")):
        raise InvalidService(
            "the JWK holds private key material: register the public key only "
            "(remove 'd' and never send the private key to the vault)"
        )
    if jwk.get("kty") != "EC":
        raise InvalidService(
            f"the service key must be an EC P-256 public key (kty 'EC'), not kty "
            f"'{str(jwk.get('kty'))[:20]}'"
        )
    if jwk.get("crv") != "P-256":
        raise InvalidService(
            f"the service key must be on curve P-256, not '{str(jwk.get('crv'))[:20]}'"
        )
    for field in ("x", "y"):
        if field not in jwk:
            raise InvalidService(f"the JWK is missing its '{field}' coordinate")
    x, y = _b64url_32("x", jwk["x"]), _b64url_32("y", jwk["y"])
    p = _P256_P
    if x >= p or y >= p or (y * y - (x * x * x - 3 * x + _P256_B)) % p != 0:
        raise InvalidService("the JWK's x and y are not a point on curve P-256")
    if "alg" in jwk and jwk["alg"] != "ES256":
        raise InvalidService("the JWK's 'alg', when given, must be ES256")
    if "use" in jwk and jwk["use"] != "sig":
        raise InvalidService("the JWK's 'use', when given, must be 'sig'")


def _check_url(field: str, url: Any, *, https_only: bool) -> None:
    if not isinstance(url, str) or not url:
        raise InvalidService(f"{field} must be an absolute URL")
    if len(url) > 2000:
        raise InvalidService(f"{field} must be at most 2000 characters")
    if any(c.isspace() or unicodedata.category(c) in ("Cc", "Cs") for c in url):
        raise InvalidService(f"{field} must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise InvalidService(f"{field} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidService(f"{field} must be an absolute http or https URL with a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidService(f"{field} must not hold a user name or password")
    if https_only and parts.scheme == "http" and host not in _LOOPBACK_HOSTS:
        raise InvalidService(
            f"{field} must use https (plain http is allowed only for localhost)"
        )


def validate_registration(
    *,
    name: str,
    description: str,
    purposes: Sequence[str],
    categories: Sequence[str],
    derived: Sequence[str],
    max_days: int,
    jwk: Mapping[str, Any],
    redirect_uris: Sequence[str],
    webhook_url: str | None,
    privacy_notice_url: str,
    dpia_url: str | None,
    controller: str | None = None,
    contact: str | None = None,
    dpia_text: str | None = None,
    issues: Sequence[str] = (),
    source_url: str | None = None,
) -> None:
    """Raise InvalidService, saying what is wrong, unless the registration can be accepted.

    With `source_url` the service holds its `issues` at source (ARCHITECTURE §8): the
    vault stores none of them and asks that URL on each read, so any category of the
    catalog may be held, not only those it lets services write.
    """
    _check_text("name", name, 100)
    _check_text("description", description, 2000, newlines=True)
    _check_scope(purposes, categories, derived, issues, held=source_url is not None)
    if source_url is not None:
        if not issues:
            raise InvalidService("a source URL needs the categories held there (--issues)")
        _check_url("source_url", source_url, https_only=True)
    if type(max_days) is not int or not 1 <= max_days <= MAX_DAYS_LIMIT:
        raise InvalidService(f"max_days must be a whole number from 1 to {MAX_DAYS_LIMIT}")
    check_p256_public_jwk(jwk)
    if isinstance(redirect_uris, str) or not isinstance(redirect_uris, Sequence):
        raise InvalidService("redirect_uris must be a list of URLs")
    if not redirect_uris:
        raise InvalidService("at least one redirect URI is needed")
    for uri in redirect_uris:
        _check_url("each redirect URI", uri, https_only=True)
        # RFC 6749 §3.1.2: the redirection endpoint URI must not include a fragment.
        if "#" in uri:
            raise InvalidService("a redirect URI must not contain a fragment ('#...')")
    if webhook_url is not None:
        _check_url("webhook_url", webhook_url, https_only=False)
    _check_url("privacy_notice_url", privacy_notice_url, https_only=False)
    if dpia_url is not None:
        _check_url("dpia_url", dpia_url, https_only=False)
    if controller is not None:
        _check_text("controller", controller, 200)
    if contact is not None:
        contact_link(contact)
    if dpia_text is not None:
        _check_text("dpia_text", dpia_text, MAX_DPIA_TEXT, newlines=True)


def contact_link(contact: str) -> str:
    """Where the pages link a service's contact: mailto: for an email address, or the
    http(s) URL itself; InvalidService for anything else."""
    if not isinstance(contact, str) or "://" not in contact:
        if not isinstance(contact, str) or not is_email(contact):
            raise InvalidService("contact must be an email address or an http(s) URL")
        return f"mailto:{contact}"
    _check_url("contact", contact, https_only=False)
    return contact


def _names(field: str, values: Any) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Sequence | frozenset | set):
        raise InvalidService(f"{field} must be a list of codes")
    if not all(isinstance(v, str) for v in values):
        raise InvalidService(f"every entry in {field} must be text")
    return list(values)


def _check_scope(purpose_codes: Any, category_codes: Any, derived_names: Any,
                 issued_codes: Any = (), *, held: bool = False) -> None:
    wanted_purposes = _names("purposes", purpose_codes)
    if not wanted_purposes:
        raise InvalidService("a service needs at least one purpose")
    known_purposes = purposes()
    for code in wanted_purposes:
        if code not in known_purposes:
            raise InvalidService(f"unknown purpose '{code[:60]}'; the purposes are "
                                 f"{spelled(known_purpose_codes())}")
    wanted_categories = _names("categories", category_codes)
    known_categories = categories()
    for code in wanted_categories:
        if code not in known_categories:
            raise InvalidService(f"unknown category '{code[:60]}'; the categories are "
                                 f"{spelled(known_category_codes())}")
    wanted_derived = _names("derived", derived_names)
    for name in wanted_derived:
        try:
            resolve_derived(name)
        except UnknownDerived as exc:
            raise InvalidService(f"unknown derived answer: {exc}; the derived answers are "
                                 f"{spelled(known_derived_codes())}") from None
    wanted_issues = _names("issues", issued_codes)
    issuable = issuable_codes()
    for code in wanted_issues:
        if code not in issuable and not (held and code in known_categories):
            what = "unknown category" if code not in known_categories else \
                "the catalog does not let any service issue the category"
            raise InvalidService(f"{what} '{code[:60]}'; the categories a service may "
                                 f"issue are {', '.join(issuable)}")
    if not wanted_categories and not wanted_derived and not wanted_issues:
        raise InvalidService("a service needs at least one category or derived answer to "
                             "read, or a category to issue")
