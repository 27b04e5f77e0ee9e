"""The city's example services as the launcher sets them up: each registered with the
real `vault` command line (issuers with --issues, their JWKS naming the kid they sign
records with), its files private, registered once and again only when something changed,
and `python -m clients.examples.city` serving each on its port once registered (and
refusing to start before); and their webhook receiver acting once on a delivery the
vault retries."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.responses import Response
from fastapi.testclient import TestClient
from livevault import free_port
from support.cityworld import in_process

from clients.examples import demo
from clients.examples.city import SPECS, agency, gp, school
from clients.examples.city.__main__ import main as city_main
from clients.examples.city.config import (
    CLIENT_FILE,
    JWKS_FILE,
    KEY_FILE,
    CityConfig,
    load_configs,
    service_dir,
    service_urls,
)
from clients.examples.city.site import Site, build_site
from clients.service import ServiceKey, WebhookEvent
from vault.crypto.webhook_signing import printable, signature_headers

VAULT = "http://localhost:8000"


def test_the_launcher_registers_each_city_service_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    vault = demo.vault_command()
    assert in_process([*vault, "db", "upgrade", "--data-dir", str(data)]).returncode == 0
    urls = service_urls(8002)
    first = demo.register_city(vault, data, urls=urls, run=in_process)
    assert set(first) == {s.slug for s in SPECS} and all(r.new for r in first.values())

    listed = in_process([*vault, "service", "list", "--json", "--data-dir", str(data)])
    services = {s["client_id"]: s for s in json.loads(listed.stdout)}
    for spec in SPECS:
        folder = service_dir(data, spec.slug)
        for name in (KEY_FILE, CLIENT_FILE, JWKS_FILE):
            assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, (spec.slug, name)
        key = ServiceKey.from_file(folder / KEY_FILE)
        # An issuer's records name their key by kid: the registered set must hold it.
        assert json.loads((folder / JWKS_FILE).read_text()) == key.public_jwks()
        service = services[first[spec.slug].client_id]
        assert service["name"] == spec.name
        assert service.get("issues", []) == list(spec.issues)
        assert service["derived"] == list(spec.derived)
        assert first[spec.slug].webhook_secret is not None

    configs = load_configs(data, vault_url=VAULT, urls=urls)
    assert configs["counciltax"].peers["agency"] == first["agency"].client_id
    assert configs["gp"].redirect_uri == f"{urls['gp']}/callback"

    again = demo.register_city(vault, data, urls=urls, run=in_process)
    assert {s: (r.new, r.client_id) for s, r in again.items()} == \
        {s: (False, r.client_id) for s, r in first.items()}
    # New URLs are registered again; but the register's address.home stays held by its
    # first registration (one source per category): the launcher says what to do.
    with pytest.raises(demo.LaunchError, match="start again with the earlier --city-port"):
        demo.register_city(vault, data, urls=service_urls(9002), run=in_process)
    moved = json.loads(in_process([*vault, "service", "list", "--json", "--data-dir",
                                   str(data)]).stdout)
    assert len(moved) == len(SPECS) + 1  # the agency, registered again before the register


def _free_ports(n: int) -> int:
    """The first of `n` consecutive loopback ports free now."""
    while True:
        first, taken = free_port(), []
        try:
            for port in range(first, first + n):
                s = socket.socket()
                taken.append(s)
                s.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for s in taken:
                s.close()


def test_the_city_serves_each_service_on_its_port_once_registered(tmp_path: Path) -> None:
    data = tmp_path / "data"
    vault = demo.vault_command()
    assert in_process([*vault, "db", "upgrade", "--data-dir", str(data)]).returncode == 0
    first = _free_ports(1 + max(spec.port_offset for spec in SPECS))
    demo.register_city(vault, data, urls=service_urls(first), run=in_process)
    child = subprocess.Popen(  # the launcher's own command line
        [sys.executable, "-m", "clients.examples.city", "--vault", VAULT, "--port",
         str(first), "--data-dir", str(data)])
    try:
        for spec in SPECS:
            url = f"http://127.0.0.1:{first + spec.port_offset}"
            assert demo.wait_until_healthy(url, child, what=spec.slug,  # type: ignore[arg-type]
                                           stop=threading.Event(), timeout=30)
            page = httpx.get(url + "/")
            assert page.status_code == 200 and 'action="/link"' in page.text, spec.slug
    finally:
        child.terminate()
        child.wait(timeout=10)


def test_the_city_refuses_to_start_before_it_is_registered(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert city_main(["--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no registration under" in err and "make run" in err


def test_a_webhook_delivered_twice_is_acted_on_once_and_a_forged_one_not_at_all() -> None:
    secret = b"s" * 32
    config = CityConfig(vault_url=VAULT, client_id="svc_gp", key=ServiceKey.generate(),
                        webhook_secret=printable(secret), public_url="http://localhost:8006")
    told: list[str] = []

    async def on_event(site: Site, event: WebhookEvent) -> None:
        told.append(event.id)

    site = build_site(config, slug="gp", title="GP", terms=gp.TERMS,
                      home=lambda s, r: Response(), on_event=on_event)
    body = json.dumps({"type": "record.changed", "data": {
        "grant_id": "gr_1", "categories": [], "derived": ["observations_of_concern"],
        "ledger_index": 7}}).encode()
    with TestClient(site.app) as http:
        for message_id in ("msg_1", "msg_1", "msg_2"):
            headers = signature_headers(secret, message_id=message_id,
                                        timestamp=int(time.time()), body=body)
            assert http.post("/webhooks/vault", content=body, headers=headers
                             ).status_code == 204
        forged = signature_headers(b"x" * 32, message_id="msg_3",
                                   timestamp=int(time.time()), body=body)
        assert http.post("/webhooks/vault", content=body, headers=forged).status_code == 400
    assert told == ["msg_1", "msg_2"]


def test_a_link_asking_for_an_offer_the_service_does_not_make_is_refused() -> None:
    """The agency links with its own terms or its `household` offer, nothing else (bad
    input: a clear 400 page, and nothing is asked of the vault)."""
    config = CityConfig(vault_url=VAULT, client_id="svc_agency", key=ServiceKey.generate(),
                        webhook_secret=None, public_url="http://localhost:8002")
    with TestClient(agency.create_app(config)) as http:
        r = http.post("/link", data={"offer": "pension"}, follow_redirects=False)
        assert r.status_code == 400 and "We do not offer that" in r.text
        page = http.get("/").text
        assert 'name="offer" value="household"' in page  # the child's vault's offer


@pytest.mark.parametrize(("answer", "status"), [
    (True, school.ELIGIBLE), (False, school.NOT_ELIGIBLE), (None, school.UNKNOWN)])
def test_the_school_shows_yes_no_or_unknown(answer: bool | None, status: str) -> None:
    assert school.meals({school.ANSWER: answer})[0] == status
    assert school.meals({})[0] == school.UNKNOWN
