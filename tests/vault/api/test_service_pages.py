"""The privacy notice and DPIA the vault publishes for each service at
/services/{client_id}/privacy and /dpia (issue 11, bug 4): made from the registration and
the catalogs' words, the defaults of a registration's URLs, HTML under a strict policy,
and an HTML 404 for an unknown service. Every link on the demo's consent screens works."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from support.vaultworld import JWK
from support.webwallet import ORIGIN, open_wallet

from vault.api.transparency_routes import CONTENT_SECURITY_POLICY
from vault.app import create_app
from vault.config import Settings
from vault.domain.errors import InvalidService
from vault.services import registry
from vault.services.context import VaultContext
from vault.storage.tables import ServiceRow

DPIA = ("Riverside Council assessed this in November 2026.\n\n"
        "The main risk is an address kept too long <b>not bold</b>.")


def _badge(**kw: object) -> registry.Registration:
    fields: dict[str, object] = {
        "name": "Blue Badge team", "description": "Decides who can have a Blue Badge.",
        "purposes": ["eligibility_assessment"], "categories": ["identity.name", "address.home"],
        "derived": ["age_over_65"], "jwk": JWK,
        "redirect_uris": ["https://badges.example.gov/cb"], "max_days": 90}
    fields.update(kw)
    return registry.Registration(**fields)  # type: ignore[arg-type]


@dataclass
class Site:
    client: TestClient
    ctx: VaultContext
    badge: str
    elsewhere: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("vault")))
    with TestClient(app, base_url=ORIGIN) as client:
        ctx = app.state.vault.ctx
        badge = registry.register_service(ctx, _badge(
            controller="Riverside Council", contact="dataprotection@riverside.example",
            dpia_text=DPIA), public_url=ORIGIN)
        elsewhere = registry.register_service(ctx, _badge(
            name="Meals check", privacy_notice_url="https://meals.example.gov/privacy",
            dpia_url="https://meals.example.gov/dpia", contact="https://meals.example.gov/ask"),
            public_url=ORIGIN)
        registry.suspend_service(ctx, elsewhere)
        yield Site(client, ctx, badge, elsewhere)


def _text(page: str) -> str:
    """The page's words, tags gone and spaces collapsed."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def test_a_registration_without_urls_links_to_the_vaults_pages(site: Site) -> None:
    with Session(site.ctx.engine) as session:
        badge = session.get(ServiceRow, site.badge)
        other = session.get(ServiceRow, site.elsewhere)
    assert badge is not None and other is not None
    assert badge.privacy_notice_url == f"{ORIGIN}/services/{site.badge}/privacy"
    assert badge.dpia_url == f"{ORIGIN}/services/{site.badge}/dpia"
    # A service's own documents stay its own.
    assert (other.privacy_notice_url, other.dpia_url) == (
        "https://meals.example.gov/privacy", "https://meals.example.gov/dpia")


def test_the_privacy_notice_says_who_why_what_how_long_and_whom_to_ask(site: Site) -> None:
    r = site.client.get(f"/services/{site.badge}/privacy")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page, words = r.text, _text(r.text)
    assert '<html lang="en-GB">' in page and page.count("<h1") == 1
    assert "<h1>Privacy notice: Blue Badge team</h1>" in page
    for said in (
        "Decides who can have a Blue Badge.",
        "Responsible for the data it reads (the controller) Riverside Council",
        "To check whether you can get a service or benefit.",  # the purpose's words
        "GDPR Article 6(1)(e): a task carried out in the public interest",  # lawful basis
        "Home address Where you live, and the council for that address.",  # category
        "Name Your given name and family name.",
        "Whether you are 65 or over",  # the derived answer's words
        "lasts at most 90 days",
        "Questions about what this service does with your data: "
        "dataprotection@riverside.example",
    ):
        assert said in words, said
    assert 'href="mailto:dataprotection@riverside.example"' in page
    assert f'href="/services/{site.badge}/dpia"' in page
    assert "own privacy notice" not in page  # the vault's page is the notice


def test_the_dpia_page_shows_the_operators_text_escaped(site: Site) -> None:
    r = site.client.get(f"/services/{site.badge}/dpia")
    assert r.status_code == 200
    assert "<h1>Data protection impact assessment: Blue Badge team</h1>" in r.text
    assert "<p>Riverside Council assessed this in November 2026.</p>" in r.text
    assert "address kept too long &lt;b&gt;not bold&lt;/b&gt;.</p>" in r.text
    assert "<b>" not in r.text
    assert f'href="/services/{site.badge}/privacy"' in r.text


def test_a_service_with_documents_elsewhere_links_to_them(site: Site) -> None:
    privacy = site.client.get(f"/services/{site.elsewhere}/privacy").text
    assert 'href="https://meals.example.gov/privacy"' in privacy
    assert 'href="https://meals.example.gov/ask"' in privacy
    assert "Suspended This service cannot read anyone's data" in _text(privacy)
    dpia = site.client.get(f"/services/{site.elsewhere}/dpia").text
    assert 'href="https://meals.example.gov/dpia"' in dpia
    assert "No assessment has been published" not in dpia


def test_without_any_dpia_the_page_says_so(site: Site, tmp_path: Path) -> None:
    bare = registry.register_service(site.ctx, _badge(name="Bare"), public_url=ORIGIN)
    r = site.client.get(f"/services/{bare}/dpia")
    assert r.status_code == 200 and "No assessment has been published" in r.text
    assert "has not given a contact" in site.client.get(f"/services/{bare}/privacy").text


@pytest.mark.parametrize("client_id", ["svc_nope", "x" * 300, "%2E%2E", "svc_%3Cb%3E"])
@pytest.mark.parametrize("page", ["privacy", "dpia"])
def test_an_unknown_service_is_an_html_404(site: Site, client_id: str, page: str) -> None:
    r = site.client.get(f"/services/{client_id}/{page}")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "<h1>No such service</h1>" in r.text and '<html lang="en-GB">' in r.text
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "<b>" not in r.text


@pytest.mark.parametrize("page", ["privacy", "dpia"])
def test_the_pages_run_no_script_and_load_nothing_from_elsewhere(site: Site,
                                                                 page: str) -> None:
    r = site.client.get(f"/services/{site.badge}/{page}")
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert "<script" not in r.text and " style=" not in r.text
    loaded = re.findall(r'<(?:link|img|script)\b[^>]*(?:href|src)="([^"]*)"', r.text)
    assert loaded and all(u.startswith("/") or u.startswith("data:") for u in loaded), loaded
    assert site.client.get(loaded[0]).status_code == 200  # the stylesheet


def test_a_contact_must_be_an_email_address_or_a_url(site: Site) -> None:
    with pytest.raises(InvalidService, match="contact"):
        registry.register_service(site.ctx, _badge(contact="ring Jo"), public_url=ORIGIN)
    with pytest.raises(InvalidService, match="privacy notice URL is needed"):
        registry.register_service(site.ctx, _badge())  # nowhere to publish one


def test_old_registrations_linking_to_nothing_are_pointed_at_the_pages(tmp_path: Path) -> None:
    """Before these pages, the demo and `vault service add` stored <public URL>/privacy and
    /dpia, which answered 404: on start the vault points those (and only those) here."""
    settings = Settings(data_dir=tmp_path / "vault")
    app = create_app(settings)
    with TestClient(app) as client:
        ctx = app.state.vault.ctx
        old = registry.register_service(ctx, _badge(
            privacy_notice_url=f"{settings.base_url}/privacy",
            dpia_url=f"{settings.base_url}/dpia"))
        cli_default = registry.register_service(ctx, _badge(
            privacy_notice_url=f"{settings.base_url}/privacy"))
        own = registry.register_service(ctx, _badge(
            privacy_notice_url="https://council.example.gov/privacy"))
        assert client.get("/privacy").status_code == 404  # what they linked to
    with TestClient(create_app(settings)) as client:  # the next start
        with Session(app.state.vault.engine) as session:
            rows = {i: session.get(ServiceRow, i) for i in (old, cli_default, own)}
        for service_id in (old, cli_default):
            row = rows[service_id]
            assert row is not None
            assert row.privacy_notice_url == f"{settings.base_url}/services/{service_id}/privacy"
            assert row.dpia_url == f"{settings.base_url}/services/{service_id}/dpia"
            for url in (row.privacy_notice_url, row.dpia_url):
                assert client.get(url.removeprefix(settings.base_url)).status_code == 200
        kept = rows[own]
        assert kept is not None
        assert (kept.privacy_notice_url, kept.dpia_url) == (
            "https://council.example.gov/privacy", None)


def test_every_link_on_the_demos_consent_screens_answers(tmp_path: Path) -> None:
    """A newcomer to the demo gets two requests (Blue Badge, free school meals): every link
    on their consent screens answers 200. And every demo service's privacy notice and DPIA
    (the others' consent screens link to the same) answer 200 too."""
    with open_wallet(tmp_path, demo=True) as web:
        b = web.sign_up()
        requests = b.get("/wallet/requests").text
        grant_pages = sorted(set(re.findall(r'href="(/wallet/grants/gr_[^"/]+)"', requests)))
        assert len(grant_pages) >= 2
        checked: set[str] = set()
        for path in grant_pages:
            page = b.get(path)
            assert page.status_code == 200
            assert 'privacy notice' in page.text
            for href in re.findall(r'href="([^"#]+)"', page.text):
                url = html.unescape(href)
                if url.startswith("/wallet/signout") or url in checked:
                    continue
                assert url.startswith(("/", ORIGIN)), url  # nothing outside the vault
                checked.add(url)
                assert b.get(url.removeprefix(ORIGIN)).status_code == 200, url
        assert any("/services/" in u and u.endswith("/privacy") for u in checked)
        assert any("/services/" in u and u.endswith("/dpia") for u in checked)
        services = registry.list_services(web.ctx)
        assert len(services) == 5
        for s in services:
            for url in (s.privacy_notice_url, s.dpia_url):
                assert url is not None and url.startswith(f"{ORIGIN}/services/{s.id}/")
                assert b.get(url.removeprefix(ORIGIN)).status_code == 200, (s.name, url)
