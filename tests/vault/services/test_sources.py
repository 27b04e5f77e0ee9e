"""Held at source, without sockets (ARCHITECTURE §8): the request JWS and its key,
registration, and writes refused.

* Any request the vault signs verifies with nothing but `/oauth/jwks` (the SDK's
  `verify_source_request`) and carries exactly the contract's claims (hypothesis);
  another audience, a replay, an expired request or a flipped bit is refused.
* The source-request key has its own kid beside the token keys in /oauth/jwks, and a
  rotation keeps the old kid published, so a request signed just before still verifies.
* Registration: the categories held and nothing of where on the ledger; a second source
  of a category, or one the vault already stores values of, is refused; writes of a
  category held at source are refused (citizen's and operator's alike).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from support.ledgerview import full_entries

from clients.service import ServiceKey
from clients.service.errors import SourceRequestInvalid
from clients.service.sources import SeenRequests, verify_source_request
from vault.app import create_app
from vault.config import Settings
from vault.crypto.source_key import load_source_keys, rotate_source_key
from vault.crypto.token_key import TokenKeys
from vault.domain.errors import InvalidService
from vault.errors import InvalidRequest
from vault.oauth.tokens import jwks
from vault.services import citizens, records, registry
from vault.services.context import VaultContext
from vault.services.sources import REQUEST_TYP, HeldAtSource, grant_ref, sign_request
from vault.storage.database import read_only

URL = "https://register.example.gov/source"
VAULT = "https://vault.example.gov"
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> TokenKeys:
    return load_source_keys(tmp_path_factory.mktemp("k"), secret=None, production=False)


def _sign(keys: TokenKeys, **kw: Any) -> str:
    args: dict[str, Any] = {"issuer": VAULT, "url": URL, "sub": "psub_abc",
                            "category": "address.home", "purpose": "service_provision",
                            "grant_id": "gr_1", "now": NOW}
    args.update(kw)
    return sign_request(keys, **args)


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
                max_size=40)


@settings(max_examples=60, deadline=None)
@given(sub=_text, category=_text, purpose=_text, grant_id=_text)
def test_every_request_verifies_against_the_jwks_with_the_contracts_claims(
        keys: TokenKeys, sub: str, category: str, purpose: str, grant_id: str) -> None:
    compact = _sign(keys, sub=sub, category=category, purpose=purpose, grant_id=grant_id)
    asked = verify_source_request(compact, jwks(keys), audience=URL, issuer=VAULT,
                                  now=NOW.timestamp())
    assert (asked.sub, asked.category, asked.purpose) == (sub, category, purpose)
    assert asked.grant_ref == hashlib.sha256(grant_id.encode()).hexdigest()
    assert asked.kid == keys.current.kid
    assert 0 < asked.expires_at - asked.issued_at <= 60
    header, payload = (orjson.loads(_b64(p)) for p in compact.split(".")[:2])
    assert header == {"alg": "ES256", "typ": REQUEST_TYP, "kid": keys.current.kid}
    assert set(payload) == {"iss", "aud", "sub", "category", "purpose", "grant_ref", "jti",
                            "iat", "exp"}
    assert payload["aud"] == URL and payload["grant_ref"] == grant_ref(grant_id)


def _b64(part: str) -> bytes:
    import base64
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_bit_flipped_in_a_request_is_refused(keys: TokenKeys, data: st.DataObject) -> None:
    compact = _sign(keys)
    raw = bytearray(compact.encode())
    at = data.draw(st.integers(0, len(raw) - 1))
    bit = data.draw(st.integers(0, 6))
    raw[at] ^= 1 << bit
    try:
        flipped = raw.decode()
    except UnicodeDecodeError:
        return
    if flipped == compact:
        return
    with pytest.raises(SourceRequestInvalid):
        verify_source_request(flipped, jwks(keys), audience=URL, now=NOW.timestamp())


@pytest.mark.parametrize(("change", "code"), [
    ({"audience": "https://other.example.gov/source"}, "wrong_audience"),
    ({"issuer": "https://another-vault.example"}, "wrong_issuer"),
    ({"now": NOW.timestamp() + 61}, "expired"),
    ({"now": NOW.timestamp() - 3600}, "not_yet_valid"),
])
def test_a_request_for_elsewhere_or_out_of_time_is_refused(
        keys: TokenKeys, change: dict[str, Any], code: str) -> None:
    args: dict[str, Any] = {"audience": URL, "issuer": VAULT, "now": NOW.timestamp()}
    args.update(change)
    with pytest.raises(SourceRequestInvalid) as refused:
        verify_source_request(_sign(keys), jwks(keys), **args)
    assert refused.value.code == code


def test_a_request_is_answered_once_and_an_access_token_never_passes_for_one(
        keys: TokenKeys) -> None:
    seen = SeenRequests()
    compact = _sign(keys)
    verify_source_request(compact, jwks(keys), audience=URL, now=NOW.timestamp(), seen=seen)
    with pytest.raises(SourceRequestInvalid) as replayed:
        verify_source_request(compact, jwks(keys), audience=URL, now=NOW.timestamp(),
                              seen=seen)
    assert replayed.value.code == "replayed"
    # Signed by the same key but as another kind of token: refused by its typ.
    other = keys.current.sign({"aud": URL, "iat": int(NOW.timestamp())}, typ="at+jwt")
    with pytest.raises(SourceRequestInvalid) as typ:
        verify_source_request(other, jwks(keys), audience=URL, now=NOW.timestamp())
    assert typ.value.code == "malformed"


def test_the_source_key_is_its_own_in_oauth_jwks_and_rotation_keeps_the_old_kid(
        tmp_path: Path) -> None:
    settings_ = Settings(data_dir=tmp_path / "v")
    app = create_app(settings_)
    with TestClient(app, base_url="http://localhost:8000") as client:
        state = app.state.vault
        published = client.get("/oauth/jwks").json()["keys"]
        kids = [k["kid"] for k in published]
        source_kid = state.source_keys.current.kid
        assert source_kid in kids and state.token_keys.current.kid in kids
        assert source_kid != state.token_keys.current.kid and len(set(kids)) == len(kids)
        assert all(k["use"] == "sig" and k["alg"] == "ES256" for k in published)
        old = sign_request(state.source_keys, issuer=VAULT, url=URL, sub="psub_x",
                           category="address.home", purpose="service_provision",
                           grant_id="gr_1", now=datetime.now(UTC))
        rotate_source_key(settings_.key_dir)
        state.source_keys._recheck = 0  # look at the file now, not within the second
        after = client.get("/oauth/jwks").json()
        new_kid = state.source_keys.current.kid
        assert new_kid != source_kid and new_kid in [k["kid"] for k in after["keys"]]
        # Signed before the rotation: still verifiable with what is published after it.
        assert verify_source_request(old, after, audience=URL).kid == source_kid
        assert state.token_keys.current.kid in [k["kid"] for k in after["keys"]]


# -- registration and writes --------------------------------------------------------------


def _source(ctx: VaultContext, url: str = URL, issues: tuple[str, ...] = ("address.home",),
            **kw: Any) -> str:
    return registry.register_service(ctx, registry.Registration(
        name="City electoral register", description="Who lives where",
        purposes=["service_provision"], categories=[], issues=issues,
        jwks=ServiceKey.generate().public_jwks(),
        redirect_uris=["https://register.example.gov/cb"],
        privacy_notice_url="https://register.example.gov/privacy", source_url=url, **kw))


def _entries(ctx: VaultContext) -> list[dict[str, Any]]:
    with read_only(ctx.engine).begin() as conn:
        return full_entries(conn)


def test_registration_puts_which_categories_are_held_on_the_ledger(ctx: VaultContext) -> None:
    sid = _source(ctx)
    [entry] = [e for e in _entries(ctx) if e["kind"] == "service.registered"]
    assert entry["body"]["service_id"] == sid
    assert entry["body"]["issues"] == entry["body"]["held_at_source"] == ["address.home"]
    assert "register.example.gov" not in orjson.dumps(entry).decode()


def test_one_source_per_category_and_none_for_what_the_vault_stores(ctx: VaultContext) -> None:
    _source(ctx)
    with pytest.raises(InvalidRequest, match=r"already held at source: address\.home"):
        _source(ctx)
    c = citizens.enrol_citizen(ctx)
    records.write_record(ctx, c.id, "identity.name", {"given": "Ada", "family": "L"})
    with pytest.raises(InvalidService, match=r"already holds values of identity\.name"):
        _source(ctx, issues=("identity.name",))
    with pytest.raises(InvalidService, match="source_url must use https"):
        _source(ctx, url="http://register.example.gov/source", issues=("contact.email",))
    with pytest.raises(InvalidService, match="unknown category"):
        _source(ctx, issues=("identity.shoe_size",))
    # Without a source URL, a category nobody may issue stays refused, as before.
    with pytest.raises(InvalidService, match="does not let any service issue"):
        _source(ctx, url=None, issues=("contact.email",))  # type: ignore[arg-type]


def test_a_write_of_a_category_held_at_source_is_refused(ctx: VaultContext) -> None:
    _source(ctx)
    c = citizens.enrol_citizen(ctx)
    address = {"lines": ["1 Guildhall Yard"], "town": "London", "postcode": "EC2V 5AE",
               "local_authority": "City of London"}
    with pytest.raises(HeldAtSource, match="held at source by City electoral register"):
        records.write_record(ctx, c.id, "address.home", address)
    with pytest.raises(HeldAtSource):  # the operator's `vault citizen write --source`
        records.write_record(ctx, c.id, "address.home", address, source="svc_other")
    assert records.read_records(ctx, c.id) == {}



def test_a_read_whose_token_names_nothing_held_asks_no_source_and_makes_no_query(
        ctx: VaultContext, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import asyncio

    from vault.services.sources import SourceFetcher

    _source(ctx)
    fetcher = SourceFetcher(ctx, keys=load_source_keys(tmp_path, secret=None, production=False),
                            pairwise_secret=b"s" * 32, issuer=VAULT)
    looked: list[str] = []

    def precheck(*args: Any) -> None:
        looked.append(args[2])
        return None

    monkeypatch.setattr(fetcher, "_precheck", precheck)

    def fetch(asked: list[dict[str, Any]] | None) -> Any:
        return asyncio.run(fetcher.fetch_for(service_id="svc_r", grant_id="gr_1", asked=asked))

    assert fetch([{"categories": ["identity.name"], "derived": ["age_over_65"]}]) == ()
    assert looked == []  # the token's terms name nothing held: no query at all
    assert fetch([{"categories": [], "derived": ["resident_in:Riverside"]}]) == ()
    assert fetch([{"categories": ["address.home"]}]) == ()
    assert fetch(None) == ()
    assert looked == ["gr_1"] * 3  # an input of a derived answer counts, and no hint is no hint
