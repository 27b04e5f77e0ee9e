from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from vault.api.health import check_metrics_access, is_loopback
from vault.app import create_app
from vault.config import Settings

LOOPBACK = ("127.0.0.1", 40000)
TOKEN = "scrape-me-0123456789"


@pytest.fixture
def local(settings: Settings) -> Iterator[TestClient]:
    """A client on loopback (TestClient's default peer is the name "testclient")."""
    with TestClient(create_app(settings), client=LOOPBACK) as c:
        yield c


def test_readyz_reports_the_schema(client: TestClient) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"


def test_metrics_in_prometheus_format(local: TestClient) -> None:
    r = local.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    for name in ("vault_ledger_entries", "vault_ledger_checkpoint_size", "vault_citizens",
                 "vault_services", "vault_grants"):
        assert f"# TYPE {name} gauge" in text


def test_demo_is_a_living_system(tmp_path: object) -> None:
    s = Settings(data_dir=Path(str(tmp_path)), ledger_public=True, demo=True)
    with TestClient(create_app(s), client=LOOPBACK) as c:
        text = c.get("/metrics").text
    assert 'vault_grants{state="approved"} 1.0' in text
    assert 'vault_grants{state="paused"} 1.0' in text
    assert 'vault_grants{state="requested"} 1.0' in text
    assert 'vault_grants{state="exhausted"} 1.0' in text
    assert 'vault_grants{state="denied"} 1.0' in text
    assert "vault_services 5.0" in text and "vault_citizens 1.0" in text


def test_metrics_are_not_public(client: TestClient) -> None:
    r = client.get("/metrics")  # from a peer that is not loopback, with no token configured
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    assert "vault_citizens" not in r.text and "VAULT_METRICS_TOKEN" in r.json()["detail"]


def test_metrics_answer_the_configured_token(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, metrics_token=SecretStr(TOKEN))
    with TestClient(create_app(s)) as c:
        assert "vault_citizens" in c.get(
            "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
        for sent in (None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x"):
            r = c.get("/metrics", headers={"Authorization": sent} if sent else {})
            assert r.status_code == 401, sent
            assert r.headers["www-authenticate"] == 'Bearer realm="metrics"'
            assert "vault_citizens" not in r.text


def test_the_loopback_allowance_can_be_turned_off(tmp_path: Path) -> None:
    """Behind a reverse proxy every peer is loopback: VAULT_METRICS_LOOPBACK=false."""
    s = Settings(data_dir=tmp_path, metrics_loopback=False, metrics_token=SecretStr(TOKEN))
    with TestClient(create_app(s), client=LOOPBACK) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert Settings.model_fields["metrics_loopback"].default is True  # on by default


def test_metrics_loopback_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_METRICS_LOOPBACK", "false")
    monkeypatch.setenv("VAULT_METRICS_TOKEN", TOKEN)
    s = Settings()
    assert s.metrics_loopback is False and s.metrics_token is not None
    assert s.metrics_token.get_secret_value() == TOKEN and TOKEN not in repr(s)


@pytest.mark.parametrize(("host", "local"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("10.0.0.1", False), ("::ffff:10.0.0.1", False), ("2001:db8::1", False),
    ("testclient", False), ("localhost", False), ("", False), (None, False)])
def test_what_counts_as_loopback(host: str | None, local: bool) -> None:
    assert is_loopback(host) is local


def test_access_rules() -> None:
    def check(**kw: object) -> str:
        args: dict[str, object] = {"peer": "10.0.0.1", "authorization": None,
                                   "expected_token": None, "allow_loopback": True}
        access = check_metrics_access(**{**args, **kw})  # type: ignore[arg-type]
        return access.reason if access.allowed else f"refused:{access.reason}"

    assert check() == "refused:not-loopback"
    assert check(peer="127.0.0.1") == "loopback"
    assert check(peer="127.0.0.1", allow_loopback=False) == "refused:not-loopback"
    assert check(expected_token=TOKEN) == "refused:bad-token"
    assert check(expected_token=TOKEN, authorization=f"bearer {TOKEN}") == "token"
    # A token only counts when one is configured: an empty setting is no token.
    assert check(expected_token="", authorization="Bearer ") == "refused:not-loopback"
