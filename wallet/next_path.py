"""Where the wallet goes after sign-in or sign-up: the `next` parameter, made safe.

`next` comes from a link anyone can write, and ends up in a `Location` header, a link
and the script's `location.assign`, so it must never leave the wallet (an open redirect)
however it is spelled: `/wallet/..//evil.example` (dot segments that a browser resolves
before a slash pair becomes an authority), `/\\evil.example` (browsers read `\\` as `/`),
`%2e%2e` (RFC 3986 §6.2.2.2: the same segment as `..`), `%2f`, tabs and newlines (which
browsers strip from URLs, WHATWG URL "basic URL parser").

Backslashes and control characters refuse it; the path is percent-decoded once, and
any `%`, backslash or control character that reveals refuses it too; dot segments are
resolved (RFC 3986 §5.2.4) and empty segments dropped, so `//` never appears; it must
then be `/wallet`, below it, or `/oauth/authorize`. Anything else becomes `/wallet`.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit

__all__ = ["FALLBACK", "MAX_NEXT_LENGTH", "safe_next"]

FALLBACK = "/wallet"
MAX_NEXT_LENGTH = 500
# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Kept as they are in a path we write back; everything else is percent-encoded.
_PATH_SAFE = "/-._~!$&'()*+,;=:@"
_QUERY_SAFE = _PATH_SAFE + "?%"


def safe_next(raw: str) -> str:
    """`raw` as a path of the wallet's own (with its query), or `FALLBACK`."""
    if (len(raw) > MAX_NEXT_LENGTH or not raw.startswith("/") or raw.startswith("//")
            or "\\" in raw or _CONTROL.search(raw) or not _utf8(raw)):
        return FALLBACK
    # Starting with one "/" it has neither scheme nor authority (RFC 3986 §4.2).
    parts = urlsplit(raw)
    try:
        path = unquote(parts.path, errors="strict")
    except UnicodeDecodeError:
        return FALLBACK
    if "%" in path or "\\" in path or _CONTROL.search(path):
        return FALLBACK  # double-encoded, or hiding what the checks above refuse
    path = _normalised(path)
    if path not in ("/wallet", "/oauth/authorize") and not path.startswith("/wallet/"):
        return FALLBACK
    query = quote(parts.query, safe=_QUERY_SAFE)
    return quote(path, safe=_PATH_SAFE) + (f"?{query}" if query else "")


def _utf8(text: str) -> bool:
    """False for lone surrogates, which no URL can carry."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _normalised(path: str) -> str:
    """RFC 3986 §5.2.4 dot-segment removal, with empty segments dropped too."""
    kept: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if kept:
                kept.pop()
        elif segment not in ("", "."):
            kept.append(segment)
    trailing = path.endswith(("/", "/.", "/..")) and bool(kept)
    return "/" + "/".join(kept) + ("/" if trailing else "")
