"""`next` after sign-in: whatever is asked, the wallet goes to a page of its own.

The property is checked on `safe_next` with many strings (most built from the pieces
attacks are made of), and over HTTP: the sign-in page's `Location` for a visitor
already signed in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.webwallet import Browser, open_wallet

from wallet.next_path import FALLBACK, safe_next

ORIGIN = "http://localhost:8000"
_PIECES = ["/", "//", "\\", ".", "..", "%2e", "%2E", "%2e%2e", "%2f", "%2F", "%5c", "%25",
           "%00", "%0a", "\t", "\n", "\r", " ", "@", ":", "?", "#", "&", "=", ";",
           "wallet", "/wallet", "oauth", "/oauth/authorize", "authorize", "evil.example",
           "http:", "https:", "javascript:", "localhost:8000", "%E9", "é", "\u2028"]
#: Strings made of the pieces attacks are made of, and any text at all.
NEXTS = st.one_of(st.lists(st.sampled_from(_PIECES), max_size=12).map("".join),
                  st.text(max_size=60),
                  st.builds("/wallet/{}".format, st.text(max_size=40)))
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def assert_stays_home(location: str) -> None:
    """A same-origin path under /wallet or /oauth/authorize, as a browser resolves it."""
    assert location.startswith("/") and not location.startswith("//"), location
    assert "\\" not in location and not _CONTROL.search(location), location
    assert location.isascii(), location
    url = urlsplit(urljoin(ORIGIN, location))
    assert (url.scheme, url.netloc) == ("http", "localhost:8000"), location
    path = unquote(url.path)  # what %2e%2e and %2f would turn into
    assert path in ("/wallet", "/oauth/authorize") or path.startswith("/wallet/"), location
    assert not {".", ".."} & set(path.split("/")), location
    assert "//" not in path and "%" not in path, location


@given(NEXTS)
def test_any_next_becomes_a_path_of_the_wallets_own(asked: str) -> None:
    went = safe_next(asked)
    assert_stays_home(went)
    assert safe_next(went) == went  # through welcome and codes pages it stays the same


@pytest.mark.parametrize("asked", [
    "/wallet/..//evil.example",
    "/wallet/../evil.example",
    "/wallet/%2e%2e//evil.example",
    "/wallet/%2E%2E/%2F/evil.example",
    "/wallet/.%2e/.%2e/ledger",
    "/wallet/%252e%252e//evil.example",
    "/wallet/%5c%5cevil.example",
    "/oauth/authorize/../../evil.example",
    "/wallet\t/..//evil.example",
    "/wallet/\n/../../x",
    "/walletevil.example",
    "/oauth/authorizer",
    "///evil.example",
])
def test_dot_segments_and_encoded_tricks_fall_back_to_the_wallet(asked: str) -> None:
    assert safe_next(asked) == FALLBACK


@pytest.mark.parametrize("asked, goes", [
    ("/wallet/authorize/abc_-XYZ", "/wallet/authorize/abc_-XYZ"),
    ("/wallet/grants?show=ended", "/wallet/grants?show=ended"),
    ("/wallet/./grants/../activity", "/wallet/activity"),
    ("/wallet//activity", "/wallet/activity"),
    ("/wallet/data#top", "/wallet/data"),
    ("/oauth/authorize?client_id=svc_1&request_uri=urn%3Aietf%3Aparams",
     "/oauth/authorize?client_id=svc_1&request_uri=urn%3Aietf%3Aparams"),
])
def test_the_wallets_own_pages_are_kept_in_their_plain_spelling(asked: str, goes: str) -> None:
    assert safe_next(asked) == goes


@pytest.fixture(scope="module")
def signed_in(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    with open_wallet(tmp_path_factory.mktemp("next")) as web:
        yield web.sign_up()


# One wallet for every example: the sign-in page only reads the session.
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(asked=NEXTS)
def test_the_sign_in_page_sends_a_signed_in_visitor_only_to_the_wallet(
        signed_in: Browser, asked: str) -> None:
    r = signed_in.get("/wallet/signin", params={"next": asked}, follow_redirects=False)
    assert r.status_code == 303, (asked, r.status_code, r.text[:200])
    assert_stays_home(r.headers["location"])
